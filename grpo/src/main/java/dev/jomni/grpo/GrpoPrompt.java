package dev.jomni.grpo;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.ChatPrompt;
import dev.jomni.train.data.PromptPreset;
import java.util.ArrayList;
import java.util.List;

/**
 * A training prompt: the record, its token ids (the chat template over [system, user(audio, text)] with the generation
 * prompt, as eval and ReST build it, so the audio reaches the model, unlike the original train_grpo.py) and its clip.
 */
public record GrpoPrompt(AudioQa item, long[] ids, Thinker.Audio audio) {
    public static GrpoPrompt of(AudioQa item, PromptPreset preset, ChatEncoder encoder, LogMel logMel) {
        LogMel.Batch f = logMel.batch(List.of(Resampler.to16k(Wav.read(item.audio()))));
        var audio = new Thinker.Audio(Tensor.of(f.values(), 1, f.melBins(), f.frames()), f.validFrames());
        ChatPrompt p = preset.build(item);
        List<ChatMessage> messages = new ArrayList<>();
        if (!p.system().isEmpty()) messages.add(ChatMessage.system(p.system()));
        messages.add(ChatMessage.user(new Content.Audio(f.validFrames()[0]), new Content.Text(p.userText())));
        int[] ids = encoder.encode(messages, true);
        long[] out = new long[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = ids[i];
        return new GrpoPrompt(item, out, audio);
    }
}

package dev.jomni.train.eval;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Answers with the thinker: each item's WAV is featurised (resampled to 16 kHz, log-mel), the
 * conversation (system turn if any, then a user turn of the audio followed by the question) is
 * rendered by the chat template with the generation prompt, and the model continues it until
 * {@code <|im_end|>} or {@code <|endoftext|>}; a batch of items is decoded together.
 */
public final class ThinkerAnswers implements AnswerGenerator {
    private final Thinker thinker;
    private final ChatEncoder encoder;
    private final LogMel logMel;
    private final Generation.Settings settings;

    public ThinkerAnswers(Thinker thinker, ChatEncoder encoder, LogMel logMel, Generation.Settings settings) {
        this.thinker = thinker;
        this.encoder = encoder;
        this.logMel = logMel;
        Set<Long> stops = new HashSet<>(settings.stopTokens());
        for (String t : new String[] {"<|im_end|>", "<|endoftext|>"})
            encoder.tokenizer().findTokenId(t).ifPresent(id -> stops.add((long) id));
        this.settings = new Generation.Settings(settings.maxNewTokens(), settings.temperature(), settings.topK(), settings.topP(),
                settings.seed(), stops, settings.minP(), settings.repetitionPenalty());
    }

    /** The batch decodes together (left-padded); sample s of every item uses seed {@code settings.seed() + s}. */
    @Override
    public List<List<String>> generate(List<PromptedItem> batch, int samplesPerItem) {
        List<long[]> prompts = new ArrayList<>();
        List<Thinker.Audio> clips = new ArrayList<>();
        for (PromptedItem p : batch) {
            LogMel.Batch features = logMel.batch(List.of(Resampler.to16k(Wav.read(p.item().audio()))));
            clips.add(new Thinker.Audio(Tensor.of(features.values(), 1, features.melBins(), features.frames()), features.validFrames()));
            List<ChatMessage> messages = new ArrayList<>();
            if (!p.prompt().system().isEmpty()) messages.add(ChatMessage.system(p.prompt().system()));
            messages.add(ChatMessage.user(new Content.Audio(features.validFrames()[0]), new Content.Text(p.prompt().userText())));
            int[] ids = encoder.encode(messages, true);
            long[] prompt = new long[ids.length];
            for (int i = 0; i < ids.length; i++) prompt[i] = ids[i];
            prompts.add(prompt);
        }
        List<List<String>> out = new ArrayList<>();
        for (int i = 0; i < batch.size(); i++) out.add(new ArrayList<>());
        for (int s = 0; s < samplesPerItem; s++) {
            var sample = settings.withSeed(settings.seed() + s);
            List<long[]> tokens = Generation.generateBatch(thinker, prompts, clips, sample, (row, token) -> {});
            for (int i = 0; i < tokens.size(); i++) out.get(i).add(decode(tokens.get(i)));
        }
        return out;
    }

    private String decode(long[] tokens) {
        int n = tokens.length;
        if (n > 0 && settings.stopTokens().contains(tokens[n - 1])) n--;               // the stop token is not part of the answer
        int[] answer = new int[n];
        for (int i = 0; i < n; i++) answer[i] = (int) tokens[i];
        return encoder.tokenizer().decode(answer, true);
    }
}

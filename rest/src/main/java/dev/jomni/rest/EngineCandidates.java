package dev.jomni.rest;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.eval.PromptedItem;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Candidates from the generation engine in this process, over the very weights the trainer updates: the engine
 * attaches an adapter's LoRA updates to the base Linears only while that adapter's rows run, so the adapter the
 * trainer just finished generates the next iteration without a reload or a merge.
 *
 * <p>Each item is prompted as {@code omni serve} prompts an OpenAI request with the same messages (chat template
 * with the generation prompt, the audio featurised the same way), and its n samples are one engine request whose
 * sample s draws from seed + s: the candidates equal the server's for the same seeds.
 */
public final class EngineCandidates implements CandidateSource {
    private final GenerationEngine engine;
    private final ChatEncoder encoder;
    private final LogMel logMel;
    private final double topP;
    private final int maxTokens;
    private final Set<Long> stops = new HashSet<>();
    private final Function<Path, LoraAdapter> live;
    private final Map<LoraAdapter, String> names = new IdentityHashMap<>();

    /**
     * @param live the trainer's adapter saved in a folder, or null when it is not in memory (then the folder is read)
     */
    public EngineCandidates(GenerationEngine engine, ChatEncoder encoder, LogMel logMel, double topP, int maxTokens, Function<Path, LoraAdapter> live) {
        this.engine = engine;
        this.encoder = encoder;
        this.logMel = logMel;
        this.topP = topP;
        this.maxTokens = maxTokens;
        this.live = live;
        for (String t : new String[] {"<|im_end|>", "<|endoftext|>"}) encoder.tokenizer().findTokenId(t).ifPresent(id -> stops.add((long) id));
    }

    @Override
    public List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String model, double temperature) {
        List<List<GenerationEngine.Handle>> handles = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            PromptedItem p = items.get(i);
            float[] clip = Resampler.to16k(Wav.read(p.item().audio()));
            LogMel.Batch f = logMel.batch(List.of(clip));
            var audio = new Thinker.Audio(Tensor.of(f.values(), f.batch(), f.melBins(), f.frames()), f.validFrames());
            List<ChatMessage> messages = new ArrayList<>();
            if (!p.prompt().system().isEmpty()) messages.add(ChatMessage.system(p.prompt().system()));
            messages.add(ChatMessage.user(new Content.Audio(f.validFrames()[0]), new Content.Text(p.prompt().userText())));
            int[] ids = encoder.encode(messages, true);
            long[] prompt = new long[ids.length];
            for (int k = 0; k < ids.length; k++) prompt[k] = ids[k];
            var settings = new Generation.Settings(maxTokens, temperature, 0, temperature == 0 ? 1 : topP, seeds[i], stops);
            handles.add(engine.submit(new GenerationEngine.Request(prompt, audio, settings, model), n, s -> t -> {}));
        }
        engine.runUntilIdle();
        List<List<String>> out = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            List<String> texts = new ArrayList<>();
            for (GenerationEngine.Handle h : handles.get(i)) {
                GenerationEngine.Result r = h.result().join();
                if (r.finish() == GenerationEngine.Finish.ERROR)
                    throw new IllegalStateException("generate: record '" + items.get(i).item().id() + "': " + r.error());
                texts.add(decode(r.tokens()));
            }
            out.add(texts);
        }
        return out;
    }

    private String decode(long[] tokens) {
        int n = tokens.length;
        if (n > 0 && stops.contains(tokens[n - 1])) n--;                   // the stop token is not part of the answer
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = (int) tokens[i];
        return encoder.tokenizer().decode(t, true);
    }

    /**
     * The trainer's live adapter for {@code dir} when it has one (an adapter continued from iteration to iteration moves
     * to its new name), else the saved folder.
     */
    @Override
    public void useAdapter(String name, Path dir) {
        LoraAdapter a = live == null ? null : live.apply(dir);
        if (a == null) {
            engine.loadAdapter(name, dir);
            return;
        }
        String old = names.put(a, name);
        if (old != null) engine.removeAdapter(old);
        engine.addAdapter(name, a);
    }
}

package dev.jomni.rest;

import dev.jomni.train.eval.PromptedItem;
import java.util.List;

/**
 * Where candidates come from: the in-process engine over the trainer's weights ({@code EngineCandidates}) or an
 * OpenAI-compatible server ({@link HttpCandidates}). Decoding settings (temperature, top-p, max tokens) belong to
 * the implementation.
 */
public interface CandidateSource extends AutoCloseable {
    /**
     * {@code n} completions for each item: element i holds the texts for {@code items.get(i)}, sample s drawn from
     * seed {@code seeds[i] + s} (OpenAI's {@code n} with {@code seed}), each the whole output after the prompt
     * ({@code <think>…</think>} and the answer; no end token).
     *
     * @param model the policy to sample: null for the base model, else an adapter name the source knows
     *              ({@link #useAdapter})
     * @param temperature 0 for greedy
     */
    List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String model, double temperature);

    /**
     * Makes the adapter saved in {@code dir} available as {@code name} before it is asked for (the engine registers the
     * trainer's live adapter; a server loads the folder, or must already serve the name).
     */
    void useAdapter(String name, java.nio.file.Path dir);

    @Override
    default void close() {}
}

package dev.jomni.train.eval;

import java.util.List;

/**
 * The thing that answers: a model that reads each item's audio ({@code item().audio()}) and prompt
 * ({@code prompt().system()}, then a user turn of the audio followed by {@code prompt().userText()}) and
 * writes completions. Decoding settings (temperature, top-p, length) belong to the implementation.
 */
@FunctionalInterface
public interface AnswerGenerator {
    /**
     * Completions for a batch: element i holds exactly {@code samplesPerItem} texts for {@code batch.get(i)},
     * each the model's whole output after the prompt ({@code <think>…</think>} and the answer; no
     * {@code <|im_end|>}). A generation that failed is an empty string, not a missing element.
     */
    List<List<String>> generate(List<PromptedItem> batch, int samplesPerItem);
}

package dev.jomni.train.eval;

import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.score.Matching;
import java.util.Objects;

/**
 * @param prompt     the prompt preset (recorded in {@code metrics.json} and {@code generations.jsonl})
 * @param batchSize  items per {@link AnswerGenerator#generate} call
 * @param numSamples completions per item
 * @param vote       how the samples become one answer
 * @param matching   how answers are scored
 */
public record EvalOptions(PromptPreset prompt, int batchSize, int numSamples, Vote vote, Matching matching) {
    public EvalOptions {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(vote, "vote");
        Objects.requireNonNull(matching, "matching");
        if (batchSize < 1) throw new IllegalArgumentException("batch size " + batchSize + " < 1");
        if (numSamples < 1) throw new IllegalArgumentException("num samples " + numSamples + " < 1");
    }

    /** The default preset, batches of 8, one sample, majority vote (moot for one sample), strict matching. */
    public static EvalOptions defaults() {
        return new EvalOptions(PromptPreset.DEFAULT, 8, 1, Vote.MAJORITY, Matching.STRICT);
    }

    public EvalOptions withPrompt(PromptPreset p) { return new EvalOptions(p, batchSize, numSamples, vote, matching); }

    public EvalOptions withBatchSize(int b) { return new EvalOptions(prompt, b, numSamples, vote, matching); }

    public EvalOptions withSamples(int n, Vote v) { return new EvalOptions(prompt, batchSize, n, v, matching); }

    public EvalOptions withMatching(Matching m) { return new EvalOptions(prompt, batchSize, numSamples, vote, m); }
}

package dev.jomni.rest;

import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.score.Matching;
import java.nio.file.Path;
import java.util.List;

/**
 * A ReST run's settings: {@code rest/run_rest.py}'s flags and defaults (seed-pipeline.md §6), plus what jomni adds.
 *
 * @param baseModel        the base model's name, as config.json records it and as requests name it
 * @param learningRates    iteration i trains at entry i−1, or the last entry when there are fewer
 * @param restartFromBase  the ReST paper's choice: each iteration trains a fresh adapter on the base; off (the
 *                         original's behaviour), iteration i continues iteration i−1's adapter
 * @param dedup            drop a correct candidate whose raw output equals an earlier correct one's (the original
 *                         keeps duplicates)
 * @param batchSize        problems generated per batch (the original's 8 concurrent requests); a batch's records are
 *                         appended together
 * @param seed             sample s of problem p draws from seed {@code mix(seed, p) + s}, in every iteration
 * @param evalDataPath     null: no held-out evaluation
 * @param initialAdapter   null: iteration 1 samples the base model; else this PEFT adapter folder (e.g. an SFT warm-up),
 *                         which iteration 1 samples and (without restartFromBase) continues
 */
public record RestOptions(Path dataPath, Path audioDir, Path evalDataPath, Path outputBaseDir, String baseModel, int numIterations,
                          int numSamples, double temperature, double topP, int maxTokens, Filter filter, List<Double> learningRates,
                          double numEpochs, boolean restartFromBase, boolean dedup, int batchSize, long seed, PromptPreset prompt,
                          Matching matching, Path initialAdapter) {
    public RestOptions {
        if (numIterations < 1) throw new IllegalArgumentException("--num_iterations " + numIterations + ": must be at least 1");
        if (numSamples < 1) throw new IllegalArgumentException("--num_samples " + numSamples + ": must be at least 1");
        if (learningRates.isEmpty()) throw new IllegalArgumentException("--learning_rates: give at least one");
        if (batchSize < 1) throw new IllegalArgumentException("--batch_size " + batchSize + ": must be at least 1");
        if (maxTokens < 1) throw new IllegalArgumentException("--max_tokens " + maxTokens + ": must be at least 1");
        learningRates = List.copyOf(learningRates);
    }

    /** The learning rate of iteration {@code i} (1-based). */
    public double learningRate(int i) { return learningRates.get(Math.min(i, learningRates.size()) - 1); }
}

package dev.jomni.rest;

import java.nio.file.Path;

/**
 * The trained side of ReST: fine-tunes an adapter on an iteration's filtered samples. Implemented over the SFT
 * trainer ({@code SftPolicy}); tests use fakes.
 */
public interface Policy {
    /** What one iteration's training did. */
    record Trained(int steps, double firstLoss, double lastLoss) {}

    /**
     * Trains on {@code filteredJson} (seed records with a {@code response}, possibly a {@code weight}; their audio under
     * {@code audioRoot}, the data set's) into
     * {@code outputDir} (checkpoints, then the final adapter in PEFT's format), resuming from the folder's latest
     * checkpoint when there is one.
     *
     * @param previous the adapter folder of the last iteration that trained, or null (start from the base);
     *                 the policy continues it, or restarts from the base, as it was configured
     */
    Trained train(int iteration, Path filteredJson, Path audioRoot, Path outputDir, double learningRate, Path previous);
}

package dev.jomni.omni.config;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code preprocessor_config.json} (WhisperFeatureExtractor). The audio front end implements exactly
 * one setting: 16 kHz, n_fft 400, hop 160, no dither, no normalisation, zero padding, and as many
 * mel bins as the encoder takes; a file asking for anything else is refused, naming the field.
 */
public record PreprocessorConfig(int featureSize, int samplingRate, int nFft, int hopLength) {
    public static final int SAMPLING_RATE = 16000, N_FFT = 400, HOP_LENGTH = 160;

    /** Reads the file (or {@code preprocessor_config.json} in a model directory), checked against the encoder's mel bins. */
    public static PreprocessorConfig load(Path fileOrDir, AudioConfig audio) {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve("preprocessor_config.json") : fileOrDir;
        ConfigNode c = ConfigNode.read(file);
        c.requireIfPresent("feature_extractor_type", "WhisperFeatureExtractor", "the Whisper log-mel front end");
        int featureSize = c.integer("feature_size");
        if (featureSize != audio.numMelBins())
            throw c.error("feature_size", "= " + featureSize + " differs from the encoder's num_mel_bins=" + audio.numMelBins());
        c.requireIfPresent("sampling_rate", SAMPLING_RATE, "audio is resampled to 16 kHz");
        c.requireIfPresent("n_fft", N_FFT, "the front end implements n_fft 400");
        c.requireIfPresent("hop_length", HOP_LENGTH, "the front end implements hop 160");
        c.requireIfPresent("dither", 0.0, "dither is random noise; parity needs none");
        c.requireIfPresent("do_normalize", false, "per-clip normalisation is not implemented");
        c.requireIfPresent("padding_value", 0.0, "clips are padded with zeros");
        c.requireIfPresent("padding_side", "right", "clips are padded on the right");
        c.integer("sampling_rate");
        c.integer("n_fft");
        c.integer("hop_length");
        return new PreprocessorConfig(featureSize, SAMPLING_RATE, N_FFT, HOP_LENGTH);
    }
}

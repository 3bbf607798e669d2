package dev.jomni.omni.config;

/**
 * {@code thinker_config.audio_config}: the Whisper-style audio encoder. {@code scale_embedding},
 * {@code dropout} and {@code activation_dropout} are stored by transformers but never applied, so they
 * are not read.
 */
public record AudioConfig(int numMelBins, int dModel, int encoderLayers, int encoderAttentionHeads, int encoderFfnDim,
                          int downsampleHiddenSize, int nWindow, int nWindowInfer, int outputDim,
                          int convChunksize, int maxSourcePositions) {
    public AudioConfig {
        positive("num_mel_bins", numMelBins);
        positive("d_model", dModel);
        positive("encoder_layers", encoderLayers);
        positive("encoder_attention_heads", encoderAttentionHeads);
        positive("encoder_ffn_dim", encoderFfnDim);
        positive("downsample_hidden_size", downsampleHiddenSize);
        positive("n_window", nWindow);
        positive("output_dim", outputDim);
        positive("conv_chunksize", convChunksize);
        positive("max_source_positions", maxSourcePositions);
        if (dModel % encoderAttentionHeads != 0)
            throw new ConfigException("d_model=" + dModel + " is not a multiple of encoder_attention_heads=" + encoderAttentionHeads);
        if (dModel % 2 != 0) throw new ConfigException("d_model=" + dModel + " must be even (sinusoidal positions)");
        if (nWindowInfer < 2 * nWindow)
            throw new ConfigException("n_window_infer=" + nWindowInfer + " must be at least 2·n_window=" + 2 * nWindow
                    + ", else attention windows are empty");
    }

    /** Head width of the encoder's attention. */
    public int headDim() { return dModel / encoderAttentionHeads; }

    /** Mel rows after the three stride-2 convolutions: ceil(ceil(ceil(mel/2)/2)/2). */
    public int melAfterConv() {
        int f = numMelBins;
        for (int i = 0; i < 3; i++) f = (f + 1) / 2;
        return f;
    }

    private static void positive(String key, int value) {
        if (value <= 0) throw new ConfigException(key + "=" + value + " must be positive");
    }

    static AudioConfig parse(ConfigNode c) {
        c.requireIfPresent("activation_function", "gelu", "the encoder computes exact (erf) GELU");
        try {
            return new AudioConfig(c.integer("num_mel_bins"), c.integer("d_model"), c.integer("encoder_layers"),
                    c.integer("encoder_attention_heads"), c.integer("encoder_ffn_dim"), c.integer("downsample_hidden_size"),
                    c.integer("n_window"), c.integer("n_window_infer"), c.integer("output_dim"),
                    c.integer("conv_chunksize", 500), c.integer("max_source_positions", 1500));
        } catch (ConfigException e) {
            throw c.wrap(e);
        }
    }
}

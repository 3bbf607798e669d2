package dev.jomni.omni.config;

import java.util.List;

/**
 * {@code thinker_config.text_config}: the MoE decoder. Components are the file's keys in camelCase;
 * {@code ropeTheta} and {@code mropeSection} come from {@code rope_parameters} or from the legacy
 * {@code rope_theta} + {@code rope_scaling} pair. {@code intermediateSize} is 0 when the file omits it
 * and no layer is dense. Epsilons are kept as the file's doubles; the model casts them where it uses them.
 */
public record TextConfig(int hiddenSize, int numHiddenLayers, int numAttentionHeads, int numKeyValueHeads,
                         int headDim, int vocabSize, double rmsNormEps,
                         int numExperts, int numExpertsPerTok, int moeIntermediateSize, boolean normTopkProb,
                         int decoderSparseStep, List<Integer> mlpOnlyLayers, int intermediateSize,
                         double routerAuxLossCoef, boolean outputRouterLogits,
                         double ropeTheta, List<Integer> mropeSection) {
    /** Used when the rope settings name no {@code mrope_section} (transformers' default). */
    public static final List<Integer> DEFAULT_MROPE_SECTION = List.of(24, 20, 20);

    public TextConfig {
        mlpOnlyLayers = List.copyOf(mlpOnlyLayers);
        mropeSection = List.copyOf(mropeSection);
        positive("hidden_size", hiddenSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("num_key_value_heads", numKeyValueHeads);
        positive("head_dim", headDim);
        positive("vocab_size", vocabSize);
        positive("decoder_sparse_step", decoderSparseStep);
        if (numAttentionHeads % numKeyValueHeads != 0)
            throw new ConfigException("num_attention_heads=" + numAttentionHeads + " is not a multiple of num_key_value_heads="
                    + numKeyValueHeads);
        if (headDim % 2 != 0) throw new ConfigException("head_dim=" + headDim + " must be even for rotary embeddings");
        if (!(rmsNormEps > 0)) throw new ConfigException("rms_norm_eps=" + rmsNormEps + " must be positive");
        if (!(ropeTheta > 0)) throw new ConfigException("rope_theta=" + ropeTheta + " must be positive");
        if (mropeSection.size() != 3 || mropeSection.stream().anyMatch(s -> s < 0))
            throw new ConfigException("mrope_section=" + mropeSection + " must be three non-negative sizes (t, h, w)");
        for (int layer : mlpOnlyLayers)
            if (layer < 0 || layer >= numHiddenLayers)
                throw new ConfigException("mlp_only_layers=" + mlpOnlyLayers + " names layer " + layer + " of "
                        + numHiddenLayers);
        if (numExperts < 0) throw new ConfigException("num_experts=" + numExperts + " is negative");
        boolean anyMoe = false, anyDense = false;
        for (int n = 0; n < numHiddenLayers; n++) {
            boolean moe = isMoe(n, numExperts, decoderSparseStep, mlpOnlyLayers);
            anyMoe |= moe;
            anyDense |= !moe;
        }
        if (anyMoe) {
            if (numExpertsPerTok < 1 || numExpertsPerTok > numExperts)
                throw new ConfigException("num_experts_per_tok=" + numExpertsPerTok + " must be in 1.." + numExperts
                        + " (num_experts)");
            positive("moe_intermediate_size", moeIntermediateSize);
        }
        if (anyDense && intermediateSize <= 0)
            throw new ConfigException("intermediate_size=" + intermediateSize + " must be positive: layers without experts "
                    + "(mlp_only_layers=" + mlpOnlyLayers + ", decoder_sparse_step=" + decoderSparseStep + ") use it");
    }

    /** Layer n uses the sparse MoE block, else a dense SwiGLU MLP of width intermediate_size (as transformers decides). */
    public boolean isMoeLayer(int n) {
        return isMoe(n, numExperts, decoderSparseStep, mlpOnlyLayers);
    }

    /** Query heads per key/value head (GQA group size). */
    public int groupSize() { return numAttentionHeads / numKeyValueHeads; }

    private static boolean isMoe(int n, int experts, int sparseStep, List<Integer> mlpOnly) {
        return !mlpOnly.contains(n) && experts > 0 && (n + 1) % sparseStep == 0;
    }

    private static void positive(String key, int value) {
        if (value <= 0) throw new ConfigException(key + "=" + value + " must be positive");
    }

    static TextConfig parse(ConfigNode c) {
        c.requireIfPresent("hidden_act", "silu", "the experts and dense MLP compute SiLU");
        c.requireIfPresent("attention_bias", false, "q/k/v/o projections without bias");
        c.requireIfPresent("attention_dropout", 0.0, "attention dropout is not implemented");
        if (c.has("shared_expert_intermediate_size") && c.integer("shared_expert_intermediate_size") > 0)
            throw c.error("shared_expert_intermediate_size", "= " + c.integer("shared_expert_intermediate_size")
                    + " is not supported (the thinker has no shared expert)");
        int hidden = c.integer("hidden_size"), heads = c.integer("num_attention_heads");
        int headDim = c.has("head_dim") ? c.integer("head_dim") : (heads > 0 ? hidden / heads : 0);

        double theta;
        List<Integer> section;
        ConfigNode rope = c.childOrNull("rope_parameters");
        if (rope != null) {
            ropeType(rope);
            theta = rope.has("rope_theta") ? rope.number("rope_theta") : c.number("rope_theta");
            section = rope.integers("mrope_section", DEFAULT_MROPE_SECTION);
        } else {
            ConfigNode scaling = c.childOrNull("rope_scaling");
            if (scaling != null) ropeType(scaling);
            theta = c.number("rope_theta");
            section = scaling == null ? DEFAULT_MROPE_SECTION : scaling.integers("mrope_section", DEFAULT_MROPE_SECTION);
        }
        try {
            return new TextConfig(hidden, c.integer("num_hidden_layers"), heads, c.integer("num_key_value_heads"),
                    headDim, c.integer("vocab_size"), c.number("rms_norm_eps", 1e-6),
                    c.integer("num_experts"), c.integer("num_experts_per_tok"), c.integer("moe_intermediate_size"),
                    c.bool("norm_topk_prob"),
                    c.integer("decoder_sparse_step", 1), c.integers("mlp_only_layers", List.of()),
                    c.integer("intermediate_size", 0),
                    c.number("router_aux_loss_coef", 0.001), c.bool("output_router_logits", false),
                    theta, section);
        } catch (ConfigException e) {
            throw c.wrap(e);
        }
    }

    /**
     * Only plain (unscaled) rotary frequencies are implemented: yarn, linear, dynamic… change them.
     * Legacy files may say {@code "type": "mrope"}, which transformers reads as default.
     */
    private static void ropeType(ConfigNode rope) {
        for (String key : new String[] {"rope_type", "type"}) {
            String type = rope.string(key, "default");
            if (!type.equals("default") && !type.equals("mrope"))
                throw rope.error(key, "= \"" + type + "\" is not supported (only \"default\" rotary embeddings)");
        }
    }
}

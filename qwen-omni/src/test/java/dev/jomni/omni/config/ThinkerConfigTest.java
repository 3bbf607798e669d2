package dev.jomni.omni.config;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ThinkerConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir Path dir;

    static Path fixture(String name) {
        return tiny("model/" + name);
    }

    static Path tiny(String name) {
        try {
            return Path.of(ThinkerConfigTest.class.getResource("/tiny/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The fixture's config.json with one change applied, written to a temp file. */
    private Path mutated(Consumer<ObjectNode> change) throws Exception {
        var root = (ObjectNode) JSON.readTree(fixture("config.json").toFile());
        change.accept(root);
        Path file = dir.resolve("config-" + System.nanoTime() + ".json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }

    private static ObjectNode text(ObjectNode root) { return (ObjectNode) root.get("thinker_config").get("text_config"); }

    private static ObjectNode audio(ObjectNode root) { return (ObjectNode) root.get("thinker_config").get("audio_config"); }

    @Test
    void loadsTheFixtureConfig() {
        var c = ThinkerConfig.load(fixture("config.json").getParent());
        assertEquals(1000, c.audioTokenId());
        assertEquals(1001, c.audioStartTokenId());
        assertEquals(1007, c.audioEndTokenId());
        assertEquals(Set.of(1002, 1003, 1008, 1009), c.visionTokenIds());
        assertFalse(c.tieWordEmbeddings());
        var t = c.text();
        assertEquals(64, t.hiddenSize());
        assertEquals(2, t.numHiddenLayers());
        assertEquals(4, t.numAttentionHeads());
        assertEquals(2, t.numKeyValueHeads());
        assertEquals(16, t.headDim());
        assertEquals(1024, t.vocabSize());
        assertEquals(8, t.numExperts());
        assertEquals(2, t.numExpertsPerTok());
        assertEquals(32, t.moeIntermediateSize());
        assertTrue(t.normTopkProb());
        assertEquals(96, t.intermediateSize());
        assertEquals(1e-6, t.rmsNormEps());
        assertEquals(1e6, t.ropeTheta());
        assertEquals(List.of(2, 3, 3), t.mropeSection());
        assertEquals(1, t.decoderSparseStep());
        assertEquals(List.of(), t.mlpOnlyLayers());
        assertEquals(0.001, t.routerAuxLossCoef());
        assertFalse(t.outputRouterLogits());
        assertTrue(t.isMoeLayer(0) && t.isMoeLayer(1));
        var a = c.audio();
        assertEquals(128, a.numMelBins());
        assertEquals(64, a.dModel());
        assertEquals(2, a.encoderLayers());
        assertEquals(4, a.encoderAttentionHeads());
        assertEquals(128, a.encoderFfnDim());
        assertEquals(32, a.downsampleHiddenSize());
        assertEquals(50, a.nWindow());
        assertEquals(800, a.nWindowInfer());
        assertEquals(64, a.outputDim());
        assertEquals(16, a.melAfterConv());
        assertEquals(16, a.headDim());
    }

    @Test
    void readsAThinkerOnlyConfig() throws Exception {
        var root = (ObjectNode) JSON.readTree(fixture("config.json").toFile());
        var thinker = (ObjectNode) root.get("thinker_config");
        Path file = dir.resolve("thinker.json");
        JSON.writeValue(file.toFile(), thinker);
        assertEquals(ThinkerConfig.load(fixture("config.json")), ThinkerConfig.load(file));
    }

    @Test
    void acceptsLegacyRopeThetaAndRopeScaling() throws Exception {
        var legacy = ThinkerConfig.load(mutated(r -> {
            var t = text(r);
            t.remove("rope_parameters");
            t.put("rope_theta", 5e5);
            var s = t.putObject("rope_scaling");
            s.put("type", "default").put("rope_type", "default").put("interleaved", true);
            s.putArray("mrope_section").add(4).add(2).add(2);
        }));
        assertEquals(5e5, legacy.text().ropeTheta());
        assertEquals(List.of(4, 2, 2), legacy.text().mropeSection());
        var noScaling = ThinkerConfig.load(mutated(r -> {
            text(r).remove("rope_parameters");
            text(r).put("rope_theta", 1e6);
            text(r).putNull("rope_scaling");
        }));
        assertEquals(TextConfig.DEFAULT_MROPE_SECTION, noScaling.text().mropeSection());
        var thetaOutside = ThinkerConfig.load(mutated(r -> {
            ((ObjectNode) text(r).get("rope_parameters")).remove("rope_theta");
            text(r).put("rope_theta", 2e6);
        }));
        assertEquals(2e6, thetaOutside.text().ropeTheta());
        assertEquals(List.of(2, 3, 3), thetaOutside.text().mropeSection());
    }

    @Test
    void headDimFallsBackToHiddenOverHeadsOnlyWhenAbsent() throws Exception {
        assertEquals(64 / 4, ThinkerConfig.load(mutated(r -> text(r).remove("head_dim"))).text().headDim());
        assertEquals(32, ThinkerConfig.load(mutated(r -> text(r).put("head_dim", 32))).text().headDim());
    }

    @Test
    void denseLayersFollowMlpOnlyLayersAndSparseStep() throws Exception {
        var c = ThinkerConfig.load(mutated(r -> {
            text(r).put("num_hidden_layers", 6).put("decoder_sparse_step", 2);
            text(r).putArray("mlp_only_layers").add(3);
        })).text();
        // MoE iff n ∉ mlp_only_layers and (n + 1) % step == 0
        boolean[] expected = {false, true, false, false, false, true};
        for (int n = 0; n < 6; n++) assertEquals(expected[n], c.isMoeLayer(n), "layer " + n);
    }

    @Test
    void ignoresUnknownKeys() throws Exception {
        var c = ThinkerConfig.load(mutated(r -> {
            r.put("some_future_key", 3);
            text(r).putObject("quantization_config").put("bits", 4);
            audio(r).put("scale_embedding", true);
        }));
        assertEquals(ThinkerConfig.load(fixture("config.json")), c);
    }

    @Test
    void unsupportedValuesNameFileAndField() throws Exception {
        assertRejected(r -> ((ObjectNode) text(r).get("rope_parameters")).put("rope_type", "yarn"),
                "thinker_config.text_config.rope_parameters.rope_type", "yarn");
        assertRejected(r -> {
            text(r).remove("rope_parameters");
            text(r).put("rope_theta", 1e6);
            text(r).putObject("rope_scaling").put("type", "linear");
        }, "thinker_config.text_config.rope_scaling.type", "linear");
        assertRejected(r -> text(r).put("hidden_act", "gelu"), "thinker_config.text_config.hidden_act", "silu");
        assertRejected(r -> audio(r).put("activation_function", "relu"), "thinker_config.audio_config.activation_function", "relu");
        assertRejected(r -> text(r).put("shared_expert_intermediate_size", 512),
                "thinker_config.text_config.shared_expert_intermediate_size", "512");
        assertRejected(r -> text(r).put("attention_bias", true), "thinker_config.text_config.attention_bias", "true");
        assertRejected(r -> text(r).put("attention_dropout", 0.1), "thinker_config.text_config.attention_dropout", "0.1");
        assertRejected(r -> text(r).remove("hidden_size"), "thinker_config.text_config.hidden_size", "missing");
        assertRejected(r -> text(r).put("num_key_value_heads", 3), "thinker_config.text_config.num_attention_heads", "num_key_value_heads=3");
        assertRejected(r -> text(r).putArray("mlp_only_layers").add(7), "thinker_config.text_config.mlp_only_layers", "7");
        assertRejected(r -> text(r).put("num_experts_per_tok", 9), "thinker_config.text_config.num_experts_per_tok=9");
        assertRejected(r -> text(r).put("vocab_size", "big"), "thinker_config.text_config.vocab_size", "not an integer");
        assertRejected(r -> audio(r).put("encoder_attention_heads", 5), "thinker_config.audio_config.d_model=64", "5");
        assertRejected(r -> ((ObjectNode) r.get("thinker_config")).remove("audio_token_id"), "thinker_config.audio_token_id", "missing");
        assertRejected(r -> r.put("model_type", "qwen2_5_omni"), "model_type", "qwen2_5_omni");
        assertRejected(r -> {
            text(r).putArray("mlp_only_layers").add(0);
            text(r).remove("intermediate_size");
        }, "thinker_config.text_config.intermediate_size");
    }

    private void assertRejected(Consumer<ObjectNode> change, String... expected) throws Exception {
        Path file = mutated(change);
        var e = assertThrows(ConfigException.class, () -> ThinkerConfig.load(file));
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), e.getMessage());
        for (String s : expected) assertTrue(e.getMessage().contains(s), "expected '" + s + "' in: " + e.getMessage());
    }

    @Test
    void preprocessorConfigMustDescribeTheImplementedFrontEnd() throws Exception {
        var audio = ThinkerConfig.load(fixture("config.json")).audio();
        var p = PreprocessorConfig.load(fixture("preprocessor_config.json").getParent(), audio);
        assertEquals(new PreprocessorConfig(128, 16000, 400, 160), p);
        String[][] bad = {{"n_fft", "512"}, {"hop_length", "320"}, {"sampling_rate", "24000"}, {"dither", "1.0"},
                          {"feature_size", "80"}, {"do_normalize", "true"}};
        for (String[] b : bad) {
            var root = (ObjectNode) JSON.readTree(fixture("preprocessor_config.json").toFile());
            root.set(b[0], JSON.readTree(b[1]));
            Path file = dir.resolve("pre-" + b[0] + ".json");
            JSON.writeValue(file.toFile(), root);
            var e = assertThrows(ConfigException.class, () -> PreprocessorConfig.load(file, audio), b[0]);
            assertTrue(e.getMessage().startsWith(file + ": " + b[0]), e.getMessage());
        }
    }
}

package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.Parameter;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A second configuration of the architecture, nothing shared with the fixture's sizes: a dense layer
 * among MoE layers, top-3 of 5 experts without renormalisation, other head counts and widths, another
 * mrope_section, another audio length. Random f64 weights; the model must agree with itself (KV-cache
 * decoding vs one full pass) and with finite differences.
 */
class OtherConfigurationTest {
    @TempDir static Path dir;
    static Thinker thinker;
    static Tensor ids, mask;
    static Thinker.Audio audio;

    @BeforeAll
    static void build() throws Exception {
        var json = new ObjectMapper();
        var root = (ObjectNode) json.readTree(ThinkerParityTest.tiny("model/config.json").toFile());
        var thinkerNode = (ObjectNode) root.get("thinker_config");
        var text = (ObjectNode) thinkerNode.get("text_config");
        text.put("hidden_size", 24).put("num_hidden_layers", 3).put("num_attention_heads", 6).put("num_key_value_heads", 2)
                .put("head_dim", 8).put("num_experts", 5).put("num_experts_per_tok", 3).put("norm_topk_prob", false)
                .put("intermediate_size", 20).put("moe_intermediate_size", 12);
        text.putArray("mlp_only_layers").add(1);
        ((ObjectNode) text.get("rope_parameters")).putArray("mrope_section").add(1).add(1).add(2);
        var audioNode = (ObjectNode) thinkerNode.get("audio_config");
        audioNode.put("d_model", 16).put("encoder_attention_heads", 2).put("encoder_ffn_dim", 24).put("encoder_layers", 1)
                .put("downsample_hidden_size", 8).put("output_dim", 24).put("n_window_infer", 400);
        Files.writeString(dir.resolve("config.json"), json.writeValueAsString(root));
        thinker = new Thinker(ThinkerConfig.load(dir));
        Generator g = new Generator(5);
        for (Parameter p : thinker.parameters().values()) p.set(Tensor.randn(g, DType.F64, p.shape()).mul(0.3).detach());
        int frames = 230, tokens = AudioEncoder.outputLength(frames, 50);                 // 13·2 + 4 = 30
        assertEquals(30, tokens);
        long[] prompt = new long[4 + tokens + 1 + 8];
        long[] head = {1005, 1004, 10, 1001};
        System.arraycopy(head, 0, prompt, 0, 4);
        Arrays.fill(prompt, 4, 4 + tokens, 1000);
        prompt[4 + tokens] = 1007;
        for (int i = 0; i < 8; i++) prompt[5 + tokens + i] = 100 + 37 * i;
        ids = Tensor.of(prompt, 1, prompt.length);
        long[] ones = new long[prompt.length];
        Arrays.fill(ones, 1);
        mask = Tensor.of(ones, 1, prompt.length);
        audio = new Thinker.Audio(Tensor.randn(g, DType.F64, 1, 128, frames + 20), new int[] {frames});
    }

    @Test
    void kvCacheDecodingGivesTheLogitsOfOneFullPass() {
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(3)) {
            int t = ids.size(1), prefill = t - 3;
            double[] full = thinker.forward(ids, mask, audio, null).logits().toDoubleArray();
            int v = thinker.config.text().vocabSize();
            double[] first = thinker.forward(ids.narrow(1, 0, prefill), mask.narrow(1, 0, prefill), audio, cache).logits().toDoubleArray();
            assertArrayEquals(Arrays.copyOfRange(full, 0, prefill * v), first, 1e-9);
            for (int step = prefill; step < t; step++) {
                double[] one = thinker.forward(ids.narrow(1, step, 1), mask.narrow(1, 0, step + 1), null, cache).logits().toDoubleArray();
                assertArrayEquals(Arrays.copyOfRange(full, step * v, (step + 1) * v), one, 1e-9, "decode step " + step);
            }
        }
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        long[] labelValues = ids.toLongArray().clone();
        for (int i = 0; i < 20; i++) labelValues[i] = -100;
        Tensor labels = Tensor.of(labelValues, ids.shape());
        Map<String, Parameter> params = thinker.parameters();
        List<String> names = List.of("model.layers.1.mlp.down_proj.weight", "model.layers.2.mlp.experts.gate_up_proj", "model.layers.0.mlp.experts.down_proj",
                "model.layers.0.mlp.gate.weight", "model.layers.0.self_attn.k_norm.weight", "audio_tower.conv2d2.weight",
                "audio_tower.layers.0.self_attn.q_proj.bias", "model.embed_tokens.weight");
        for (String n : names) params.get(n).value().requiresGrad(true);
        Thinker.loss(thinker.forward(ids, mask, audio, null).logits(), labels).backward();
        Generator g = new Generator(9);
        for (String n : names) {
            Tensor p = params.get(n).value();
            Tensor dir = Tensor.randn(g, DType.F64, p.shape());
            double analytic = p.grad().mul(dir).sum().item(), eps = 1e-6;
            double plus = lossWith(n, p, dir, eps, labels), minus = lossWith(n, p, dir, -eps, labels);
            double numeric = (plus - minus) / (2 * eps);
            assertTrue(Math.abs(analytic - numeric) <= 1e-6 + 1e-5 * Math.abs(numeric), n + ": analytic " + analytic + " vs numeric " + numeric);
        }
    }

    private static double lossWith(String name, Tensor original, Tensor dir, double eps, Tensor labels) {
        Parameter p = thinker.parameters().get(name);
        try (var noGrad = Autograd.noGrad()) {
            Tensor saved = original.copy().detach();               // a real copy: detach() alone shares the storage
            p.value().assign(saved.add(dir.mul(eps)));
            double loss = Thinker.loss(thinker.forward(ids, mask, audio, null).logits(), labels).item();
            p.value().assign(saved);
            return loss;
        }
    }
}

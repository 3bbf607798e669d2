package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.Bnb4bit;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.StoredDType;
import dev.jomni.nn.io.StoredTensor;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * omni init-random against the Qwen3-Omni-30B-A3B-Instruct release's own config.json and
 * model.safetensors.index.json (test resources qwen3-omni-real/Qwen3-Omni-30B-A3B-Instruct/, copied unchanged; the index gzipped).
 */
class RandomCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path real(String name) {
        try {
            return Path.of(RandomCheckpointTest.class.getResource("/qwen3-omni-real/Qwen3-Omni-30B-A3B-Instruct/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The full-size listing (nothing allocated): exactly the index's 19,743 thinker names, each in the shard the
     * release puts it in, and 31,719,205,488 parameters, the thinker-only release's count (mteb's n_parameters
     * of Qwen3-Omni-30B-A3B-Thinking; the index itself records no shapes).
     */
    @Test
    void fullSizeListingIsTheReleaseIndexThinkerTensors() {
        var plan = RandomCheckpoint.plan(real("config.json"), real("model.safetensors.index.json.gz"));
        Map<String, String> index = RandomCheckpoint.weightMap(real("model.safetensors.index.json.gz"));
        long params = 0;
        Map<String, long[]> shapes = new HashMap<>();
        for (var p : plan.tensors()) {
            assertEquals(index.get(p.spec().name()), p.shard(), p.spec().name());
            params += p.spec().numel();
            shapes.put(p.spec().name(), p.spec().shape());
        }
        assertEquals(index.keySet().stream().filter(n -> n.startsWith("thinker.")).count(), plan.tensors().size());
        assertEquals(19_743, plan.tensors().size());
        assertEquals(31_719_205_488L, params);
        assertEquals(Map.of("code2wav.", 230, "talker.", 8037), plan.skippedByPrefix());
        String l = "thinker.model.layers.47.";
        assertArrayEquals(new long[] {152064, 2048}, shapes.get("thinker.model.embed_tokens.weight"));
        assertArrayEquals(new long[] {152064, 2048}, shapes.get("thinker.lm_head.weight"));
        assertArrayEquals(new long[] {4096, 2048}, shapes.get(l + "self_attn.q_proj.weight"));
        assertArrayEquals(new long[] {512, 2048}, shapes.get(l + "self_attn.k_proj.weight"));
        assertArrayEquals(new long[] {2048, 4096}, shapes.get(l + "self_attn.o_proj.weight"));
        assertArrayEquals(new long[] {128}, shapes.get(l + "self_attn.q_norm.weight"));
        assertArrayEquals(new long[] {128, 2048}, shapes.get(l + "mlp.gate.weight"));
        assertArrayEquals(new long[] {768, 2048}, shapes.get(l + "mlp.experts.127.gate_proj.weight"));
        assertArrayEquals(new long[] {2048, 768}, shapes.get(l + "mlp.experts.127.down_proj.weight"));
        assertArrayEquals(new long[] {1152, 3, 2, 16, 16}, shapes.get("thinker.visual.patch_embed.proj.weight"));
        assertArrayEquals(new long[] {1280, 7680}, shapes.get("thinker.audio_tower.conv_out.weight"));
    }

    /** The names and shapes of the tiny fixture model that transformers itself made (checkpoint_keys.json), vision tower included. */
    @Test
    void listingMatchesTheTinyTransformersCheckpoint() throws Exception {
        Map<String, String> expected = new TreeMap<>(), actual = new TreeMap<>();
        for (JsonNode pair : JSON.readTree(ThinkerParityTest.tiny("checkpoint_keys.json").toFile()))
            expected.put(pair.get(0).asText(), pair.get(1).toString().replace(" ", ""));
        for (var s : RandomWeights.thinkerTensors(ThinkerParityTest.tiny("model").resolve("config.json")))
            actual.put(s.name(), Arrays.toString(s.shape()).replace(" ", ""));
        assertEquals(expected, actual);
    }

    /**
     * The release's names at small widths (every layer, expert and block kept): written with the real index's shard
     * layout, every name, dtype and shard is the index's thinker entry, every shape the listing's; the thinker loader
     * reads it back, equal to the same seed built in memory; values are N(0, 0.02²), norms 1, biases 0.
     */
    @Test
    void shrunkCheckpointHasTheReleaseLayoutAndLoads(@TempDir Path dir) throws Exception {
        Path config = shrunkConfig(dir, 16, 8);
        Path out = dir.resolve("ckpt");
        var plan = RandomCheckpoint.plan(config, real("model.safetensors.index.json.gz"));
        RandomCheckpoint.write(config, real("model.safetensors.index.json.gz"), out, RandomCheckpoint.Format.BF16, 7, line -> {});

        Map<String, String> reference = RandomCheckpoint.weightMap(real("model.safetensors.index.json.gz"));
        Map<String, String> written = RandomCheckpoint.weightMap(out.resolve("model.safetensors.index.json"));
        Map<String, String> thinkerOnly = new TreeMap<>();
        reference.forEach((k, v) -> { if (k.startsWith("thinker.")) thinkerOnly.put(k, v); });
        assertEquals(thinkerOnly, new TreeMap<>(written));
        long bytes = 0;
        try (var file = SafeTensors.open(out)) {
            assertEquals(thinkerOnly.keySet(), new java.util.TreeSet<>(file.names()));
            for (var p : plan.tensors()) {
                StoredTensor t = file.get(p.spec().name());
                assertEquals(StoredDType.BF16, t.dtype(), p.spec().name());
                assertArrayEquals(p.spec().shape(), t.shape(), p.spec().name());
                assertEquals(p.shard(), t.file().getFileName().toString(), p.spec().name());
                bytes += t.bytes().byteSize();
            }
            assertStatistics(file.get("thinker.model.layers.3.mlp.experts.100.up_proj.weight").toFloats(), 0.02);
            assertStatistics(file.get("thinker.model.embed_tokens.weight").toFloats(), 0.02);
            for (float v : file.get("thinker.model.layers.0.input_layernorm.weight").toFloats()) assertEquals(1f, v);
            for (float v : file.get("thinker.visual.blocks.5.norm2.weight").toFloats()) assertEquals(1f, v);
            for (float v : file.get("thinker.audio_tower.layers.2.fc1.bias").toFloats()) assertEquals(0f, v);
        }
        assertEquals(bytes, JSON.readTree(out.resolve("model.safetensors.index.json").toFile()).path("metadata").path("total_size").asLong());

        Thinker loaded = Thinker.load(out, DType.F32, Device.cpu());
        Thinker built = RandomWeights.build(config, 7, DType.F32, Device.cpu());
        for (var e : built.parameters().entrySet())
            assertArrayEquals(e.getValue().value().toFloatArray(), loaded.parameters().get(e.getKey()).value().toFloatArray(), e.getKey());
        Thinker other = RandomWeights.build(config, 8, DType.F32, Device.cpu());
        assertNotEquals(Arrays.toString(other.parameters().get("lm_head.weight").value().toFloatArray()),
                Arrays.toString(built.parameters().get("lm_head.weight").value().toFloatArray()), "another seed, other weights");
    }

    /**
     * --dtype nf4: the attention projections and every expert in the bitsandbytes serialization (six tensors each,
     * in the weight's shard), byte for byte the quantization of the bf16 values the same seed gives; the rest bf16;
     * config.json gains the bnb quantization_config.
     */
    @Test
    void nf4CheckpointIsTheBnbSerializationOfTheSameWeights(@TempDir Path dir) throws Exception {
        Path config = shrunkConfig(dir, 64, 64);
        ObjectNode root = (ObjectNode) JSON.readTree(config.toFile());
        ObjectNode text = (ObjectNode) root.get("thinker_config").get("text_config");
        text.put("num_hidden_layers", 2).put("num_experts", 4).put("num_experts_per_tok", 2).put("num_attention_heads", 8);   // q width 64
        ((ObjectNode) root.get("thinker_config").get("audio_config")).put("encoder_layers", 1).put("num_hidden_layers", 1);
        ((ObjectNode) root.get("thinker_config").get("vision_config")).put("depth", 1).putArray("deepstack_visual_indexes").add(0);
        JSON.writeValue(config.toFile(), root);
        Path out = dir.resolve("nf4");
        RandomCheckpoint.write(config, null, out, RandomCheckpoint.Format.NF4, 3, line -> {});
        Map<String, String> index = RandomCheckpoint.weightMap(out.resolve("model.safetensors.index.json"));
        var specs = RandomWeights.thinkerTensors(config);
        List<String> quantized = new ArrayList<>();
        try (var file = SafeTensors.open(out)) {
            for (var s : specs) {
                if (!RandomCheckpoint.quantized(s.name())) {
                    assertEquals(StoredDType.BF16, file.get(s.name()).dtype(), s.name());
                    continue;
                }
                quantized.add(s.name());
                for (String k : Bnb4bit.keys(s.name())) assertEquals(index.get(s.name()), index.get(k), k);
                Nf4Weight read = Bnb4bit.read(n -> file.contains(n) ? file.get(n).data() : null, s.name(), out.toString());
                Nf4Weight expected;
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment bf16 = arena.allocate(2 * s.numel(), 8);
                    RandomWeights.fill(s, 3, bf16);
                    expected = Nf4Weight.quantize(s.name(), Tensor.wrap(bf16, DType.BF16, (int) s.shape()[0], (int) s.shape()[1]).copy());
                }
                assertEquals(TensorData.of(expected.packed()), TensorData.of(read.packed()), s.name());
                assertEquals(TensorData.of(expected.absmax()), TensorData.of(read.absmax()), s.name());
                assertEquals(TensorData.of(expected.nestedAbsmax()), TensorData.of(read.nestedAbsmax()), s.name());
                assertEquals(expected.offset(), read.offset(), s.name());
                assertEquals(DType.BF16, read.dtype());
            }
        }
        // 2 layers × (q, k, v, o + 4 experts × gate, up, down)
        assertEquals(2 * (4 + 4 * 3), quantized.size());
        assertTrue(quantized.contains("thinker.model.layers.1.mlp.experts.3.down_proj.weight"));
        JsonNode q = JSON.readTree(out.resolve("config.json").toFile()).path("quantization_config");
        assertEquals("nf4", q.path("bnb_4bit_quant_type").asText());
        assertTrue(q.path("bnb_4bit_use_double_quant").asBoolean());
        assertEquals(RandomCheckpoint.NF4_SKIPPED.size(), q.path("llm_int8_skip_modules").size());
    }

    @Test
    void aConfigThatDoesNotFitTheIndexIsNamed(@TempDir Path dir) throws Exception {
        Path config = shrunkConfig(dir, 16, 8);
        ObjectNode root = (ObjectNode) JSON.readTree(config.toFile());
        ((ObjectNode) root.get("thinker_config").get("text_config")).put("num_hidden_layers", 47);
        JSON.writeValue(config.toFile(), root);
        var e = assertThrows(IllegalArgumentException.class, () -> RandomCheckpoint.plan(config, real("model.safetensors.index.json.gz")));
        assertTrue(e.getMessage().contains("in the reference index but not in this config's thinker: thinker.model.layers.47."), e.getMessage());
    }

    /** A tensor of several chunks (filled by several threads) comes out the same every time, each chunk its own draws. */
    @Test
    void fillIsDeterministicAcrossChunks() {
        var spec = new RandomWeights.Spec("thinker.model.layers.0.mlp.gate.weight", new long[] {5, RandomWeights.CHUNK / 2}, RandomWeights.Init.NORMAL, 0.02);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = arena.allocate(2 * spec.numel(), 8), b = arena.allocate(2 * spec.numel(), 8);
            RandomWeights.fill(spec, 11, a);
            RandomWeights.fill(spec, 11, b);
            assertEquals(-1, a.mismatch(b));
            assertTrue(a.asSlice(0, 2 * RandomWeights.CHUNK).mismatch(a.asSlice(2L * RandomWeights.CHUNK, 2 * RandomWeights.CHUNK)) >= 0);
            float[] v = new TensorData(StoredDType.BF16, spec.shape(), a).toFloats();
            assertStatistics(v, 0.02);
        }
    }

    /** Mean ≈ 0 and standard deviation ≈ std, within what a sample of this size allows (bf16 rounding included). */
    private static void assertStatistics(float[] v, double std) {
        double sum = 0, sq = 0;
        for (float x : v) {
            sum += x;
            sq += (double) x * x;
        }
        double mean = sum / v.length, sd = Math.sqrt(sq / v.length - mean * mean);
        assertTrue(Math.abs(mean) < 5 * std / Math.sqrt(v.length), "mean " + mean);
        assertTrue(Math.abs(sd / std - 1) < 5 / Math.sqrt(2.0 * v.length) + 0.01, "std " + sd);
    }

    /**
     * The release's config.json with every width shrunk (hidden {@code h}, moe_intermediate {@code i}, small
     * heads, vocabulary 1024 with the special ids moved below it) and every count kept: the same tensor names.
     */
    static Path shrunkConfig(Path dir, int h, int i) throws Exception {
        ObjectNode root = (ObjectNode) JSON.readTree(real("config.json").toFile());
        ObjectNode thinker = (ObjectNode) root.get("thinker_config");
        String[] ids = {"audio_token_id", "audio_start_token_id", "audio_end_token_id", "image_token_id", "video_token_id",
                "vision_start_token_id", "vision_end_token_id"};
        for (int k = 0; k < ids.length; k++) thinker.put(ids[k], 1000 + k);
        ObjectNode text = (ObjectNode) thinker.get("text_config");
        text.put("hidden_size", h).put("num_attention_heads", 2).put("num_key_value_heads", 1).put("head_dim", 8)
                .put("moe_intermediate_size", i).put("intermediate_size", i).put("vocab_size", 1024);
        var section = ((ObjectNode) text.get("rope_scaling")).putArray("mrope_section");
        section.add(2).add(1).add(1);
        ObjectNode audio = (ObjectNode) thinker.get("audio_config");
        audio.put("d_model", 16).put("encoder_attention_heads", 2).put("encoder_ffn_dim", 32).put("downsample_hidden_size", 4).put("output_dim", h);
        ObjectNode vision = (ObjectNode) thinker.get("vision_config");
        vision.put("hidden_size", 8).put("num_heads", 2).put("intermediate_size", 16).put("out_hidden_size", h);
        Path file = dir.resolve("config.json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }
}

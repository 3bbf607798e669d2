package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.Parameter;
import dev.jomni.nn.io.Bnb4bit;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The thinker with use_4bit: the tiny config with moe_intermediate_size 64 (so every K is a multiple of 64), random
 * bf16 weights in the release's per-expert layout; quantize on load, omni quantize's checkpoint, bnb per-expert
 * tensors, bad parts, and the tiny model whose experts' K = 32 stays dense.
 */
class ThinkerNf4Test {
    static final JsonMapper JSON = JsonMapper.builder().build();
    static final Pattern EXPERTS = Pattern.compile("(.*\\.mlp\\.experts)\\.(gate_up_proj|down_proj)");
    @TempDir static Path dir;
    static Path model;
    static Thinker dense, nf4;

    @BeforeAll
    static void load() throws Exception {
        model = aligned(dir.resolve("aligned"), false);
        dense = Thinker.load(model, DType.F32, Device.cpu());
        nf4 = Thinker.load(model, DType.F32, Device.cpu(), true);
    }

    /** A copy of the tiny model's folder with I = 64 and random weights; per-expert tensors, each in bnb 4-bit when bnbExperts. */
    static Path aligned(Path to, boolean bnbExperts) throws Exception {
        Files.createDirectories(to);
        Path tiny = ThinkerParityTest.tiny("model");
        for (String f : List.of("generation_config.json", "preprocessor_config.json")) Files.copy(tiny.resolve(f), to.resolve(f));
        ObjectNode config = (ObjectNode) JSON.readTree(tiny.resolve("config.json").toFile());
        ((ObjectNode) config.path("thinker_config").path("text_config")).put("moe_intermediate_size", 64);
        JSON.writeValue(to.resolve("config.json").toFile(), config);
        var thinker = new Thinker(ThinkerConfig.load(to));
        var gen = new Generator(64);
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        for (var e : thinker.parameters().entrySet()) {
            String key = "thinker." + e.getKey();
            int[] s = e.getValue().shape();
            boolean norm = s.length == 1;
            Tensor t = Tensor.randn(gen, DType.F32, s).mul(norm ? 0.1 : 0.08);
            if (norm) t = t.add(1);
            var m = EXPERTS.matcher(key);
            if (!m.matches()) {
                tensors.put(key, TensorData.of(t.to(DType.BF16)));
                continue;
            }
            boolean gateUp = m.group(2).equals("gate_up_proj");
            for (int x = 0; x < s[0]; x++) {
                Tensor w = t.narrow(0, x, 1).squeeze(0).to(DType.BF16);
                Map<String, Tensor> parts = gateUp ? Map.of("gate_proj", w.narrow(0, 0, s[1] / 2), "up_proj", w.narrow(0, s[1] / 2, s[1] / 2))
                        : Map.of("down_proj", w);
                for (var p : parts.entrySet()) {
                    String name = m.group(1) + "." + x + "." + p.getKey() + ".weight";
                    if (bnbExperts) tensors.putAll(Bnb4bit.write(name, Nf4Weight.quantize(name, p.getValue().contiguous())));
                    else tensors.put(name, TensorData.of(p.getValue()));
                }
            }
        }
        SafeTensors.write(to.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        return to;
    }

    static Tensor logits(Thinker t) {
        Tensor ids = Tensor.of(new long[] {5, 17, 300, 42, 9, 990, 77, 3, 512, 64, 128, 900}, 1, 12);
        try (var g = Autograd.noGrad()) {
            return t.forward(ids, Tensor.full(Device.cpu(), DType.I64, 1, 1, 12), null, null).logits();
        }
    }

    static double relRms(float[] a, float[] b) {
        double e = 0, n = 0;
        for (int i = 0; i < a.length; i++) { e += (a[i] - b[i]) * (double) (a[i] - b[i]); n += (double) b[i] * b[i]; }
        return Math.sqrt(e / n);
    }

    /**
     * Every Linear of the text decoder and both expert stacks are NF4, lm_head, router, embeddings, norms and the audio
     * encoder are not. The logits equal those of the dense model given the dequantized weights (the plumbing is exact),
     * and differ from the bf16 checkpoint's by the NF4 error: each weight errs by 0.092 of its RMS on N(0, 1)
     * (Nf4MatmulTest), and with random weights (nothing to cancel the errors, the layers' outputs dominating the small
     * embeddings) a token passes through at most 14 quantized products (2 layers × q, k, v, o and the experts'
     * gate/up and down), so the relative error lies between one product's 0.092 and √14 · 0.092 ≈ 0.345 (measured:
     * 0.274).
     */
    @Test
    void loadsWithUse4bitWithinTheNf4Error() {
        int held = 0;
        for (var e : nf4.parameters().entrySet()) {
            boolean want = Nf4Plan.target("thinker." + e.getKey());
            assertEquals(want, e.getValue().isNf4(), e.getKey());
            held += want ? 1 : 0;
        }
        assertEquals(2 * (4 + 2), held, "q, k, v, o and the two expert stacks of 2 layers");
        float[] q = logits(nf4).toFloatArray(), d = logits(dense).toFloatArray();
        double err = relRms(q, d);
        System.out.printf("nf4 thinker (tiny, I = 64): logits relative RMS error %.4f against the bf16 checkpoint%n", err);
        assertTrue(err > 0.092 && err < 0.345, "logits relative RMS error " + err);

        var reference = Thinker.load(model, DType.F32, Device.cpu());
        for (var e : nf4.parameters().entrySet())
            if (e.getValue().isNf4()) reference.parameters().get(e.getKey()).set(e.getValue().dense());
        double plumbing = relRms(q, logits(reference).toFloatArray());
        assertTrue(plumbing < 1e-5, "NF4 logits against the dense model with the dequantized weights: " + plumbing);

        String report = nf4.weightReport(), full = dense.weightReport();
        System.out.print(report);
        for (String kind : List.of("attention", "experts")) assertTrue(report.matches("(?s).*  " + kind + " +[0-9,]+ bytes  f32 \\+ nf4\\n.*")
                || report.matches("(?s).*  " + kind + " +[0-9,]+ bytes  nf4\\n.*"), report);
        for (String kind : List.of("router", "embeddings", "lm_head", "audio encoder")) assertTrue(report.matches("(?s).*  " + kind + " +[0-9,]+ bytes  f32\\n.*"), report);
        long experts = 0;
        for (var e : nf4.parameters().entrySet()) if (e.getKey().contains(".mlp.experts.")) experts += e.getValue().bytes();
        long gateUp = 8 * 128 * 64, down = 8 * 64 * 64;                    // codes, absmax codes, nested absmax, the 256-entry map
        assertEquals(2 * (gateUp / 2 + gateUp / 64 + 4 * 4 + 1024 + down / 2 + down / 64 + 4 * 2 + 1024), experts, "4.127 bits a weight, plus the map");
        assertTrue(total(report) < total(full), report + full);
    }

    static long total(String report) {
        var m = Pattern.compile("total +([0-9,]+) bytes").matcher(report);
        assertTrue(m.find(), report);
        return Long.parseLong(m.group(1).replace(",", ""));
    }

    /** omni quantize's checkpoint (sharded, bnb serialization) loads to the very bytes quantize-on-load made, without use_4bit. */
    @Test
    void quantizedCheckpointLoadsToTheBytesOfQuantizeOnLoad() throws Exception {
        Path out = dir.resolve("bnb");
        var w = Bnb4bitCheckpoint.write(model, out, 200_000);
        assertTrue(Files.isRegularFile(out.resolve(SafeTensors.INDEX_FILE)) && w.files().size() > 3, "sharded: " + w.files());
        assertEquals(12, w.nf4Weights());
        var q = JSON.readTree(out.resolve("config.json").toFile()).path("quantization_config");
        assertEquals("bitsandbytes", q.path("quant_method").asText());
        assertEquals("nf4", q.path("bnb_4bit_quant_type").asText());
        assertTrue(q.path("bnb_4bit_use_double_quant").asBoolean() && q.path("load_in_4bit").asBoolean());
        try (var st = SafeTensors.open(out)) {
            String key = "thinker.model.layers.1.mlp.experts.gate_up_proj";
            for (String part : Bnb4bit.keys(key)) assertTrue(st.contains(part), part);
            String state = new String(st.get(key + Bnb4bit.STATE).data().toByteArray());
            assertTrue(state.contains("\"dtype\": \"bfloat16\", \"shape\": [8, 128, 64]"), state);
        }
        Thinker back = Thinker.load(out, DType.F32, Device.cpu());
        for (var e : nf4.parameters().entrySet()) {
            Parameter want = e.getValue(), got = back.parameters().get(e.getKey());
            assertEquals(want.isNf4(), got.isNf4(), e.getKey());
            if (want.isNf4()) assertNf4Equal(e.getKey(), want.nf4(), got.nf4());
            else assertArrayEquals(want.value().toFloatArray(), got.value().toFloatArray(), e.getKey());
        }
        assertArrayEquals(logits(nf4).toFloatArray(), logits(back).toFloatArray());
    }

    /**
     * RandomWeights.buildNf4 holds use_4bit's weights (attention q/k/v/o, both expert stacks of each layer) as the host
     * quantizer makes them from build()'s very values, and every other weight (router, embeddings, lm_head, norms, audio)
     * as build() does.
     */
    @Test
    void randomWeightsBuiltInNf4AreTheDenseOnesQuantized() {
        Path config = model.resolve("config.json");
        var built = RandomWeights.buildNf4(config, 7, DType.F32, Device.cpu());
        Thinker dense = RandomWeights.build(config, 7, DType.BF16, Device.cpu());
        int held = 0;
        for (var e : dense.parameters().entrySet()) {
            Parameter want = e.getValue(), got = built.thinker().parameters().get(e.getKey());
            String key = "thinker." + e.getKey();
            assertEquals(Nf4Plan.target(key), got.isNf4(), key);
            if (!got.isNf4()) {
                assertArrayEquals(want.value().toFloatArray(), got.value().toFloatArray(), key);
                continue;
            }
            held++;
            assertEquals(DType.F32, got.dtype(), key);
            int k = want.shape()[want.shape().length - 1];
            assertNf4Equal(key, Nf4Weight.quantize(key, want.value().reshape(-1, k)).withDtype(DType.F32), got.nf4());
        }
        assertEquals(12, held);
        assertEquals(12, built.nf4Weights());
        assertTrue(built.quantizeSeconds() > 0 && built.notes().isEmpty(), built.toString());
    }

    static void assertNf4Equal(String key, Nf4Weight want, Nf4Weight got) {
        assertEquals(want.offset(), got.offset(), key);
        assertEquals(want.dtype(), got.dtype(), key);
        assertArrayEquals(want.packed().toLongArray(), got.packed().toLongArray(), key);
        assertArrayEquals(want.absmax().toLongArray(), got.absmax().toLongArray(), key);
        assertArrayEquals(want.nestedAbsmax().toFloatArray(), got.nestedAbsmax().toFloatArray(), key);
        assertArrayEquals(want.nestedCode().toFloatArray(), got.nestedCode().toFloatArray(), key);
    }

    /**
     * A checkpoint with each expert's projections in bnb 4-bit (transformers 4's per-expert Linears) loads NF4 without
     * use_4bit: each expert's codes as stored, the absmax double-quantized again over the stack (bound: Nf4WeightTest).
     */
    @Test
    void perExpertBnbTensorsAreRestacked() throws Exception {
        Path bnb = aligned(dir.resolve("per-expert-bnb"), true);
        Thinker t = Thinker.load(bnb, DType.F32, Device.cpu());
        var moe = (SparseMoe) t.modules().get("model.layers.0.mlp");
        assertTrue(moe.experts.gateUpProj.isNf4() && moe.experts.downProj.isNf4());
        assertFalse(t.parameters().get("model.layers.0.self_attn.q_proj.weight").isNf4(), "dense in the file, no use_4bit: dense");
        try (var st = SafeTensors.open(bnb)) {
            var weights = new dev.jomni.nn.io.SafeTensorWeights(st);
            Nf4Weight up3 = weights.nf4("thinker.model.layers.0.mlp.experts.3.up_proj.weight");
            long[] stacked = moe.experts.gateUpProj.nf4().packed().toLongArray(), own = up3.packed().toLongArray();
            int at = (3 * 128 + 64) * 64 / 2;                              // expert 3's up rows: 3·2I + I
            for (int i = 0; i < own.length; i++) assertEquals(own[i], stacked[at + i], "code byte " + i);
        }
        double err = relRms(logits(t).toFloatArray(), logits(dense).toFloatArray());
        System.out.printf("nf4 experts only (per-expert bnb): logits relative RMS error %.4f%n", err);
        assertTrue(err > 0.01 && err < 0.345, "logits with NF4 experts: relative RMS error " + err);
    }

    /** A missing or mis-sized bnb part names the tensor and the file. */
    @Test
    void aMissingOrCorruptPartNamesTheTensorAndFile() throws Exception {
        Path out = dir.resolve("bnb-single");
        Bnb4bitCheckpoint.write(model, out, Long.MAX_VALUE);
        for (String fault : List.of("missing", "corrupt")) {
            Path bad = dir.resolve("bad-" + fault);
            Files.createDirectories(bad);
            for (Path f : Files.list(out).toList()) if (!f.getFileName().toString().endsWith(".safetensors")) Files.copy(f, bad.resolve(f.getFileName()));
            String part = "thinker.model.layers.1.self_attn.k_proj.weight" + (fault.equals("missing") ? ".absmax" : ".nested_absmax");
            Map<String, TensorData> tensors = new LinkedHashMap<>();
            try (var st = SafeTensors.open(out)) {
                for (var t : st.tensors()) tensors.put(t.name(), TensorData.ofBytes(t.dtype(), t.shape(), t.data().toByteArray()));
            }
            if (fault.equals("missing")) tensors.remove(part);
            else tensors.put(part, TensorData.ofFloats(new float[] {1, 2, 3}, 3));
            SafeTensors.write(bad.resolve("model.safetensors"), tensors, Map.of());
            var e = assertThrows(IllegalArgumentException.class, () -> Thinker.load(bad, DType.F32, Device.cpu()));
            assertTrue(e.getMessage().contains(part) && e.getMessage().contains("model.safetensors"), e.getMessage());
        }
    }

    /** The tiny model's experts have K = 32 for down_proj: under use_4bit they stay dense (both stacks), named in the report. */
    @Test
    void expertsWithKNotAMultipleOf64StayDenseAndAreNamed() {
        Thinker t = Thinker.load(ThinkerParityTest.tiny("model"), DType.F32, Device.cpu(), true);
        assertTrue(t.parameters().get("model.layers.0.self_attn.o_proj.weight").isNf4());
        assertFalse(t.parameters().get("model.layers.0.mlp.experts.gate_up_proj").isNf4());
        assertFalse(t.parameters().get("model.layers.0.mlp.experts.down_proj").isNf4());
        String report = t.weightReport();
        assertTrue(report.contains("kept dense: thinker.model.layers.0.mlp.experts.down_proj [8, 64, 32]: K = 32 is not a multiple of 64"), report);
        assertTrue(report.contains("kept dense: thinker.model.layers.0.mlp.experts.gate_up_proj [8, 64, 64], with down_proj"), report);
    }

    /** LoRA on the NF4 Linears and the NF4 experts trains: every A and B gets a gradient, and a few steps lower the loss. */
    @Test
    void loraOverTheNf4BaseTrains() {
        Thinker t = Thinker.load(model, DType.F32, Device.cpu(), true);
        var adapter = LoraAdapter.create(t, new LoraAdapter.Spec(4, 8, 0, false, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), null), 7);
        List<Tensor> params = adapter.parameters();
        for (Tensor p : params) p.requiresGrad(true);
        Tensor ids = Tensor.of(new long[] {5, 17, 300, 42, 9, 990, 77, 3}, 1, 8), mask = Tensor.full(Device.cpu(), DType.I64, 1, 1, 8);
        double first = 0, last = 0;
        for (int step = 0; step < 6; step++) {
            for (Tensor p : params) p.zeroGrad();
            Tensor loss = t.loss(t.forward(ids, mask, null, null), ids, mask);
            loss.backward();
            if (step == 0) first = loss.item();
            last = loss.item();
            try (var g = Autograd.noGrad()) {
                for (Tensor p : params) if (p.grad() != null) p.assign(p.sub(p.grad().mul(0.5)));
            }
        }
        int text = 0;
        for (var e : adapter.gradients().entrySet()) {                    // the audio tower's LoRA sees no audio here
            if (e.getKey().contains("audio_tower")) continue;
            text++;
            assertTrue(e.getValue().abs().sum().item() > 0, e.getKey() + " gets a gradient through the NF4 base");
        }
        assertEquals(2 * (4 + 2) * 2, text, "A and B of q, k, v, o and both expert stacks, 2 layers");
        assertTrue(last < first - 0.05, "the loss falls: " + first + " → " + last);
    }
}

package dev.jomni.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.Npy;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fixture's PEFT 0.21 adapter (attention + fused experts) merged into the tiny base: the stacked experts' update
 * W[e] + s·B[e]·A[e] lands in the base checkpoint's own layout (the release's per-expert tensors, or stacked ones).
 */
class MergedExportTest {
    static final Path TINY = Path.of("../qwen-omni/src/test/resources/tiny");
    static final int E = 8, I = 32, H = 64;                                  // the tiny model's experts, moe_intermediate, hidden

    static float[] logits(Path model) {
        Thinker t = Thinker.load(model, DType.F32, Device.cpu());
        return t.forward(npy("input_ids.npy"), npy("attention_mask.npy"),
                Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy")), null).logits().toFloatArray();
    }

    static Tensor npy(String name) { return Npy.read(TINY.resolve(name)).toTensor().copy(); }

    static double relError(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs(a[i] - b[i]));
            den = Math.max(den, Math.abs(b[i]));
        }
        return num / den;
    }

    /**
     * Expert e's merged [out, in] by hand from PEFT's own layout: A [E·r, in] expert-major, B [out, r·E] expert fastest,
     * W + s·B_e·A_e in double, with B_e[o][j] = B[o][j·E + e] and A_e[j] = A[e·r + j].
     */
    static double[] byHand(float[] w, float[] a, float[] b, int out, int in, int r, int e, double s) {
        double[] m = new double[out * in];
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double d = 0;
                for (int j = 0; j < r; j++) d += (double) b[o * r * E + j * E + e] * a[(e * r + j) * in + i];
                m[o * in + i] = w[o * in + i] + s * d;
            }
        return m;
    }

    static void assertClose(double[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-5 * (1 + Math.abs(want[i])), what + " [" + i + "]");
    }

    @Test
    void stackedExpertsAreMergedIntoTheReleasesPerExpertTensors(@TempDir Path dir) {
        Thinker thinker = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
        LoraAdapter adapter = LoraAdapter.apply(TINY.resolve("lora/adapter"), thinker);
        Map<String, Tensor> peft = adapter.peftTensors();
        Path out = dir.resolve("merged");
        MergedExport.write(TINY.resolve("model"), adapter, out, 5_000_000_000L, DType.F32);

        String layer = "thinker.model.layers.1.mlp.experts.", peftLayer = "base_model.model." + layer;
        try (var base = SafeTensors.open(TINY.resolve("model")); var merged = SafeTensors.open(out)) {
            assertEquals(new TreeSet<>(base.names()), new TreeSet<>(merged.names()), "the base's own names, per expert");
            // gate_up: r 16, alpha 32 (the fixture's rank/alpha_pattern), scaling 2; PEFT wraps it innermost (base_layer).
            float[] a = peft.get(peftLayer + "base_layer.lora_A.weight").toFloatArray(), b = peft.get(peftLayer + "base_layer.lora_B.weight").toFloatArray();
            for (int e : new int[] {0, E - 1}) {
                float[] gate = base.get(layer + e + ".gate_proj.weight").toFloats(), up = base.get(layer + e + ".up_proj.weight").toFloats();
                float[] w = new float[2 * I * H];                             // [2I, H]: gate rows, then up rows
                System.arraycopy(gate, 0, w, 0, I * H);
                System.arraycopy(up, 0, w, I * H, I * H);
                double[] want = byHand(w, a, b, 2 * I, H, 16, e, 32.0 / 16);
                assertClose(java.util.Arrays.copyOfRange(want, 0, I * H), merged.get(layer + e + ".gate_proj.weight").toFloats(), "expert " + e + " gate_proj");
                assertClose(java.util.Arrays.copyOfRange(want, I * H, 2 * I * H), merged.get(layer + e + ".up_proj.weight").toFloats(), "expert " + e + " up_proj");
            }
            // down: r 8, alpha 16, scaling 2.
            float[] da = peft.get(peftLayer + "lora_A.weight").toFloatArray(), db = peft.get(peftLayer + "lora_B.weight").toFloatArray();
            int e = 3;
            assertClose(byHand(base.get(layer + e + ".down_proj.weight").toFloats(), da, db, H, I, 8, e, 16.0 / 8),
                    merged.get(layer + e + ".down_proj.weight").toFloats(), "expert 3 down_proj");
            String router = "thinker.model.layers.1.mlp.gate.weight";
            assertArrayEquals(base.get(router).toFloats(), merged.get(router).toFloats(), "what the adapter does not touch is copied");
        }
        double err = relError(logits(out), npy("lora/logits_lora.npy").toFloatArray());
        assertTrue(err < 1e-4, "the merged checkpoint gives PEFT's adapted logits: relative error " + err);
    }

    @Test
    void aStackedBaseIsWrittenStacked(@TempDir Path dir) throws Exception {
        // The tiny base rewritten in transformers 5's layout: every parameter under its tree name, experts stacked.
        Path base = Files.createDirectories(dir.resolve("base"));
        Thinker loaded = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
        Map<String, TensorData> tensors = new TreeMap<>();
        loaded.parameters().forEach((n, p) -> tensors.put("thinker." + n, TensorData.of(p.value())));
        SafeTensors.write(base.resolve(SafeTensors.SINGLE_FILE), tensors, Map.of("format", "pt"));
        for (String f : new String[] {"config.json", "generation_config.json", "preprocessor_config.json"})
            Files.copy(TINY.resolve("model").resolve(f), base.resolve(f));
        assertTrue(tensors.containsKey("thinker.model.layers.0.mlp.experts.gate_up_proj"));

        Thinker thinker = Thinker.load(base, DType.F32, Device.cpu());
        LoraAdapter adapter = LoraAdapter.apply(TINY.resolve("lora/adapter"), thinker);
        Path out = dir.resolve("merged");
        MergedExport.write(base, adapter, out, 5_000_000_000L, null);
        try (var merged = SafeTensors.open(out)) {
            assertEquals(tensors.keySet(), new TreeSet<>(merged.names()), "the stacked names stay stacked");
            assertArrayEquals(new long[] {E, 2 * I, H}, merged.get("thinker.model.layers.0.mlp.experts.gate_up_proj").shape());
            Tensor want = adapter.mergedWeights().get("thinker.model.layers.0.mlp.experts.down_proj");
            assertArrayEquals(want.toFloatArray(), merged.get("thinker.model.layers.0.mlp.experts.down_proj").toFloats());
        }
        double err = relError(logits(out), npy("lora/logits_lora.npy").toFloatArray());
        assertTrue(err < 1e-4, "relative error " + err);
    }
}

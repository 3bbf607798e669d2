package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.Parameter;
import dev.jomni.nn.io.Npy;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The tiny random Qwen3-Omni against transformers 5.17 (fixtures computed in f32 on the CPU). */
class ThinkerParityTest {
    static Thinker thinker;
    static Tensor inputIds, attentionMask, labels;
    static Thinker.Audio audio;
    static Thinker.Output out;

    static Path tiny(String name) {
        try {
            return Path.of(ThinkerParityTest.class.getResource("/tiny/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Tensor npy(String name) { return Npy.read(tiny(name)).toTensor().copy(); }

    @BeforeAll
    static void forward() {
        thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        inputIds = npy("input_ids.npy");
        attentionMask = npy("attention_mask.npy");
        labels = npy("labels.npy");
        audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        for (Parameter p : thinker.parameters().values()) p.value().requiresGrad(true);
        out = thinker.forward(inputIds, attentionMask, audio, null);
    }

    /** max |a − b| / max |b|, the fixtures' error measure. */
    static double relError(float[] a, float[] b) {
        assertEquals(b.length, a.length, "element count");
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num = Math.max(num, Math.abs(a[i] - b[i]));
            den = Math.max(den, Math.abs(b[i]));
        }
        return num / den;
    }

    @Test
    void audioEmbeddingsMatchTransformers() {
        double e = relError(out.audioEmbeds().toFloatArray(), npy("audio_embeds.npy").toFloatArray());
        assertTrue(e < 1e-4, "audio embeddings relative error " + e);
    }

    @Test
    void positionIdsMatchExactly() {
        float[] ref = npy("position_ids.npy").toFloatArray();              // [3, B, T]
        long[][][] p = out.positions();
        int b = p[0].length, t = p[0][0].length;
        for (int s = 0; s < 3; s++) for (int i = 0; i < b; i++) for (int j = 0; j < t; j++)
            assertEquals(ref[(s * b + i) * t + j], p[s][i][j], "position [" + s + "," + i + "," + j + "]");
    }

    @Test
    void hiddenStatesMatchTransformers() {
        Tensor ref = npy("hidden_states.npy");                                // [3, B, T, H]
        for (int k = 0; k < 3; k++) {
            double e = relError(out.hiddenStates().get(k).toFloatArray(), ref.narrow(0, k, 1).squeeze(0).toFloatArray());
            assertTrue(e < 1e-4, "hidden state " + k + " relative error " + e);
        }
    }

    @Test
    void logitsMatchTransformers() {
        double e = relError(out.logits().toFloatArray(), npy("logits.npy").toFloatArray());
        assertTrue(e < 1e-4, "logits relative error " + e);
    }

    @Test
    void lossAndGradientsMatchTransformers() throws Exception {
        Tensor loss = Thinker.loss(out.logits(), labels);
        double ref = 7.590020656585693;
        assertEquals(ref, loss.item(), ref * 1e-5);
        loss.backward();
        Map<String, Parameter> params = thinker.parameters();
        int compared = 0;
        try (var grads = SafeTensors.open(tiny("grads.safetensors"))) {
            for (String name : grads.names()) {
                float[] want = grads.get(name).toFloats();
                float[] got = grad(params, name).toFloatArray();          // the experts are stacked under transformers' names
                // Relative to the largest element, with a floor: some gradients are zero up to rounding
                // (a key bias cannot change a softmax over keys) and both sides hold only noise there.
                double e = relError(got, want), scale = maxAbs(want);
                assertTrue(e < 1e-3 || e * scale < 1e-7, name + ": gradient relative error " + e + " (largest element " + scale + ")");
                compared++;
            }
        }
        assertEquals(33, compared);
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    private static Tensor grad(Map<String, Parameter> params, String name) {
        Tensor p = params.get(name).value();
        return p.grad() == null ? Tensor.zeros(DType.F32, p.shape()) : p.grad();
    }

    @Test
    void batchedDecodingGivesEachRowItsOwnTokens() {
        long[] ids = inputIds.toLongArray(), lab = labels.toLongArray();
        int t = inputIds.size(1);
        List<long[]> prompts = new ArrayList<>();
        List<Thinker.Audio> clips = new ArrayList<>();
        for (int r = 0; r < 2; r++) {
            int len = 0;
            while (lab[r * t + len] == -100) len++;                          // labels start where the answer does
            prompts.add(java.util.Arrays.copyOfRange(ids, r * t, r * t + len));
            clips.add(new Thinker.Audio(audio.features().narrow(0, r, 1), new int[] {audio.frames()[r]}));
        }
        assertTrue(prompts.get(0).length != prompts.get(1).length, "rows of different lengths exercise the left padding");
        var settings = Generation.Settings.greedy(6);
        List<long[]> batched = Generation.generateBatch(thinker, prompts, clips, settings, (row, token) -> {});
        for (int r = 0; r < 2; r++)
            assertArrayEquals(Generation.greedy(thinker, prompts.get(r), clips.get(r), 6), batched.get(r), "row " + r);
    }

    @Test
    void decodePositionsCarryTheRopeDeltaOfAPaddedSingleTokenRow() {
        try (var g = dev.jomni.tensor.Autograd.noGrad(); var cache = new KvCache(thinker.config.text().numHiddenLayers())) {
            Tensor ids = Tensor.of(new long[] {0, 0, 7, 5, 6, 7}, 2, 3);
            thinker.forward(ids, Tensor.of(new long[] {0, 0, 1, 1, 1, 1}, 2, 3), null, cache);      // row 0: one valid token
            long[][][] p = thinker.forward(Tensor.of(new long[] {9, 9}, 2, 1), Tensor.of(new long[] {0, 0, 1, 1, 1, 1, 1, 1}, 2, 4), null, cache).positions();
            assertEquals(2, p[0][0][0], "row 0: 1 valid token before it + delta 1 (padding holds position 1)");
            assertEquals(3, p[0][1][0], "row 1: 3 valid tokens before it + delta 0");
        }
    }

    @Test
    void greedyDecodingMatchesTransformers() {
        long[] ids = inputIds.toLongArray();
        int t = inputIds.size(1), prompt = 32;
        long[] row = new long[prompt];
        System.arraycopy(ids, 0, row, 0, prompt);                           // item 0's prompt, unpadded
        long[] want = {244, 532, 0, 532, 345, 0, 532, 936};
        Thinker.Audio first = new Thinker.Audio(audio.features().narrow(0, 0, 1), new int[] {audio.frames()[0]});
        long[] got = Generation.greedy(thinker, row, first, want.length);
        assertArrayEquals(want, got);
        assertTrue(t > prompt);
    }
}

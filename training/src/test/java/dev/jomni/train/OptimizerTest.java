package dev.jomni.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OptimizerTest {
    @Test
    void dynamicMapsAreBitsandbytesShape() {
        float[] s = AdamW8bit.SIGNED, u = AdamW8bit.UNSIGNED;
        assertEquals(256, s.length);
        for (int i = 1; i < 256; i++) {
            assertTrue(s[i - 1] <= s[i]);
            assertTrue(u[i - 1] <= u[i]);
        }
        assertEquals(1f, s[255]);
        assertEquals(1f, u[255]);
        assertEquals(0f, u[0]);
        assertEquals(-0.99296875f, s[0], 1e-6f);                // −(mean of the last two points of linspace(0.1, 1, 65))
        assertEquals(0f, s[127]);                                // 127 negatives, zero, 127 positives and 1
        // smallest magnitude: 1e-6 · (0.1 + 1)/2 (i = 0 has two boundaries, one mean)
        assertEquals(5.5e-7f, s[128], 1e-12f);
        assertEquals(-5.5e-7f, s[126], 1e-12f);
        // unsigned i = 0: 1e-6 · means of linspace(0.1, 1, 3) = 1e-6·{0.325, 0.775}
        assertEquals(3.25e-7f, u[1], 1e-12f);
        assertEquals(7.75e-7f, u[2], 1e-12f);
    }

    /** y = X·wᵀ, a least-squares problem whose parameter (8192 elements, 32 blocks) gets 8-bit state. */
    private static double[] train(String optim, int steps, long[] stateBytes) {
        var gen = new Generator(11);
        Tensor x = Tensor.randn(gen, DType.F32, 96, 128), target = Tensor.randn(gen, DType.F32, 64, 128).mul(0.1);
        Tensor y = x.matmul(target.mT());
        Tensor w = Tensor.randn(gen, DType.F32, 64, 128).mul(0.1).requiresGrad(true);
        Tensor bias = Tensor.zeros(DType.F32, 64).requiresGrad(true);                  // 64 elements: f32 state
        try (Optimizer opt = Optimizer.create(optim, List.of(w, bias), new AdamW.Config(1e-2, 0.9, 0.999, 1e-8, 0.0))) {
            for (int s = 0; s < steps; s++) {
                Tensor loss = x.matmul(w.mT()).add(bias).sub(y).square().mean();
                loss.backward();
                opt.step();
                opt.zeroGrad();
            }
            if (stateBytes != null) stateBytes[0] = opt.stateBytes();
            double loss = x.matmul(w.mT()).add(bias).sub(y).square().mean().item();
            double[] out = new double[1 + 64 * 128];
            out[0] = loss;
            float[] wv = w.toFloatArray();
            for (int i = 0; i < wv.length; i++) out[1 + i] = wv[i];
            return out;
        }
    }

    @Test
    void eightBitAdamFollowsF32AdamOnARegression() {
        long[] bytes8 = new long[1], bytes32 = new long[1];
        double[] f32 = train("adamw_torch", 100, bytes32), q8 = train("adamw_8bit", 100, bytes8), paged = train("paged_adamw_8bit", 100, null);
        double start = train("adamw_torch", 0, null)[0];
        assertTrue(f32[0] < start * 0.05, "f32 AdamW converges: " + start + " → " + f32[0]);
        assertTrue(q8[0] < start * 0.05, "8-bit AdamW converges: " + start + " → " + q8[0]);
        // The bound: weights within 5% (relative L2) of the f32 run's after 100 steps at lr 1e-2.
        double num = 0, den = 0;
        for (int i = 1; i < f32.length; i++) {
            num += (q8[i] - f32[i]) * (q8[i] - f32[i]);
            den += f32[i] * f32[i];
        }
        assertTrue(Math.sqrt(num / den) < 0.05, "relative distance " + Math.sqrt(num / den));
        assertArrayEquals(q8, paged, "paged state computes the same");
        // 8192·2 bytes of codes + 32·2 absmax + 64·8 f32 for the bias, against 8256·8
        assertEquals(8192 * 2 + 32 * 2 * 4 + 64 * 8, bytes8[0]);
        assertEquals((8192 + 64) * 8, bytes32[0]);
        assertTrue(bytes8[0] < bytes32[0] * 0.27, bytes8[0] + " vs " + bytes32[0]);
    }

    @Test
    void stateRoundTripsBitForBit() {
        for (String optim : List.of("adamw_torch", "adamw_8bit", "paged_adamw_8bit")) {
            var gen = new Generator(5);
            Tensor w0 = Tensor.randn(gen, DType.F32, 80, 64), b0 = Tensor.randn(gen, DType.F32, 10);
            Tensor[] gradsA = {Tensor.randn(gen, DType.F32, 80, 64), Tensor.randn(gen, DType.F32, 80, 64)};
            Tensor[] gradsB = {Tensor.randn(gen, DType.F32, 10), Tensor.randn(gen, DType.F32, 10)};
            var cfg = new AdamW.Config(1e-3, 0.9, 0.999, 1e-8, 0.01);
            // run 1: two steps straight
            Tensor w1 = w0.copy().requiresGrad(true), b1 = b0.copy().requiresGrad(true);
            Optimizer o1 = Optimizer.create(optim, List.of(w1, b1), cfg);
            // run 2: one step, state saved, a fresh optimizer loads it and does the second
            Tensor w2 = w0.copy().requiresGrad(true), b2 = b0.copy().requiresGrad(true);
            Optimizer o2 = Optimizer.create(optim, List.of(w2, b2), cfg);
            w1.setGrad(gradsA[0].copy()); b1.setGrad(gradsB[0].copy()); o1.step();
            w2.setGrad(gradsA[0].copy()); b2.setGrad(gradsB[0].copy()); o2.step();
            Map<String, TensorData> saved = o2.state();
            o2.close();
            Optimizer o3 = Optimizer.create(optim, List.of(w2, b2), cfg);
            o3.loadState(saved, "test");
            assertEquals(1, o3.steps());
            w1.setGrad(gradsA[1].copy()); b1.setGrad(gradsB[1].copy()); o1.step();
            w2.setGrad(gradsA[1].copy()); b2.setGrad(gradsB[1].copy()); o3.step();
            assertArrayEquals(w1.toFloatArray(), w2.toFloatArray(), optim);
            assertArrayEquals(b1.toFloatArray(), b2.toFloatArray(), optim);
            var s1 = o1.state();
            var s3 = o3.state();
            assertEquals(s1.keySet(), s3.keySet());
            for (String k : s1.keySet()) assertArrayEquals(s1.get(k).toByteArray(), s3.get(k).toByteArray(), optim + " " + k);
            o1.close();
            o3.close();
        }
    }

    @Test
    void aStateOfAnotherOptimizerIsRefused() {
        Tensor w = Tensor.zeros(DType.F32, 4).requiresGrad(true);
        var cfg = AdamW.Config.defaults(1e-3);
        var torch = Optimizer.create("adamw_torch", List.of(w), cfg).state();
        var e = assertThrows(IllegalArgumentException.class, () -> Optimizer.create("adamw_8bit", List.of(w), cfg).loadState(torch, "ckpt/optimizer.safetensors"));
        assertTrue(e.getMessage().contains("ckpt/optimizer.safetensors"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Optimizer.create("sgd", List.of(w), cfg));
    }

    @Test
    void schedulesMatchTransformers() {
        var linear = LrSchedule.of("linear", 1.0, 0.1, 0, 100);           // warmup ⌈10⌉
        assertEquals(10, linear.warmupSteps());
        assertEquals(0.0, linear.at(0));
        assertEquals(0.5, linear.at(5), 1e-12);
        assertEquals(1.0, linear.at(10), 1e-12);
        assertEquals(0.5, linear.at(55), 1e-12);
        assertEquals(0.0, linear.at(100), 1e-12);
        var cosine = LrSchedule.of("cosine", 2.0, 0, 4, 14);
        assertEquals(1.0, cosine.at(2), 1e-12);
        assertEquals(2.0, cosine.at(4), 1e-12);
        assertEquals(1.0, cosine.at(9), 1e-12);                              // half way: cos(π/2)
        assertEquals(0.0, cosine.at(14), 1e-12);
        assertEquals(3.0, LrSchedule.of("constant", 3.0, 0.5, 0, 10).at(0));
        assertEquals(1.5, LrSchedule.of("constant_with_warmup", 3.0, 0.5, 0, 10).at(2.5 > 0 ? 2 : 0) * 2.5 / 2, 1e-12);
        assertEquals(3.0, LrSchedule.of("constant_with_warmup", 3.0, 0.5, 0, 10).at(7), 1e-12);
        assertEquals(3, LrSchedule.of("linear", 1, 0.21, 0, 10).warmupSteps());   // ceil(2.1)
        assertEquals(7, LrSchedule.of("linear", 1, 0.21, 7, 10).warmupSteps());   // warmup_steps wins
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.of("polynomial_x", 1, 0, 0, 10));
    }

    @Test
    void clippingScalesToTheGlobalNorm() {
        Tensor a = Tensor.zeros(DType.F32, 2).requiresGrad(true), b = Tensor.zeros(DType.F32, 1).requiresGrad(true);
        a.setGrad(Tensor.of(new float[] {3, 0}, 2));
        b.setGrad(Tensor.of(new float[] {4}, 1));
        assertEquals(5.0, GradClip.clip(List.of(a, b), 1.0), 1e-12);
        double c = 1.0 / (5 + 1e-6);
        assertArrayEquals(new float[] {(float) (3 * c), 0}, a.grad().toFloatArray(), 1e-7f);
        assertArrayEquals(new float[] {(float) (4 * c)}, b.grad().toFloatArray(), 1e-7f);
        assertEquals(1.0, GradClip.clip(List.of(a, b), 10.0), 1e-5);        // under the limit: unchanged
        assertEquals((float) (4 * c), b.grad().toFloatArray()[0]);
    }

    @Test
    void clippingOnTheDeviceReturnsTheNormAsATensorAndLeavesSmallGradientsBitForBit() {
        var gen = new Generator(12);
        Tensor a = Tensor.zeros(DType.F32, 50).requiresGrad(true), b = Tensor.zeros(DType.F32, 7).requiresGrad(true);
        Tensor none = Tensor.zeros(DType.F32, 3).requiresGrad(true);          // no gradient: skipped
        a.setGrad(Tensor.randn(gen, DType.F32, 50));
        b.setGrad(Tensor.randn(gen, DType.F32, 7));
        float[] ga = a.grad().toFloatArray(), gb = b.grad().toFloatArray();
        double sq = 0;
        for (float f : ga) sq += (double) f * f;
        for (float f : gb) sq += (double) f * f;
        Tensor norm = GradClip.clipOnDevice(List.of(a, none, b), 1e3);
        assertEquals(DType.F64, norm.dtype());
        assertEquals(Math.sqrt(sq), norm.item(), 1e-12 * Math.sqrt(sq));
        assertArrayEquals(ga, a.grad().toFloatArray(), "under the limit the factor is exactly 1");
        assertArrayEquals(gb, b.grad().toFloatArray());
        GradClip.clipOnDevice(List.of(a, b), 0.5);
        double coef = 0.5 / (Math.sqrt(sq) + 1e-6);
        for (int i = 0; i < ga.length; i++) assertEquals((float) (ga[i] * coef), a.grad().toFloatArray()[i], "element " + i + " scaled once in f64");
        assertNull(GradClip.clipOnDevice(List.of(none), 1.0), "no gradients: no norm");
    }
}

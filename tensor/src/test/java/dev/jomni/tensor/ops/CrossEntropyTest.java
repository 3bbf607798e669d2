package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.Parallel;
import dev.jomni.tensor.spi.Backend;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

class CrossEntropyTest {
    private static final long IGNORE = -100;

    /** Targets in [0, classes), every third one ignore_index (never the first). */
    static Tensor targets(Generator g, int n, int classes) {
        long[] t = new long[n];
        for (int i = 0; i < n; i++) t[i] = i % 3 == 2 ? IGNORE : g.nextInt(classes);
        return Tensor.of(t, n);
    }

    /** The composition the op replaced: log-softmax, gather, masked mean (f32 at least). */
    static Tensor composed(Tensor logits, Tensor targets) {
        int c = logits.size(-1);
        Tensor t = targets.reshape(-1);
        Tensor valid = t.ne(IGNORE);
        Tensor safe = Tensor.where(valid, t, Tensor.zeros(DType.I64));
        Tensor logp = logits.reshape(-1, c).to(logits.dtype().atLeastF32()).logSoftmax(-1);
        Tensor picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1);
        Tensor w = valid.to(logp.dtype());
        return picked.mul(w).sum().neg().div(w.sum());
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    /** Central difference of f along a random direction of input `which` against the analytic gradient, in f64. */
    static void gradCheck(String name, Function<Tensor[], Tensor> f, int which, Tensor... inputs) {
        Generator g = new Generator(name.hashCode());
        Tensor[] x = inputs.clone();
        x[which] = inputs[which].detach().requiresGrad(true);
        f.apply(x).backward();
        Tensor v = Tensor.randn(g, DType.F64, x[which].shape());
        double analytic = x[which].grad().mul(v).sum().item(), eps = 1e-6;
        double plus, minus;
        try (var off = Autograd.noGrad()) {
            Tensor[] p = inputs.clone(), m = inputs.clone();
            p[which] = inputs[which].add(v.mul(eps));
            m[which] = inputs[which].sub(v.mul(eps));
            plus = f.apply(p).item();
            minus = f.apply(m).item();
        }
        double numeric = (plus - minus) / (2 * eps), err = Math.abs(analytic - numeric);
        assertTrue(err <= 1e-7 + 1e-6 * Math.abs(numeric),
                name + ": input " + which + ": analytic " + analytic + " vs numeric " + numeric + " (error " + err + ")");
    }

    @Test
    void handComputedValuesAverageOverValidTargetsOnly() {
        Tensor logits = Tensor.of(new double[] {0, 0, 0, 1, 2, 3}, 2, 3);
        double l0 = Math.log(3), l1 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 1;
        assertEquals((l0 + l1) / 2, logits.crossEntropy(Tensor.of(new long[] {1, 0}, 2), IGNORE).item(), 1e-14);
        assertEquals(l0, logits.crossEntropy(Tensor.of(new long[] {1, IGNORE}, 2), IGNORE).item(), 1e-14);
        assertEquals(l1, logits.crossEntropy(Tensor.of(new int[] {-100, 0}, 2), IGNORE).item(), 1e-14, "i32 targets");
        // d/dx of (lse − x_t)/1 on row 1 = softmax − onehot; row 0 (ignored) gets nothing
        Tensor x = logits.detach().requiresGrad(true);
        x.crossEntropy(Tensor.of(new long[] {IGNORE, 0}, 2), IGNORE).backward();
        double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertArrayEquals(new double[] {0, 0, 0, Math.exp(1) / z - 1, Math.exp(2) / z, Math.exp(3) / z}, x.grad().toDoubleArray(), 1e-14);
    }

    @Test
    void allTargetsIgnoredGiveNaNAndAZeroGradient() {
        Tensor x = Tensor.randn(new Generator(1), DType.F64, 4, 5).requiresGrad(true);
        Tensor loss = x.crossEntropy(Tensor.full(DType.I64, IGNORE, 4), IGNORE);
        assertTrue(Double.isNaN(loss.item()), "PyTorch's mean over no valid target is nan, got " + loss.item());
        loss.backward();
        assertArrayEquals(new double[20], x.grad().toDoubleArray());
    }

    @Test
    void targetOutOfRangeNamesItsPositionAndValue() {
        Tensor logits = Tensor.randn(new Generator(2), DType.F32, 3, 4);
        var e = assertThrows(IllegalArgumentException.class, () -> logits.crossEntropy(Tensor.of(new long[] {0, IGNORE, 4}, 3), IGNORE));
        assertEquals("crossEntropy: target 4 at position 2 is outside [0, 4) and is not ignore_index -100", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> logits.crossEntropy(Tensor.of(new long[] {-1, 0, 0}, 3), IGNORE));
        assertTrue(e.getMessage().contains("target -1 at position 0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> logits.crossEntropy(Tensor.of(new long[] {0, 0}, 2), IGNORE));
        assertTrue(e.getMessage().startsWith("crossEntropy: logits [3, 4]"), e.getMessage());
    }

    @Test
    void gradientMatchesFiniteDifferencesInF64() {
        Generator g = new Generator(3);
        for (int[] s : new int[][] {{1, 1}, {7, 5}, {2, 3, 31}}) {
            int n = s.length == 2 ? s[0] : s[0] * s[1], c = s[s.length - 1];
            Tensor t = targets(g, n, c);
            Tensor shapedT = s.length == 2 ? t : t.reshape(s[0], s[1]);
            Tensor x = Tensor.randn(g, DType.F64, s);
            gradCheck("crossEntropy " + java.util.Arrays.toString(s), in -> in[0].crossEntropy(shapedT, IGNORE), 0, x);
        }
    }

    @Test
    void matchesTheCompositionInF32AndBf16OnOddSizes() {
        Generator g = new Generator(4);
        for (int[] s : new int[][] {{1, 1}, {31, 7}, {5, 4097}, {33, 300}}) {
            Tensor t = targets(g, s[0], s[1]);
            for (DType d : new DType[] {DType.F32, DType.BF16, DType.F64}) {
                Tensor x = Tensor.randn(g, DType.F32, s).mul(3).to(d).detach().requiresGrad(true);
                Tensor y = x.detach().requiresGrad(true);
                Tensor loss = x.crossEntropy(t, IGNORE), ref = composed(y, t);
                assertEquals(d.atLeastF32(), loss.dtype());
                double tol = d == DType.F64 ? 1e-13 : 2e-6;
                assertEquals(ref.item(), loss.item(), tol * Math.max(1, Math.abs(ref.item())), d + " " + java.util.Arrays.toString(s));
                loss.backward();
                ref.backward();
                assertEquals(d, x.grad().dtype());
                // bf16 gradients: both round the same f32-ish value to bf16, off by at most one bf16 step;
                // f32: the composition's logSoftmax backward sums in another order (a few ulps of the ~1/N entries)
                double gTol = d == DType.F64 ? 1e-15 : d == DType.BF16 ? 1.0 / 128 / s[0] : 1e-6;
                double err = maxAbsDiff(x.grad().toFloatArray(), y.grad().toFloatArray());
                assertTrue(err <= gTol, d + " " + java.util.Arrays.toString(s) + ": gradient differs by " + err);
            }
        }
    }

    @Test
    void bitsDoNotDependOnTheThreadCount() {
        Generator g = new Generator(5);
        Tensor x = Tensor.randn(g, DType.F32, 67, 1001), t = targets(g, 67, 1001);
        float[][] out = new float[2][];
        int[] threads = {1, 3};
        for (int i = 0; i < 2; i++) {
            int k = i;
            Parallel.withThreads(threads[i], () -> {
                Tensor xi = x.detach().requiresGrad(true);
                Tensor loss = xi.crossEntropy(t, IGNORE);
                loss.backward();
                float[] grad = xi.grad().toFloatArray();
                out[k] = java.util.Arrays.copyOf(grad, grad.length + 1);
                out[k][grad.length] = (float) loss.item();
            });
        }
        assertArrayEquals(out[0], out[1]);
    }

    @Test
    void composedKernelsMatchTheCpuKernels() {
        Generator g = new Generator(6);
        var cpu = Backend.of(dev.jomni.tensor.Device.cpu()).kernels(CrossEntropy.Kernels.class);
        var composed = new CrossEntropy.Composed();
        for (DType d : new DType[] {DType.F32, DType.BF16}) {
            int n = 37, c = 301;
            Tensor x = Tensor.randn(g, DType.F32, n, c).mul(3).to(d), t = targets(g, n, c);
            Tensor scale = Tensor.full(DType.F32, 0.37);
            Tensor[] a = {Tensor.empty(DType.F32, n), Tensor.empty(DType.F32, n), Tensor.empty(d, n, c)};
            Tensor[] b = {Tensor.empty(DType.F32, n), Tensor.empty(DType.F32, n), Tensor.empty(d, n, c)};
            cpu.forward(x, t, IGNORE, a[0], a[1]);
            cpu.backward(x, t, a[0], scale, IGNORE, a[2]);
            composed.forward(x, t, IGNORE, b[0], b[1]);
            composed.backward(x, t, b[0], scale, IGNORE, b[2]);
            assertTrue(maxAbsDiff(a[0].toFloatArray(), b[0].toFloatArray()) <= 1e-5, d + " lse");
            assertTrue(maxAbsDiff(a[1].toFloatArray(), b[1].toFloatArray()) <= 1e-5, d + " rowLoss");
            assertTrue(maxAbsDiff(a[2].toFloatArray(), b[2].toFloatArray()) <= (d == DType.BF16 ? 0.37 / 128 : 1e-6), d + " dLogits");
        }
    }
}

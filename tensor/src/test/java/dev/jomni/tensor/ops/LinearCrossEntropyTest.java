package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.CrossEntropyTest.gradCheck;
import static dev.jomni.tensor.ops.CrossEntropyTest.maxAbsDiff;
import static dev.jomni.tensor.ops.CrossEntropyTest.targets;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuLinearCrossEntropy;
import dev.jomni.tensor.cpu.Parallel;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class LinearCrossEntropyTest {
    private static final long IGNORE = -100;
    /** Chunk sizes [tokens, vocabulary]: one by one, sizes dividing neither N nor V, the default, one chunk. */
    private static final int[][] CHUNKS = {{1, 1}, {3, 5}, {4, 16}, {256, 2048}, {1 << 20, 1 << 20}};

    private static Tensor fused(Tensor h, Tensor w, Tensor t, int[] chunk) {
        return LinearCrossEntropy.linearCrossEntropy(h, w, t, IGNORE, new CpuLinearCrossEntropy(chunk[0], chunk[1]));
    }

    private static Tensor composed(Tensor h, Tensor w, Tensor t) {
        return CrossEntropyTest.composed(h.matmul(w.mT()), t);
    }

    @Test
    void handComputedValues() {
        // hidden rows (1, 0), (0, 2), (1, 1); weight rows (1, 0), (0, 1), (1, -1): logits [[1,0,1],[0,2,-2],[1,1,0]]
        Tensor h = Tensor.of(new double[] {1, 0, 0, 2, 1, 1}, 3, 2), w = Tensor.of(new double[] {1, 0, 0, 1, 1, -1}, 3, 2);
        Tensor t = Tensor.of(new long[] {2, IGNORE, 2}, 3);
        double l0 = Math.log(2 * Math.E + 1) - 1, l2 = Math.log(2 * Math.E + 1);
        for (int[] chunk : CHUNKS) assertEquals((l0 + l2) / 2, fused(h, w, t, chunk).item(), 1e-15, Arrays.toString(chunk));
        assertEquals((l0 + l2) / 2, h.linearCrossEntropy(w, t, IGNORE).item(), 1e-15);
    }

    @Test
    void gradientsMatchFiniteDifferencesInF64ForEveryInput() {
        Generator g = new Generator(11);
        int n = 7, hd = 6, v = 11;
        Tensor h = Tensor.randn(g, DType.F64, n, hd), w = Tensor.randn(g, DType.F64, v, hd), t = targets(g, n, v);
        for (int[] chunk : CHUNKS)
            for (int input = 0; input < 2; input++)
                gradCheck("linearCrossEntropy " + Arrays.toString(chunk), x -> fused(x[0], x[1], t, chunk), input, h, w);
    }

    @Test
    void matchesMatmulThenCrossEntropyForEveryChunkSize() {
        Generator g = new Generator(12);
        for (int[] s : new int[][] {{1, 1, 1}, {7, 5, 11}, {31, 17, 300}, {40, 3, 4097}}) {
            int n = s[0], hd = s[1], v = s[2];
            Tensor t = targets(g, n, v);
            for (DType d : new DType[] {DType.F64, DType.F32}) {
                Tensor h = Tensor.randn(g, DType.F32, n, hd).to(d), w = Tensor.randn(g, DType.F32, v, hd).to(d);
                Tensor hr = h.detach().requiresGrad(true), wr = w.detach().requiresGrad(true);
                Tensor ref = composed(hr, wr, t);
                ref.backward();
                for (int[] chunk : CHUNKS) {
                    String at = d + " N,H,V " + Arrays.toString(s) + " chunks " + Arrays.toString(chunk);
                    Tensor hf = h.detach().requiresGrad(true), wf = w.detach().requiresGrad(true);
                    Tensor loss = fused(hf, wf, t, chunk);
                    assertEquals(d, loss.dtype());
                    double tol = d == DType.F64 ? 1e-13 : 2e-6;
                    assertEquals(ref.item(), loss.item(), tol * Math.max(1, Math.abs(ref.item())), at);
                    loss.backward();
                    // f32: both sides sum V (dHidden) or N (dWeight) rounded terms, in different orders
                    double rel = d == DType.F64 ? 1e-13 : 1e-5;
                    double eh = maxAbsDiff(hf.grad().toFloatArray(), hr.grad().toFloatArray()), sh = hr.grad().abs().max().item();
                    double ew = maxAbsDiff(wf.grad().toFloatArray(), wr.grad().toFloatArray()), sw = wr.grad().abs().max().item();
                    assertTrue(eh <= rel * sh, at + ": dHidden differs by " + eh + " (largest " + sh + ")");
                    assertTrue(ew <= rel * sw, at + ": dWeight differs by " + ew + " (largest " + sw + ")");
                }
            }
        }
    }

    @Test
    void bf16InputsGiveF32LogitsAndLoss() {
        // The logit chunks are f32 products of the bf16 values (not rounded back to bf16): the same as
        // converting both inputs to f32 first, then matmul and crossEntropy.
        Generator g = new Generator(13);
        int n = 23, hd = 19, v = 301;
        Tensor h = Tensor.randn(g, DType.F32, n, hd).to(DType.BF16), w = Tensor.randn(g, DType.F32, v, hd).to(DType.BF16);
        Tensor t = targets(g, n, v);
        Tensor hr = h.to(DType.F32).detach().requiresGrad(true), wr = w.to(DType.F32).detach().requiresGrad(true);
        Tensor ref = composed(hr, wr, t);
        ref.backward();
        Tensor hf = h.detach().requiresGrad(true), wf = w.detach().requiresGrad(true);
        Tensor loss = fused(hf, wf, t, new int[] {5, 64});
        assertEquals(DType.F32, loss.dtype());
        assertEquals(ref.item(), loss.item(), 2e-6 * Math.abs(ref.item()));
        loss.backward();
        assertEquals(DType.BF16, hf.grad().dtype());
        assertEquals(DType.BF16, wf.grad().dtype());
        // rounded once to bf16 from f32 sums: within one bf16 step (2⁻⁸ relative) of the f32 gradient
        float[] gh = hf.grad().toFloatArray(), rh = hr.grad().toFloatArray(), gw = wf.grad().toFloatArray(), rw = wr.grad().toFloatArray();
        for (int i = 0; i < gh.length; i++) assertEquals(rh[i], gh[i], Math.abs(rh[i]) / 128 + 1e-9, "dHidden " + i);
        for (int i = 0; i < gw.length; i++) assertEquals(rw[i], gw[i], Math.abs(rw[i]) / 128 + 1e-9, "dWeight " + i);
    }

    @Test
    void allTargetsIgnoredGiveNaNAndZeroGradients() {
        Generator g = new Generator(14);
        Tensor h = Tensor.randn(g, DType.F64, 5, 3).requiresGrad(true), w = Tensor.randn(g, DType.F64, 7, 3).requiresGrad(true);
        Tensor loss = fused(h, w, Tensor.full(DType.I64, IGNORE, 5), new int[] {2, 3});
        assertTrue(Double.isNaN(loss.item()), "PyTorch's mean over no valid target is nan, got " + loss.item());
        loss.backward();
        assertArrayEquals(new double[15], h.grad().toDoubleArray());
        assertArrayEquals(new double[21], w.grad().toDoubleArray());
    }

    @Test
    void aFrozenWeightGetsNoGradientAndIsNotComputed() {
        Generator g = new Generator(15);
        Tensor h = Tensor.randn(g, DType.F32, 9, 4).requiresGrad(true), w = Tensor.randn(g, DType.F32, 13, 4), t = targets(g, 9, 13);
        boolean[] askedForWeight = {true};
        var cpu = new CpuLinearCrossEntropy(4, 5);
        LinearCrossEntropy.Kernels spy = new LinearCrossEntropy.Kernels() {
            @Override public void forward(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
                cpu.forward(hidden, weight, targets, ignoreIndex, lse, rowLoss);
            }
            @Override public void backward(Tensor hidden, Tensor weight, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex,
                    Tensor dHidden, Tensor dWeight) {
                askedForWeight[0] = dWeight != null;
                cpu.backward(hidden, weight, targets, lse, scale, ignoreIndex, dHidden, dWeight);
            }
        };
        LinearCrossEntropy.linearCrossEntropy(h, w, t, IGNORE, spy).backward();
        assertTrue(!askedForWeight[0], "backward computed dWeight for a weight that needs no gradient");
        assertNull(w.grad());
        Tensor hr = h.detach().requiresGrad(true);
        composed(hr, w, t).backward();
        assertTrue(maxAbsDiff(h.grad().toFloatArray(), hr.grad().toFloatArray()) <= 1e-6);
    }

    @Test
    void neverAllocatesTheLogits() {
        // N·V f32 logits would be 4 MB; the op's scratch is a tn×tv chunk plus token/weight-sized rows.
        Generator g = new Generator(16);
        int n = 256, hd = 8, v = 4096, tn = 64, tv = 256;
        Tensor h = Tensor.randn(g, DType.F32, n, hd), w = Tensor.randn(g, DType.F32, v, hd), t = targets(g, n, v);
        long logits = 4L * n * v;
        long fusedPeak = peakOf(() -> {
            Tensor hf = h.detach().requiresGrad(true), wf = w.detach().requiresGrad(true);
            fused(hf, wf, t, new int[] {tn, tv}).backward();
        });
        // chunk scratch (logits tn×tv; tokens, their gradient and a product tn×H; a product tv×H), the
        // gradients and their accumulated copies (2·(N·H + V·H)), per-row statistics and scalars.
        long bound = 4L * (tn * tv + 3L * tn * hd + (long) tv * hd + 2L * (n * hd + (long) v * hd) + 4L * n) + 4096;
        assertTrue(fusedPeak <= bound, "fused peak " + fusedPeak + " bytes > bound " + bound);
        assertTrue(bound < logits / 2, "the bound " + bound + " must be far below the logits' " + logits);
        long composedPeak = peakOf(() -> {
            Tensor hr = h.detach().requiresGrad(true), wr = w.detach().requiresGrad(true);
            composed(hr, wr, t).backward();
        });
        assertTrue(composedPeak >= logits, "the measure sees the composition's logits: " + composedPeak + " < " + logits);
    }

    /** Bytes allocated on top of what was live, at the most, while running body (its tensors freed at the end). */
    private static long peakOf(Runnable body) {
        try (var scope = Scope.open()) {
            long before = Memory.resetPeak();
            body.run();
            return Memory.peakBytes() - before;
        }
    }

    @Test
    void targetOutOfRangeNamesItsPositionAndValue() {
        Tensor h = Tensor.randn(new Generator(17), DType.F32, 3, 2), w = Tensor.randn(new Generator(18), DType.F32, 5, 2);
        var e = assertThrows(IllegalArgumentException.class, () -> h.linearCrossEntropy(w, Tensor.of(new long[] {0, 5, IGNORE}, 3), IGNORE));
        assertEquals("linearCrossEntropy: target 5 at position 1 is outside [0, 5) and is not ignore_index -100", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> h.linearCrossEntropy(w.mT(), Tensor.of(new long[] {0, 1, 2}, 3), IGNORE));
        assertTrue(e.getMessage().startsWith("linearCrossEntropy: hidden [3, 2], weight [2, 5], targets [3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> h.linearCrossEntropy(w.to(DType.F64), Tensor.of(new long[] {0, 1, 2}, 3), IGNORE));
        assertTrue(e.getMessage().contains("one float dtype"), e.getMessage());
    }

    @Test
    void bitsDoNotDependOnTheThreadCount() {
        Generator g = new Generator(19);
        Tensor h = Tensor.randn(g, DType.F32, 45, 17), w = Tensor.randn(g, DType.F32, 701, 17), t = targets(g, 45, 701);
        float[][] out = new float[2][];
        int[] threads = {1, 3};
        for (int i = 0; i < 2; i++) {
            int k = i;
            Parallel.withThreads(threads[i], () -> {
                Tensor hf = h.detach().requiresGrad(true), wf = w.detach().requiresGrad(true);
                Tensor loss = fused(hf, wf, t, new int[] {16, 300});
                loss.backward();
                out[k] = Tensor.cat(java.util.List.of(loss.reshape(1), hf.grad().reshape(-1), wf.grad().reshape(-1)), 0).toFloatArray();
            });
        }
        assertArrayEquals(out[0], out[1]);
    }
}

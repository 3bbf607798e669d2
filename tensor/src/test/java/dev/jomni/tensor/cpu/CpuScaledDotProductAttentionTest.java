package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import org.junit.jupiter.api.Test;

/** The CPU kernel's block sizes change rounding only, and its bits do not depend on the thread count. */
class CpuScaledDotProductAttentionTest {
    private static final Generator GEN = new Generator(77);

    private static Tensor randn(DType t, int... shape) { return Tensor.randn(GEN, DType.F64, shape).to(t); }

    /** out, lse, dq, dk, dv of one kernel on one problem, as doubles, concatenated. */
    private static double[] run(CpuScaledDotProductAttention kernels, Tensor q, Tensor k, Tensor v, Tensor dOut, AttentionMask m) {
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3);
        Tensor out = Tensor.empty(q.dtype(), b, nh, t, d), lse = Tensor.empty(q.dtype().atLeastF32(), b, nh, t);
        Tensor dq = Tensor.empty(q.dtype(), q.shape()), dk = Tensor.empty(k.dtype(), k.shape()), dv = Tensor.empty(v.dtype(), v.shape());
        double scale = 1 / Math.sqrt(d);
        kernels.forward(q, k, v, m, scale, out, lse);
        kernels.backward(q, k, v, out, lse, dOut, m, scale, dq, dk, dv);
        return Tensor.cat(java.util.List.of(out.reshape(-1), lse.reshape(-1), dq.reshape(-1), dk.reshape(-1), dv.reshape(-1)), 0).toDoubleArray();
    }

    private static AttentionMask[] masks(int s, Tensor keyRows) {
        return new AttentionMask[] {AttentionMask.causal(0).withKeyMask(keyRows), AttentionMask.none(), AttentionMask.blockDiagonal(5, 17, 1, s - 23)};
    }

    @Test
    void tinyBlocksAgreeWithTheDefaultBlocks() {
        int b = 2, nh = 4, nkv = 2, t = 41, d = 6;
        Tensor q = randn(DType.F64, b, nh, t, d), k = randn(DType.F64, b, nkv, t, d), v = randn(DType.F64, b, nkv, t, d);
        Tensor dOut = randn(DType.F64, b, nh, t, d);
        long[] rows = new long[b * t];
        for (int j = 3; j < t; j++) rows[j] = 1;                               // row 0 left-padded by 3
        for (int j = 0; j < t - 7; j++) rows[t + j] = 1;                       // row 1 right-padded by 7
        for (AttentionMask m : masks(t, Tensor.of(rows, b, t))) {
            double[] ref = run(new CpuScaledDotProductAttention(), q, k, v, dOut, m);
            for (int[] blocks : new int[][] {{1, 1}, {3, 5}, {7, 64}, {64, 4}}) {
                double[] got = run(new CpuScaledDotProductAttention(blocks[0], blocks[1]), q, k, v, dOut, m);
                for (int x = 0; x < ref.length; x++)
                    assertTrue(Math.abs(got[x] - ref[x]) <= 1e-12 * (1 + Math.abs(ref[x])) || got[x] == ref[x],
                            m + " blocks " + blocks[0] + "×" + blocks[1] + " element " + x + ": " + got[x] + " vs " + ref[x]);
            }
        }
    }

    @Test
    void bitsDoNotDependOnTheThreadCount() {
        int b = 2, nh = 4, nkv = 1, t = 150, d = 16;
        Tensor q = randn(DType.F32, b, nh, t, d), k = randn(DType.F32, b, nkv, t, d), v = randn(DType.F32, b, nkv, t, d);
        Tensor dOut = randn(DType.F32, b, nh, t, d);
        AttentionMask m = AttentionMask.causal(0).withKeyMask(Tensor.ones(DType.I64, b, t));
        double[][] out = new double[3][];
        int[] threads = {1, 2, 5};
        for (int i = 0; i < threads.length; i++) {
            int at = i;
            Parallel.withThreads(threads[i], () -> out[at] = run(new CpuScaledDotProductAttention(), q, k, v, dOut, m));
        }
        assertArrayEquals(out[0], out[1]);
        assertArrayEquals(out[0], out[2]);
    }
}

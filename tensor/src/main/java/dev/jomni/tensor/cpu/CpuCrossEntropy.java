package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.CrossEntropy;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The CPU reference of {@link CrossEntropy}: one row per task, each row's max, Σ exp and lse in
 * double (stored rounded to the stat dtype), so the bits do not depend on the thread count.
 * No vector path: the model's training loss goes through {@link CpuLinearCrossEntropy}, whose cost is
 * its matrix products.
 */
final class CpuCrossEntropy implements CrossEntropy.Kernels {
    private static final long GRAIN = 1 << 14;                 // elements per parallel task

    @Override
    public void forward(Tensor logits, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
        int n = logits.size(0), c = logits.size(1);
        long[] t = targets(targets, ignoreIndex, c, "crossEntropy");
        MemorySegment x = CpuBackend.seg(logits), l = CpuBackend.seg(lse), r = CpuBackend.seg(rowLoss);
        DType xt = logits.dtype(), st = lse.dtype();
        long xo = TensorAccess.offset(logits), lo = TensorAccess.offset(lse), ro = TensorAccess.offset(rowLoss);
        Parallel.forRange(n, Math.max(1, GRAIN / Math.max(1, c)), (s, e) -> {
            for (int i = (int) s; i < e; i++) {
                if (t[i] == ignoreIndex) {
                    CpuBackend.set(l, st, lo + i, 0);
                    CpuBackend.set(r, st, ro + i, 0);
                    continue;
                }
                long base = xo + (long) i * c;
                double m = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < c; j++) m = Math.max(m, CpuBackend.get(x, xt, base + j));
                double sum = 0;
                if (m != Double.NEGATIVE_INFINITY)
                    for (int j = 0; j < c; j++) sum += Math.exp(CpuBackend.get(x, xt, base + j) - m);
                double rowLse = m + Math.log(sum);
                CpuBackend.set(l, st, lo + i, rowLse);
                CpuBackend.set(r, st, ro + i, rowLse - CpuBackend.get(x, xt, base + t[i]));
            }
        });
    }

    @Override
    public void backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex, Tensor dLogits) {
        int n = logits.size(0), c = logits.size(1);
        long[] t = targets(targets, ignoreIndex, c, "crossEntropy");
        MemorySegment x = CpuBackend.seg(logits), l = CpuBackend.seg(lse), d = CpuBackend.seg(dLogits);
        DType xt = logits.dtype(), st = lse.dtype(), dt = dLogits.dtype();
        long xo = TensorAccess.offset(logits), lo = TensorAccess.offset(lse), dOff = TensorAccess.offset(dLogits);
        double k = CpuBackend.get(CpuBackend.seg(scale), scale.dtype(), TensorAccess.offset(scale));
        Parallel.forRange(n, Math.max(1, GRAIN / Math.max(1, c)), (s, e) -> {
            for (int i = (int) s; i < e; i++) {
                long base = (long) i * c;
                if (t[i] == ignoreIndex) {
                    for (int j = 0; j < c; j++) CpuBackend.set(d, dt, dOff + base + j, 0);
                    continue;
                }
                double rowLse = CpuBackend.get(l, st, lo + i);
                for (int j = 0; j < c; j++) {
                    double p = Math.exp(CpuBackend.get(x, xt, xo + base + j) - rowLse);
                    CpuBackend.set(d, dt, dOff + base + j, (j == t[i] ? p - 1 : p) * k);
                }
            }
        });
    }

    /**
     * The targets [N] I64, checked in order as they are read: the first one outside [0, classes) that
     * is not ignoreIndex throws, naming the op, its position and its value.
     */
    static long[] targets(Tensor targets, long ignoreIndex, int classes, String op) {
        int n = targets.size(0);
        MemorySegment s = CpuBackend.seg(targets);
        long off = TensorAccess.offset(targets);
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            long v = s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, off + i);
            if (v != ignoreIndex && (v < 0 || v >= classes))
                throw new IllegalArgumentException(String.format("%s: target %d at position %d is outside [0, %d) and is not ignore_index %d",
                        op, v, i, classes, ignoreIndex));
            t[i] = v;
        }
        return t;
    }
}

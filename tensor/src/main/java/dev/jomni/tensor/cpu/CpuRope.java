package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Rope;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;

/**
 * Half-split rotary embedding on the CPU, the reference: double arithmetic rounded to the dtype after
 * each product and after the sum, exactly where {@code x·cos + rotate_half(x)·sin} rounds in that dtype,
 * so it is bit-identical to the composition. One task per run of (b, h, t) rows.
 */
public final class CpuRope implements Rope.Kernels {
    private static final long CHUNK = 1 << 14;

    @Override
    public void forward(Tensor x, Tensor cos, Tensor sin, Tensor out) { rotate(x, cos, sin, out, false); }

    @Override
    public void backward(Tensor dy, Tensor cos, Tensor sin, Tensor dx) { rotate(dy, cos, sin, dx, true); }

    /** out = x·cos + rotate_half(x)·sin, or its transpose (sin taken at the partner index, signs swapped). */
    private static void rotate(Tensor x, Tensor cos, Tensor sin, Tensor out, boolean transpose) {
        int b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3), p = d / 2;
        boolean sharedTables = cos.size(0) == 1 && b > 1;
        DType type = x.dtype();
        MemorySegment xs = CpuBackend.seg(x), cs = CpuBackend.seg(cos), ss = CpuBackend.seg(sin), os = CpuBackend.seg(out);
        long rows = (long) b * h * t;
        Parallel.forRange(rows, Math.max(1, CHUNK / Math.max(1, d)), (start, end) -> {
            double[] v = new double[d], c = new double[d], s = new double[d], r = new double[d];
            for (long row = start; row < end; row++) {
                int bi = (int) (row / ((long) h * t)), ti = (int) (row % t);
                long table = ((long) (sharedTables ? 0 : bi) * t + ti) * d;
                Rows.read(xs, type, TensorAccess.offset(x) + row * d, d, v);
                Rows.read(cs, type, TensorAccess.offset(cos) + table, d, c);
                Rows.read(ss, type, TensorAccess.offset(sin) + table, d, s);
                for (int j = 0; j < d; j++) {
                    double rot;
                    if (!transpose) rot = j < p ? -v[j + p] * s[j] : v[j - p] * s[j];
                    else rot = j < p ? v[j + p] * s[j + p] : -v[j - p] * s[j - p];
                    r[j] = Rows.round(type, Rows.round(type, v[j] * c[j]) + Rows.round(type, rot));
                }
                Rows.write(os, type, TensorAccess.offset(out) + row * d, d, r);
            }
        });
    }
}

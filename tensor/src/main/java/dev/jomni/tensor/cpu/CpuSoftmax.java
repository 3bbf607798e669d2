package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Softmax;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * softmax and log-softmax over rows on the CPU. The scalar reference computes in double and rounds to
 * the compute dtype (f32; f64 for f64) where the composition {@code exp(x − m) / Σ exp(x − m)} rounded, so
 * for f32 and f64 it is bit-identical to it (for 16-bit x it rounds once at the end, where the composition
 * rounded every step to 16 bits). The Vector API path for f32 sums in f32 lanes and uses the vector exp:
 * within a few ulps of the reference. One row per task element; a row's sums stay on one thread.
 */
public final class CpuSoftmax implements Softmax.Kernels {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long CHUNK = 1 << 14;

    private final boolean vector;

    /** @param vector use the Vector API path for f32 (false: the scalar reference only) */
    public CpuSoftmax(boolean vector) { this.vector = vector; }

    private static long grain(int n) { return Math.max(1, CHUNK / Math.max(1, n)); }

    @Override
    public void forward(Tensor x, Tensor y, boolean log) {
        int rows = x.size(0), n = x.size(1);
        if (vector && x.dtype() == DType.F32) {
            forwardF32(x, y, log, rows, n);
            return;
        }
        DType t = x.dtype(), c = t.atLeastF32();
        MemorySegment xs = CpuBackend.seg(x), ys = CpuBackend.seg(y);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            double[] v = new double[n];
            for (int row = (int) start; row < end; row++) {
                Rows.read(xs, t, TensorAccess.offset(x) + (long) row * n, n, v);
                double m = v[0];
                for (int j = 1; j < n && !Double.isNaN(m); j++) if (Double.isNaN(v[j]) || v[j] > m) m = v[j];
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    double shifted = Rows.round(c, v[j] - m), e = Rows.round(c, Math.exp(shifted));
                    sum += e;
                    v[j] = log ? shifted : e;                                    // exp once
                }
                double s = Rows.round(c, sum);
                if (log) {
                    double ls = Rows.round(c, Math.log(s));
                    for (int j = 0; j < n; j++) v[j] = v[j] - ls;
                } else
                    for (int j = 0; j < n; j++) v[j] = v[j] / s;
                Rows.write(ys, t, TensorAccess.offset(y) + (long) row * n, n, v);
            }
        });
    }

    private static void forwardF32(Tensor x, Tensor y, boolean log, int rows, int n) {
        MemorySegment xs = CpuBackend.seg(x), ys = CpuBackend.seg(y);
        long xo = TensorAccess.offset(x) * 4, yo = TensorAccess.offset(y) * 4;
        int bound = SPECIES.loopBound(n);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            float[] lanes = new float[LANES];
            for (int row = (int) start; row < end; row++) {
                long xa = xo + 4L * row * n, ya = yo + 4L * row * n;
                float m = xs.get(F32, xa);
                int j = 0;
                if (bound > 0) {
                    FloatVector mv = FloatVector.fromMemorySegment(SPECIES, xs, xa, ORDER);
                    for (j = LANES; j < bound; j += LANES) mv = mv.max(FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER));
                    m = Math.max(m, mv.reduceLanes(VectorOperators.MAX));
                }
                for (; j < n; j++) m = Math.max(m, xs.get(F32, xa + 4L * j));
                // exp once, per element (see Lanes), into y: the result for softmax, scratch for log-softmax
                for (j = 0; j < n; j++) ys.set(F32, ya + 4L * j, (float) Math.exp(xs.get(F32, xa + 4L * j) - m));
                FloatVector acc = FloatVector.zero(SPECIES);
                for (j = 0; j < bound; j += LANES) acc = acc.add(FloatVector.fromMemorySegment(SPECIES, ys, ya + 4L * j, ORDER));
                float s = Lanes.sum(acc, lanes);
                for (; j < n; j++) s += ys.get(F32, ya + 4L * j);
                if (log) {
                    float ls = (float) Math.log(s);
                    for (j = 0; j < bound; j += LANES)
                        FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER).sub(m).sub(ls).intoMemorySegment(ys, ya + 4L * j, ORDER);
                    for (; j < n; j++) ys.set(F32, ya + 4L * j, (xs.get(F32, xa + 4L * j) - m) - ls);
                } else {
                    for (j = 0; j < bound; j += LANES)
                        FloatVector.fromMemorySegment(SPECIES, ys, ya + 4L * j, ORDER).div(s).intoMemorySegment(ys, ya + 4L * j, ORDER);
                    for (; j < n; j++) ys.set(F32, ya + 4L * j, ys.get(F32, ya + 4L * j) / s);
                }
            }
        });
    }

    @Override
    public void backward(Tensor dy, Tensor y, Tensor dx, boolean log) {
        int rows = y.size(0), n = y.size(1);
        if (vector && y.dtype() == DType.F32) {
            backwardF32(dy, y, dx, log, rows, n);
            return;
        }
        DType t = y.dtype();
        MemorySegment gs = CpuBackend.seg(dy), ys = CpuBackend.seg(y), ds = CpuBackend.seg(dx);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            double[] g = new double[n], v = new double[n];
            for (int row = (int) start; row < end; row++) {
                Rows.read(gs, t, TensorAccess.offset(dy) + (long) row * n, n, g);
                Rows.read(ys, t, TensorAccess.offset(y) + (long) row * n, n, v);
                double s = 0;
                if (log) {
                    for (int j = 0; j < n; j++) s += g[j];
                    for (int j = 0; j < n; j++) g[j] -= Math.exp(v[j]) * s;         // dx = dy − softmax·Σdy
                } else {
                    for (int j = 0; j < n; j++) s += g[j] * v[j];
                    for (int j = 0; j < n; j++) g[j] = v[j] * (g[j] - s);           // dx = y (dy − Σ dy·y)
                }
                Rows.write(ds, t, TensorAccess.offset(dx) + (long) row * n, n, g);
            }
        });
    }

    private static void backwardF32(Tensor dy, Tensor y, Tensor dx, boolean log, int rows, int n) {
        MemorySegment gs = CpuBackend.seg(dy), ys = CpuBackend.seg(y), ds = CpuBackend.seg(dx);
        long go = TensorAccess.offset(dy) * 4, yo = TensorAccess.offset(y) * 4, dxo = TensorAccess.offset(dx) * 4;
        int bound = SPECIES.loopBound(n);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            float[] lanes = new float[LANES];
            for (int row = (int) start; row < end; row++) {
                long ga = go + 4L * row * n, ya = yo + 4L * row * n, da = dxo + 4L * row * n;
                FloatVector acc = FloatVector.zero(SPECIES);
                int j = 0;
                for (; j < bound; j += LANES) {
                    FloatVector g = FloatVector.fromMemorySegment(SPECIES, gs, ga + 4L * j, ORDER);
                    acc = log ? acc.add(g) : g.fma(FloatVector.fromMemorySegment(SPECIES, ys, ya + 4L * j, ORDER), acc);
                }
                float s = Lanes.sum(acc, lanes);
                for (; j < n; j++) s = log ? s + gs.get(F32, ga + 4L * j) : Math.fma(gs.get(F32, ga + 4L * j), ys.get(F32, ya + 4L * j), s);
                if (log) j = 0;                                                   // dx = dy − exp(y)·s: exp per element (see Lanes)
                else
                    for (j = 0; j < bound; j += LANES) {
                        FloatVector g = FloatVector.fromMemorySegment(SPECIES, gs, ga + 4L * j, ORDER), v = FloatVector.fromMemorySegment(SPECIES, ys, ya + 4L * j, ORDER);
                        v.mul(g.sub(s)).intoMemorySegment(ds, da + 4L * j, ORDER);
                    }
                for (; j < n; j++) {
                    float g = gs.get(F32, ga + 4L * j), v = ys.get(F32, ya + 4L * j);
                    ds.set(F32, da + 4L * j, log ? g - (float) Math.exp(v) * s : v * (g - s));
                }
            }
        });
    }
}

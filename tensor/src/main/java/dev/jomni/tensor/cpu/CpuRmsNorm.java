package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.RmsNorm;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * RMSNorm on the CPU: the scalar reference (double arithmetic, rounding to the compute dtype exactly where
 * the composition {@code w · cast_x(x · rsqrt(mean(x²) + eps))} rounds, so it is bit-identical to it), and
 * a Vector API path for f32 x and w (f32 sums in vector lanes; within a few ulps of the reference).
 * Rows are split among threads; each row's sum, and each column's sum in dw, stays on one thread.
 */
public final class CpuRmsNorm implements RmsNorm.Kernels {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long CHUNK = 1 << 14;              // elements per parallel task
    private static final int COLUMNS = 256;                 // columns per dw task

    private final boolean vector;

    /** @param vector use the Vector API path for f32 (false: the scalar reference only) */
    public CpuRmsNorm(boolean vector) { this.vector = vector; }

    private boolean vectorF32(Tensor... ts) {
        if (!vector) return false;
        for (Tensor t : ts) if (t != null && t.dtype() != DType.F32) return false;
        return true;
    }

    private static long grain(int n) { return Math.max(1, CHUNK / Math.max(1, n)); }

    @Override
    public void forward(Tensor x, Tensor w, double eps, Tensor y, Tensor rstd) {
        int rows = x.size(0), n = x.size(1);
        if (vectorF32(x, w, y, rstd)) {
            forwardF32(x, w, eps, y, rstd, rows, n);
            return;
        }
        DType xt = x.dtype(), wt = w.dtype(), yt = y.dtype(), c = rstd.dtype();
        MemorySegment xs = CpuBackend.seg(x), ws = CpuBackend.seg(w), ys = CpuBackend.seg(y), rs = CpuBackend.seg(rstd);
        double[] wv = new double[n];
        Rows.read(ws, wt, TensorAccess.offset(w), n, wv);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            double[] v = new double[n];
            for (int row = (int) start; row < end; row++) {
                long at = TensorAccess.offset(x) + (long) row * n;
                Rows.read(xs, xt, at, n, v);
                double sum = 0;
                for (int j = 0; j < n; j++) sum += Rows.round(c, v[j] * v[j]);
                // mean, + eps and rsqrt each round to the compute dtype, as the composition's three ops did
                double mean = Rows.round(c, Rows.round(c, sum) / n);
                double r = Rows.round(c, 1 / Math.sqrt(Rows.round(c, mean + eps)));
                for (int j = 0; j < n; j++) v[j] = wv[j] * Rows.round(xt, Rows.round(c, v[j] * r));
                Rows.write(ys, yt, TensorAccess.offset(y) + (long) row * n, n, v);
                CpuBackend.set(rs, c, TensorAccess.offset(rstd) + row, r);
            }
        });
    }

    private static void forwardF32(Tensor x, Tensor w, double eps, Tensor y, Tensor rstd, int rows, int n) {
        MemorySegment xs = CpuBackend.seg(x), ws = CpuBackend.seg(w), ys = CpuBackend.seg(y), rs = CpuBackend.seg(rstd);
        long xo = TensorAccess.offset(x) * 4, wo = TensorAccess.offset(w) * 4, yo = TensorAccess.offset(y) * 4, ro = TensorAccess.offset(rstd) * 4;
        int bound = SPECIES.loopBound(n);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            float[] lanes = new float[LANES];
            for (int row = (int) start; row < end; row++) {
                long xa = xo + 4L * row * n, ya = yo + 4L * row * n;
                FloatVector acc = FloatVector.zero(SPECIES);
                int j = 0;
                for (; j < bound; j += LANES) {
                    FloatVector v = FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER);
                    acc = v.fma(v, acc);
                }
                float sum = Lanes.sum(acc, lanes);
                for (; j < n; j++) {
                    float v = xs.get(F32, xa + 4L * j);
                    sum = Math.fma(v, v, sum);
                }
                float r = (float) (1 / Math.sqrt((float) ((sum / n) + eps)));
                j = 0;
                for (; j < bound; j += LANES)
                    FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER).mul(r)
                            .mul(FloatVector.fromMemorySegment(SPECIES, ws, wo + 4L * j, ORDER))
                            .intoMemorySegment(ys, ya + 4L * j, ORDER);
                for (; j < n; j++) ys.set(F32, ya + 4L * j, ws.get(F32, wo + 4L * j) * (xs.get(F32, xa + 4L * j) * r));
                rs.set(F32, ro + 4L * row, r);
            }
        });
    }

    @Override
    public void backward(Tensor dy, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
        int rows = x.size(0), n = x.size(1);
        if (vectorF32(dy, x, w, rstd, dx, dw)) {
            if (dx != null) backwardDxF32(dy, x, w, rstd, dx, rows, n);
            if (dw != null) backwardDwF32(dy, x, rstd, dw, rows, n);
            return;
        }
        DType xt = x.dtype(), c = rstd.dtype();
        MemorySegment dys = CpuBackend.seg(dy), xs = CpuBackend.seg(x), rs = CpuBackend.seg(rstd);
        double[] r = new double[rows];
        Rows.read(rs, c, TensorAccess.offset(rstd), rows, r);
        if (dx != null) {
            double[] wv = new double[n];
            Rows.read(CpuBackend.seg(w), w.dtype(), TensorAccess.offset(w), n, wv);
            MemorySegment dxs = CpuBackend.seg(dx);
            Parallel.forRange(rows, grain(n), (start, end) -> {
                double[] g = new double[n], v = new double[n];
                for (int row = (int) start; row < end; row++) {
                    Rows.read(dys, dy.dtype(), TensorAccess.offset(dy) + (long) row * n, n, g);
                    Rows.read(xs, xt, TensorAccess.offset(x) + (long) row * n, n, v);
                    double dot = 0;
                    for (int j = 0; j < n; j++) {
                        g[j] *= wv[j];
                        dot += g[j] * v[j];
                    }
                    double ri = r[row], coef = ri * ri * ri * dot / n;
                    for (int j = 0; j < n; j++) g[j] = ri * g[j] - v[j] * coef;   // dx = r·g − x·r³·mean(g·x)
                    Rows.write(dxs, dx.dtype(), TensorAccess.offset(dx) + (long) row * n, n, g);
                }
            });
        }
        if (dw != null) {
            MemorySegment dws = CpuBackend.seg(dw);
            Parallel.forRange(n, COLUMNS, (start, end) -> {
                int c0 = (int) start, width = (int) (end - start);
                double[] acc = new double[width], g = new double[width], v = new double[width];
                for (int row = 0; row < rows; row++) {
                    Rows.read(dys, dy.dtype(), TensorAccess.offset(dy) + (long) row * n + c0, width, g);
                    Rows.read(xs, xt, TensorAccess.offset(x) + (long) row * n + c0, width, v);
                    for (int j = 0; j < width; j++) acc[j] += g[j] * Rows.round(xt, Rows.round(c, v[j] * r[row]));
                }
                Rows.write(dws, dw.dtype(), TensorAccess.offset(dw) + c0, width, acc);
            });
        }
    }

    private static void backwardDxF32(Tensor dy, Tensor x, Tensor w, Tensor rstd, Tensor dx, int rows, int n) {
        MemorySegment dys = CpuBackend.seg(dy), xs = CpuBackend.seg(x), ws = CpuBackend.seg(w), rs = CpuBackend.seg(rstd), dxs = CpuBackend.seg(dx);
        long go = TensorAccess.offset(dy) * 4, xo = TensorAccess.offset(x) * 4, wo = TensorAccess.offset(w) * 4, ro = TensorAccess.offset(rstd) * 4, dxo = TensorAccess.offset(dx) * 4;
        int bound = SPECIES.loopBound(n);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            float[] lanes = new float[LANES];
            for (int row = (int) start; row < end; row++) {
                long ga = go + 4L * row * n, xa = xo + 4L * row * n, da = dxo + 4L * row * n;
                FloatVector acc = FloatVector.zero(SPECIES);
                int j = 0;
                for (; j < bound; j += LANES) {
                    FloatVector gw = FloatVector.fromMemorySegment(SPECIES, dys, ga + 4L * j, ORDER)
                            .mul(FloatVector.fromMemorySegment(SPECIES, ws, wo + 4L * j, ORDER));
                    acc = gw.fma(FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER), acc);
                }
                float dot = Lanes.sum(acc, lanes);
                for (; j < n; j++) dot = Math.fma(dys.get(F32, ga + 4L * j) * ws.get(F32, wo + 4L * j), xs.get(F32, xa + 4L * j), dot);
                float r = rs.get(F32, ro + 4L * row), coef = r * r * r * dot / n;
                j = 0;
                for (; j < bound; j += LANES) {
                    FloatVector gw = FloatVector.fromMemorySegment(SPECIES, dys, ga + 4L * j, ORDER)
                            .mul(FloatVector.fromMemorySegment(SPECIES, ws, wo + 4L * j, ORDER));
                    gw.mul(r).sub(FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER).mul(coef))
                            .intoMemorySegment(dxs, da + 4L * j, ORDER);
                }
                for (; j < n; j++)
                    dxs.set(F32, da + 4L * j, r * (dys.get(F32, ga + 4L * j) * ws.get(F32, wo + 4L * j)) - xs.get(F32, xa + 4L * j) * coef);
            }
        });
    }

    private static void backwardDwF32(Tensor dy, Tensor x, Tensor rstd, Tensor dw, int rows, int n) {
        MemorySegment dys = CpuBackend.seg(dy), xs = CpuBackend.seg(x), rs = CpuBackend.seg(rstd), dws = CpuBackend.seg(dw);
        long go = TensorAccess.offset(dy) * 4, xo = TensorAccess.offset(x) * 4, ro = TensorAccess.offset(rstd) * 4, dwo = TensorAccess.offset(dw) * 4;
        Parallel.forRange(n, COLUMNS, (start, end) -> {
            int c0 = (int) start, width = (int) (end - start), bound = SPECIES.loopBound(width);
            float[] acc = new float[width];
            for (int row = 0; row < rows; row++) {
                float r = rs.get(F32, ro + 4L * row);
                long ga = go + 4L * ((long) row * n + c0), xa = xo + 4L * ((long) row * n + c0);
                int j = 0;
                for (; j < bound; j += LANES)
                    FloatVector.fromMemorySegment(SPECIES, xs, xa + 4L * j, ORDER).mul(r)
                            .fma(FloatVector.fromMemorySegment(SPECIES, dys, ga + 4L * j, ORDER), FloatVector.fromArray(SPECIES, acc, j))
                            .intoArray(acc, j);
                for (; j < width; j++) acc[j] = Math.fma(xs.get(F32, xa + 4L * j) * r, dys.get(F32, ga + 4L * j), acc[j]);
            }
            MemorySegment.copy(acc, 0, dws, F32, dwo + 4L * c0, width);
        });
    }
}

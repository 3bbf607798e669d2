package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.Nf4Weight;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * NF4 matmul on the CPU, the reference: W dequantized a tile at a time (64 rows or 64 columns, never the
 * whole weight), each element {@code round_x(round_w(f32(CODE[q]·absmax)))} as bitsandbytes'
 * {@code dequantize_4bit(…).to(A.dtype)} gives it, products summed in double and rounded once to x's
 * dtype. Forward splits the output columns (tiles of W's rows) across threads, backward the input
 * columns (W's column blocks): no sum is split, so bits do not depend on the thread count.
 */
public final class CpuNf4Matmul implements Nf4Matmul.Kernels {
    private static final int TILE = Nf4Weight.BLOCK;

    @Override
    public void dequantize(Nf4Weight w, Tensor out) {
        int n = w.rows(), k = w.cols();
        float[] scale = scales(w);
        MemorySegment packed = CpuBackend.seg(w.packed()).asSlice(TensorAccess.offset(w.packed())), os = CpuBackend.seg(out);
        Parallel.forRange(n, Math.max(1, (1 << 14) / k), (start, end) -> {
            double[] row = new double[k];
            for (int r = (int) start; r < end; r++) {
                weights(packed, scale, w.dtype(), out.dtype(), (long) r * k, k, row, 0);
                Rows.write(os, out.dtype(), TensorAccess.offset(out) + (long) r * k, k, row);
            }
        });
    }

    @Override
    public void forward(Tensor x, Nf4Weight w, Tensor y) {
        int m = x.size(0), n = w.rows(), k = w.cols();
        DType type = x.dtype();
        float[] scale = scales(w);
        double[] xs = new double[Math.multiplyExact(m, k)];
        MemorySegment packed = CpuBackend.seg(w.packed()).asSlice(TensorAccess.offset(w.packed())), ys = CpuBackend.seg(y);
        Rows.read(CpuBackend.seg(x), type, TensorAccess.offset(x), m * k, xs);
        Parallel.forRange((n + TILE - 1) / TILE, 1, (start, end) -> {
            double[] tile = new double[TILE * k], out = new double[TILE];
            for (int t = (int) start; t < end; t++) {
                int r0 = t * TILE, rows = Math.min(TILE, n - r0);
                weights(packed, scale, w.dtype(), type, (long) r0 * k, rows * k, tile, 0);   // W[r0 : r0+rows, :]
                for (int i = 0; i < m; i++) {
                    for (int r = 0; r < rows; r++) {
                        double s = 0;
                        for (int c = 0, xa = i * k, wa = r * k; c < k; c++) s += xs[xa + c] * tile[wa + c];
                        out[r] = s;
                    }
                    Rows.write(ys, type, TensorAccess.offset(y) + (long) i * n + r0, rows, out);
                }
            }
        });
    }

    @Override
    public void backwardInput(Tensor dy, Nf4Weight w, Tensor dx) {
        int m = dy.size(0), n = w.rows(), k = w.cols();
        DType type = dy.dtype();
        float[] scale = scales(w);
        double[] ds = new double[Math.multiplyExact(m, n)];
        MemorySegment packed = CpuBackend.seg(w.packed()).asSlice(TensorAccess.offset(w.packed())), xs = CpuBackend.seg(dx);
        Rows.read(CpuBackend.seg(dy), type, TensorAccess.offset(dy), m * n, ds);
        Parallel.forRange(k / TILE, 1, (start, end) -> {
            double[] tile = new double[n * TILE], out = new double[TILE];
            for (int t = (int) start; t < end; t++) {
                int c0 = t * TILE;
                for (int r = 0; r < n; r++) weights(packed, scale, w.dtype(), type, (long) r * k + c0, TILE, tile, r * TILE);  // W[:, c0 : c0+64]
                for (int i = 0; i < m; i++) {
                    java.util.Arrays.fill(out, 0);
                    for (int r = 0, da = i * n; r < n; r++) {
                        double g = ds[da + r];
                        for (int c = 0, wa = r * TILE; c < TILE; c++) out[c] += g * tile[wa + c];
                    }
                    Rows.write(xs, type, TensorAccess.offset(dx) + (long) i * k + c0, TILE, out);
                }
            }
        });
    }

    /** The f32 block scales absmax[b], from the double-quantized codes. */
    static float[] scales(Nf4Weight w) {
        int blocks = Math.toIntExact(w.absmax().numel());
        MemorySegment q = CpuBackend.seg(w.absmax()), na = CpuBackend.seg(w.nestedAbsmax()), nc = CpuBackend.seg(w.nestedCode());
        float[] code = new float[256], nested = new float[Math.toIntExact(w.nestedAbsmax().numel())];
        for (int i = 0; i < 256; i++) code[i] = nc.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, TensorAccess.offset(w.nestedCode()) + i);
        for (int i = 0; i < nested.length; i++) nested[i] = na.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, TensorAccess.offset(w.nestedAbsmax()) + i);
        float[] s = new float[blocks];
        for (int b = 0; b < blocks; b++)
            s[b] = Nf4Weight.absmax(code, q.get(ValueLayout.JAVA_BYTE, TensorAccess.offset(w.absmax()) + b), nested, b, w.offset());
        return s;
    }

    /**
     * dst[at, at + count) ← elements [from, from + count) of flattened W, each f32(CODE[q]·absmax) rounded
     * to the weight's dtype, then to the compute dtype. Element e sits in byte e/2, high nibble when e is even.
     */
    static void weights(MemorySegment packed, float[] scale, DType wType, DType type, long from, int count, double[] dst, int at) {
        for (int j = 0; j < count; j++) {
            long e = from + j;
            int b = packed.get(ValueLayout.JAVA_BYTE, e >> 1) & 0xff;
            int q = (e & 1) == 0 ? b >>> 4 : b & 0xf;
            float v = Nf4Weight.CODE[q] * scale[(int) (e / Nf4Weight.BLOCK)];
            dst[at + j] = Rows.round(type, Rows.round(wType, v));
        }
    }
}

package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.HalfPrecision;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.CrossEntropy;
import dev.jomni.tensor.ops.LinearCrossEntropy;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.RmsNorm;
import dev.jomni.tensor.ops.Rope;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import dev.jomni.tensor.ops.Softmax;
import dev.jomni.tensor.ops.Swiglu;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.OpKernels;
import dev.jomni.tensor.spi.ReduceOp;
import dev.jomni.tensor.spi.Storage;
import dev.jomni.tensor.spi.Stream;
import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.spi.UnaryOp;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reference backend, in plain Java. Element-wise work reads operands (any strides, any dtype)
 * into double arrays, computes in double and rounds once when storing, so every dtype shares one
 * well-tested path (the {@code *Reference} methods); contiguous f32 and bf16 operands of the
 * commonest ops take Vector API paths tested against it ({@link F32Arithmetic}, {@link F32Unary},
 * {@link RowSums}); matrix products go to {@link CpuMatmul}. Work is split by rows or fixed-size
 * chunks, never across a reduction, so results do not depend on the thread count.
 */
public final class CpuBackend implements Backend {
    private static final long CHUNK = 1 << 14;                // elements per parallel task in element-wise ops

    /** The coarse ops' CPU kernels, the reference the CUDA ones are tested against: one line per op. */
    private final OpKernels kernels = new OpKernels("cpu");

    /** For {@link java.util.ServiceLoader}: use {@code Device.cpu().backend()}, which keeps one. */
    public CpuBackend() {
        kernels.register(RmsNorm.Kernels.class, new CpuRmsNorm(true));
        kernels.register(Softmax.Kernels.class, new CpuSoftmax(true));
        kernels.register(Rope.Kernels.class, new CpuRope());
        kernels.register(Swiglu.Kernels.class, new CpuSwiglu());
        kernels.register(ScaledDotProductAttention.Kernels.class, new CpuScaledDotProductAttention());
        kernels.register(MoeExperts.Kernels.class, new CpuMoeExperts());
        kernels.register(CrossEntropy.Kernels.class, new CpuCrossEntropy());
        kernels.register(LinearCrossEntropy.Kernels.class, new CpuLinearCrossEntropy());
        kernels.register(Nf4Matmul.Kernels.class, new CpuNf4Matmul());
        kernels.register(dev.jomni.tensor.ops.AdamWStep.Kernels.class, new CpuAdamWStep());
        kernels.register(dev.jomni.tensor.ops.IndexCopy.Kernels.class, new CpuIndexCopy());
    }

    @Override public Device.Kind kind() { return Device.Kind.CPU; }

    @Override public <K> K kernels(Class<K> op) { return kernels.get(op); }

    /** Ops run when called: the default stream is always done (see {@link CpuStream}). */
    @Override public Stream defaultStream(Device device) { return CpuStream.INSTANCE; }

    @Override public Stream newStream(Device device) { return CpuStream.INSTANCE; }

    @Override
    public Storage allocate(Device device, DType dtype, long numel) {
        return CpuStorage.allocate(numel * dtype.byteSize);
    }

    @Override
    public Storage fromHost(Device device, DType dtype, MemorySegment host) {
        CpuStorage s = CpuStorage.allocate(host.byteSize());
        s.segment.copyFrom(host);
        return s;
    }

    @Override
    public Storage wrap(Device device, MemorySegment memory) { return CpuStorage.wrap(memory); }

    @Override
    public void toHost(Tensor src, MemorySegment host) {
        long bytes = src.numel() * src.dtype().byteSize;
        if (src.isContiguous()) {
            MemorySegment.copy(seg(src), TensorAccess.offset(src) * src.dtype().byteSize, host, 0, bytes);
            return;
        }
        Tensor tmp = Tensor.empty(Device.cpu(), src.dtype(), src.shape());
        copy(src, tmp);
        MemorySegment.copy(seg(tmp), 0, host, 0, bytes);
        tmp.close();
    }

    @Override
    public void fill(Tensor dst, double value) {
        double[] v = new double[Math.toIntExact(dst.numel())];
        java.util.Arrays.fill(v, value);
        store(v, dst);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        if (src.dtype() == dst.dtype() && src.isContiguous() && dst.isContiguous()) {
            long w = src.dtype().byteSize;
            MemorySegment.copy(seg(src), TensorAccess.offset(src) * w, seg(dst), TensorAccess.offset(dst) * w, src.numel() * w);
            return;
        }
        store(load(src), dst);
    }

    @Override
    public void addInto(Tensor dst, Tensor src) {
        double[] add = load(src);
        MemorySegment d = seg(dst);
        DType t = dst.dtype();
        int[] i = {0};
        Strided.forEachOffset(dst, off -> set(d, t, off, get(d, t, off) + add[i[0]++]));  // in order: overlaps add up
    }

    @Override
    public void unary(UnaryOp op, Tensor x, Tensor out, double a, double b) {
        if (F32Unary.handles(op, x, out)) {
            F32Unary.apply(op, x, out);
            return;
        }
        unaryReference(op, x, out, a, b);
    }

    /** The double-precision reference of unary: the vector paths are tested against it. */
    static void unaryReference(UnaryOp op, Tensor x, Tensor out, double a, double b) {
        double[] v = load(x);
        Parallel.forRange(v.length, CHUNK, (s, e) -> {
            for (int i = (int) s; i < e; i++) v[i] = op.apply(v[i], a, b);
        });
        store(v, out);
    }

    @Override
    public void binary(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        if (F32Arithmetic.handles(op, x, y, out)) {
            F32Arithmetic.apply(op, x, y, out);
            return;
        }
        binaryReference(op, x, y, out);
    }

    /** The double-precision reference of binary: the vector paths are tested against it. */
    static void binaryReference(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        double[] u = load(x), v = load(y);
        Parallel.forRange(u.length, CHUNK, (s, e) -> {
            for (int i = (int) s; i < e; i++) u[i] = op.apply(u[i], v[i]);
        });
        store(u, out);
    }

    @Override
    public void where(Tensor cond, Tensor x, Tensor y, Tensor out) {
        double[] c = load(cond), u = load(x), v = load(y);
        for (int i = 0; i < c.length; i++) if (c[i] == 0) u[i] = v[i];
        store(u, out);
    }

    @Override
    public void reduce(ReduceOp op, Tensor x, Tensor out) {
        if (op == ReduceOp.SUM && RowSums.handles(x, out)) {
            RowSums.sum(x, out);
            return;
        }
        reduceReference(op, x, out);
    }

    /** The double-precision reference of reduce: the vector paths are tested against it. */
    static void reduceReference(ReduceOp op, Tensor x, Tensor out) {
        int rows = x.shape()[0], n = x.shape()[1];
        double[] v = load(x), r = new double[rows];
        Parallel.forRange(rows, Math.max(1, CHUNK / Math.max(1, n)), (s, e) -> {
            for (int row = (int) s; row < e; row++) {
                int base = row * n;
                switch (op) {
                    case SUM -> {
                        double acc = 0;
                        for (int j = 0; j < n; j++) acc += v[base + j];
                        r[row] = acc;
                    }
                    case MAX, MIN -> {
                        double best = v[base];
                        for (int j = 1; j < n; j++) {
                            double c = v[base + j];
                            if (Double.isNaN(c) || (op == ReduceOp.MAX ? c > best : c < best)) best = c;
                            if (Double.isNaN(best)) break;
                        }
                        r[row] = best;
                    }
                    case ARGMAX, ARGMIN -> {
                        int best = 0;
                        for (int j = 1; j < n; j++) {
                            double c = v[base + j], b = v[base + best];
                            if (Double.isNaN(b)) break;                       // the first NaN wins, as in PyTorch
                            if (Double.isNaN(c) || (op == ReduceOp.ARGMAX ? c > b : c < b)) best = j;
                        }
                        r[row] = best;
                    }
                }
            }
        });
        store(r, out);
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor out) {
        int batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
        DType t = a.dtype();
        if (t == DType.F64 || t == DType.F32) {
            long[] as = TensorAccess.strides(a), bs = TensorAccess.strides(b);
            long w = t.byteSize;
            long[] os = TensorAccess.strides(out);
            if (t == DType.F64)
                CpuMatmul.dgemm(batch, m, n, k, seg(a), TensorAccess.offset(a), as[0], as[1], as[2], seg(b), TensorAccess.offset(b), bs[0], bs[1], bs[2],
                        seg(out), TensorAccess.offset(out), os[0], os[1]);
            else
                CpuMatmul.sgemm(batch, m, n, k, seg(a), TensorAccess.offset(a), as[0], as[1], as[2], seg(b), TensorAccess.offset(b), bs[0], bs[1], bs[2],
                        seg(out), TensorAccess.offset(out), os[0], os[1]);
            return;
        }
        // 16-bit floats and integers: compute in f32 (f64 for integers) and round once.
        DType compute = t.floating ? DType.F32 : DType.F64;
        Tensor a32 = Tensor.empty(Device.cpu(), compute, a.shape()), b32 = Tensor.empty(Device.cpu(), compute, b.shape());
        Tensor o32 = Tensor.empty(Device.cpu(), compute, out.shape());
        copy(a, a32);
        copy(b, b32);
        matmul(a32, b32, o32);
        copy(o32, out);
        a32.close();
        b32.close();
        o32.close();
    }

    @Override
    public void checkIndex(String op, Tensor index, long bound) {
        MemorySegment s = seg(index);
        boolean wide = switch (index.dtype()) {
            case I64 -> true;
            case I32 -> false;
            default -> throw new IllegalArgumentException(op + ": index must be i64 or i32, got " + index.dtype().lower());
        };
        long[] position = {0};
        Strided.forEachOffset(index, off -> {
            long v = wide ? s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, off) : s.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, off);
            if (v < 0 || v >= bound) throw Backend.indexOutOfRange(op, v, position[0], bound);
            position[0]++;
        });
    }

    @Override
    public void indexSelect(Tensor x, int dim, Tensor index, Tensor out) {
        int[] xs = x.shape();
        int outer = prod(xs, 0, dim), size = xs[dim], inner = prod(xs, dim + 1, xs.length);
        long[] idx = index.toLongArray();
        double[] v = load(x), r = new double[Math.toIntExact((long) outer * idx.length * inner)];
        Parallel.forRange(outer, 1, (s, e) -> {
            for (int o = (int) s; o < e; o++)
                for (int j = 0; j < idx.length; j++)
                    System.arraycopy(v, (o * size + (int) idx[j]) * inner, r, (o * idx.length + j) * inner, inner);
        });
        store(r, out);
    }

    @Override
    public void indexAdd(Tensor dst, int dim, Tensor index, Tensor src) {
        int[] ds = dst.shape();
        int outer = prod(ds, 0, dim), size = ds[dim], inner = prod(ds, dim + 1, ds.length);
        long[] idx = index.toLongArray();
        double[] d = load(dst), v = load(src);
        for (int o = 0; o < outer; o++)                              // sequential: repeated indices add in order
            for (int j = 0; j < idx.length; j++) {
                int to = (o * size + (int) idx[j]) * inner, from = (o * idx.length + j) * inner;
                for (int i = 0; i < inner; i++) d[to + i] += v[from + i];
            }
        store(d, dst);
    }

    @Override
    public void gather(Tensor x, int dim, Tensor index, Tensor out) {
        double[] v = load(x);
        long[] idx = index.toLongArray();
        long[] xst = Tensor.contiguousStrides(x.shape());
        int[] is = index.shape();
        double[] r = new double[idx.length];
        Strided.forEachCoordinate(is, (i, coord) -> {
            long off = 0;
            for (int a = 0; a < coord.length; a++) off += (a == dim ? idx[i] : coord[a]) * xst[a];
            r[i] = v[(int) off];
        });
        store(r, out);
    }

    @Override
    public void scatterAdd(Tensor dst, int dim, Tensor index, Tensor src) {
        double[] d = load(dst), v = load(src);
        long[] idx = index.toLongArray();
        long[] dst_ = Tensor.contiguousStrides(dst.shape());
        Strided.forEachCoordinate(index.shape(), (i, coord) -> {
            long off = 0;
            for (int a = 0; a < coord.length; a++) off += (a == dim ? idx[i] : coord[a]) * dst_[a];
            d[(int) off] += v[i];
        });
        store(d, dst);
    }

    @Override
    public void cumsum(Tensor x, Tensor out, boolean reverse) {
        int n = x.shape().length == 0 ? 1 : x.shape()[x.rank() - 1];
        double[] v = load(x);
        int rows = n == 0 ? 0 : v.length / n;
        Parallel.forRange(rows, Math.max(1, CHUNK / Math.max(1, n)), (s, e) -> {
            for (int row = (int) s; row < e; row++) {
                double acc = 0;
                for (int j = 0; j < n; j++) {
                    int at = row * n + (reverse ? n - 1 - j : j);
                    acc += v[at];
                    v[at] = acc;
                }
            }
        });
        store(v, out);
    }

    @Override
    public void argsort(Tensor x, boolean descending, Tensor indices) {
        int n = x.shape().length == 0 ? 1 : x.shape()[x.rank() - 1];
        double[] v = load(x), r = new double[v.length];
        int rows = n == 0 ? 0 : v.length / n;
        Parallel.forRange(rows, 1, (s, e) -> {
            for (int row = (int) s; row < e; row++) {
                int base = row * n;
                Integer[] order = new Integer[n];
                for (int j = 0; j < n; j++) order[j] = j;
                java.util.Arrays.sort(order, (p, q) -> {          // stable; NaN sorts as the largest
                    int c = Double.compare(v[base + p], v[base + q]);
                    return descending ? -c : c;
                });
                for (int j = 0; j < n; j++) r[base + j] = order[j];
            }
        });
        store(r, indices);
    }

    // ---------------------------------------------------------------- element access

    static MemorySegment seg(Tensor t) {
        if (!(TensorAccess.storage(t) instanceof CpuStorage s))
            throw new IllegalArgumentException("CPU backend given a tensor on " + t.device());
        return s.segment;
    }

    private static int prod(int[] s, int from, int to) {
        int p = 1;
        for (int i = from; i < to; i++) p *= s[i];
        return p;
    }

    /** The elements of t (any strides and dtype) in row-major order, as doubles. */
    static double[] load(Tensor t) {
        double[] out = new double[Math.toIntExact(t.numel())];
        MemorySegment s = seg(t);
        DType type = t.dtype();
        if (t.isContiguous() && type == DType.F32) {
            long base = TensorAccess.offset(t);
            Parallel.forRange(out.length, CHUNK, (a, b) -> {
                for (long i = a; i < b; i++) out[(int) i] = s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, base + i);
            });
            return out;
        }
        int[] i = {0};
        Strided.forEachOffset(t, off -> out[i[0]++] = get(s, type, off));
        return out;
    }

    /** Stores v (row-major) into t (any strides), rounding to t's dtype. */
    static void store(double[] v, Tensor t) {
        MemorySegment s = seg(t);
        DType type = t.dtype();
        if (t.isContiguous()) {
            long base = TensorAccess.offset(t);
            Parallel.forRange(v.length, CHUNK, (a, b) -> {
                for (long i = a; i < b; i++) set(s, type, base + i, v[(int) i]);
            });
            return;
        }
        int[] i = {0};
        Strided.forEachOffset(t, off -> set(s, type, off, v[i[0]++]));
    }

    static double get(MemorySegment s, DType t, long i) {
        return switch (t) {
            case F64 -> s.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i);
            case F32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
            case BF16 -> HalfPrecision.bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case F16 -> Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
            case I64 -> s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
            case I32 -> s.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i);
            case U8 -> s.get(ValueLayout.JAVA_BYTE, i) & 0xFF;
            case BOOL -> s.get(ValueLayout.JAVA_BYTE, i) != 0 ? 1 : 0;
        };
    }

    static void set(MemorySegment s, DType t, long i, double v) {
        switch (t) {
            case F64 -> s.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i, v);
            case F32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) v);
            case BF16 -> s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, HalfPrecision.floatToBf16((float) v));
            case F16 -> s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16((float) v));
            case I64 -> s.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, (long) v);
            case I32 -> s.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i, (int) v);
            case U8 -> s.set(ValueLayout.JAVA_BYTE, i, (byte) (int) v);
            case BOOL -> s.set(ValueLayout.JAVA_BYTE, i, (byte) (v != 0 ? 1 : 0));
        }
    }
}

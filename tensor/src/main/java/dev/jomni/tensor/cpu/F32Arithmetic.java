package dev.jomni.tensor.cpu;

import dev.jomni.tensor.BinaryOp;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API path for the commonest element-wise work: f32 add, sub, mul, div where x and out
 * are contiguous and y is contiguous or a broadcast of a contiguous suffix (a bias row, a scalar).
 * Bit-identical to the double-precision reference path: for these four operations, rounding the
 * exact double result to f32 gives the correctly rounded f32 result.
 */
final class F32Arithmetic {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final long CHUNK = 1 << 15;

    private F32Arithmetic() {}

    static boolean handles(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        return (op == BinaryOp.ADD || op == BinaryOp.SUB || op == BinaryOp.MUL || op == BinaryOp.DIV)
                && x.dtype() == DType.F32 && y.dtype() == DType.F32 && out.dtype() == DType.F32
                && x.isContiguous() && out.isContiguous() && period(y) > 0;
    }

    /** p such that element i of t (row-major) is storage element offset + i mod p, or −1. */
    static long period(Tensor t) {
        int[] shape = t.shape();
        long[] strides = t.strides();
        long p = 1;
        int d = shape.length - 1;
        for (; d >= 0 && (shape[d] == 1 || strides[d] == p); d--) p *= shape[d];   // contiguous suffix
        for (; d >= 0; d--) if (shape[d] != 1 && strides[d] != 0) return -1;         // then broadcast axes only
        return p;
    }

    static void apply(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        MemorySegment xs = CpuBackend.seg(x), ys = CpuBackend.seg(y), os = CpuBackend.seg(out);
        long xo = x.offset() * 4, yo = y.offset() * 4, oo = out.offset() * 4, n = out.numel(), p = period(y);
        VectorOperators.Binary vop = switch (op) {
            case ADD -> VectorOperators.ADD;
            case SUB -> VectorOperators.SUB;
            case MUL -> VectorOperators.MUL;
            default -> VectorOperators.DIV;
        };
        int lanes = SPECIES.length();
        Parallel.forRange(n, Math.max(CHUNK, p), (start, end) -> {
            long i = start;
            if (p == 1) {                                          // a scalar
                float c = ys.get(ValueLayout.JAVA_FLOAT_UNALIGNED, yo);
                FloatVector cv = FloatVector.broadcast(SPECIES, c);
                for (; i + lanes <= end; i += lanes)
                    FloatVector.fromMemorySegment(SPECIES, xs, xo + 4 * i, ORDER).lanewise(vop, cv).intoMemorySegment(os, oo + 4 * i, ORDER);
            } else {
                while (i < end) {                                  // runs that do not wrap around y's period
                    long j = i % p, run = Math.min(end - i, p - j), k = 0;
                    for (; k + lanes <= run; k += lanes)
                        FloatVector.fromMemorySegment(SPECIES, xs, xo + 4 * (i + k), ORDER)
                                .lanewise(vop, FloatVector.fromMemorySegment(SPECIES, ys, yo + 4 * (j + k), ORDER))
                                .intoMemorySegment(os, oo + 4 * (i + k), ORDER);
                    for (; k < run; k++) os.set(ValueLayout.JAVA_FLOAT_UNALIGNED, oo + 4 * (i + k),
                            scalar(op, xs.get(ValueLayout.JAVA_FLOAT_UNALIGNED, xo + 4 * (i + k)), ys.get(ValueLayout.JAVA_FLOAT_UNALIGNED, yo + 4 * (j + k))));
                    i += run;
                }
                return;
            }
            for (; i < end; i++) os.set(ValueLayout.JAVA_FLOAT_UNALIGNED, oo + 4 * i,
                    scalar(op, xs.get(ValueLayout.JAVA_FLOAT_UNALIGNED, xo + 4 * i), ys.get(ValueLayout.JAVA_FLOAT_UNALIGNED, yo)));
        });
    }

    private static float scalar(BinaryOp op, float a, float b) {
        return switch (op) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            default -> a / b;
        };
    }
}

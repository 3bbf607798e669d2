package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.TensorAccess;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The Vector API path for the commonest element-wise work: add, sub, mul, div of f32 or bf16 operands
 * (any mix, computed in f32) where x and out are contiguous and y is contiguous or a broadcast of a
 * contiguous suffix (a bias row, a scalar). Bit-identical to the double-precision reference path: for
 * these four operations, rounding the exact double result to f32 gives the correctly rounded f32
 * result, and both paths then round that once more to bf16 where out is bf16.
 */
final class F32Arithmetic {
    private static final long CHUNK = 1 << 15;

    private F32Arithmetic() {}

    static boolean handles(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        return (op == BinaryOp.ADD || op == BinaryOp.SUB || op == BinaryOp.MUL || op == BinaryOp.DIV)
                && Lanes.lanes(x) && Lanes.lanes(y) && Lanes.lanes(out)
                && x.isContiguous() && out.isContiguous() && period(y) > 0;
    }

    /** p such that element i of t (row-major) is storage element offset + i mod p, or −1. */
    static long period(Tensor t) {
        int[] shape = t.shape();
        long[] strides = TensorAccess.strides(t);
        long p = 1;
        int d = shape.length - 1;
        for (; d >= 0 && (shape[d] == 1 || strides[d] == p); d--) p *= shape[d];   // contiguous suffix
        for (; d >= 0; d--) if (shape[d] != 1 && strides[d] != 0) return -1;         // then broadcast axes only
        return p;
    }

    static void apply(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        Lanes.View xs = Lanes.View.of(x), ys = Lanes.View.of(y), os = Lanes.View.of(out);
        long n = out.numel(), p = period(y);
        VectorOperators.Binary vop = switch (op) {
            case ADD -> VectorOperators.ADD;
            case SUB -> VectorOperators.SUB;
            case MUL -> VectorOperators.MUL;
            default -> VectorOperators.DIV;
        };
        int lanes = Lanes.LANES;
        Parallel.forRange(n, Math.max(CHUNK, p), (start, end) -> {
            long i = start;
            if (p == 1) {                                          // a scalar
                float c = ys.get(0);
                FloatVector cv = FloatVector.broadcast(Lanes.F, c);
                for (; i + lanes <= end; i += lanes) os.store(i, xs.load(i).lanewise(vop, cv));
                for (; i < end; i++) os.set(i, scalar(op, xs.get(i), c));
                return;
            }
            while (i < end) {                                      // runs that do not wrap around y's period
                long j = i % p, run = Math.min(end - i, p - j), k = 0;
                for (; k + lanes <= run; k += lanes) os.store(i + k, xs.load(i + k).lanewise(vop, ys.load(j + k)));
                for (; k < run; k++) os.set(i + k, scalar(op, xs.get(i + k), ys.get(j + k)));
                i += run;
            }
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

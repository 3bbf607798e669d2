package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.UnaryOp;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The Vector API path for the commonest unary functions of contiguous f32 or bf16 tensors, computed in
 * f32 lanes as PyTorch computes them: neg (exact, so bit-identical to the double reference), exp
 * ({@link #exp}, within 1 ulp of the correctly rounded f32) and silu = x / (1 + exp(−x)) (that exp, an add and a divide).
 * exp and silu are therefore not bit-identical to the double reference, which rounds the exact value
 * once; {@code VectorPathsTest} states and checks the bounds (exp 1 ulp, silu 2 ulp in f32, 1 in bf16). Every element, the tail included, goes
 * through the same vector code, so an element's result does not depend on its position.
 */
final class F32Unary {
    private static final long CHUNK = 1 << 14;

    private F32Unary() {}

    static boolean handles(UnaryOp op, Tensor x, Tensor out) {
        return (op == UnaryOp.NEG || op == UnaryOp.EXP || op == UnaryOp.SILU)
                && Lanes.lanes(x) && Lanes.lanes(out) && x.isContiguous() && out.isContiguous();
    }

    static void apply(UnaryOp op, Tensor x, Tensor out) {
        Lanes.View xs = Lanes.View.of(x), os = Lanes.View.of(out);
        int lanes = Lanes.LANES;
        Parallel.forRange(out.numel(), CHUNK, (start, end) -> {
            long i = start;
            for (; i + lanes <= end; i += lanes) os.store(i, f(op, xs.load(i)));
            if (i < end) os.storeTail(i, end, f(op, xs.loadTail(i, end)));
        });
    }

    private static final float LOG2E = 1.44269504f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f;           // 1.5·2²³: adding and subtracting it rounds to an integer

    /**
     * e^x in f32 lanes (Cephes' expf): x = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts, so r is
     * nearly exact), e^r by a degree-6 polynomial, then scaled by 2^n in two halves so results in the
     * subnormal range round once. Built from IEEE add, multiply, fma and integer ops only, never the
     * Vector API's EXP: that one is an SVML call once C2 compiles the loop but Math.exp per lane before,
     * so its bits would depend on how warm the JIT is. Overflows to +inf above ~88.72, underflows to 0
     * below ~−103.97; NaN stays NaN.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector c = x.max(-104f).min(89f);
        FloatVector n = c.fma(FloatVector.broadcast(Lanes.F, LOG2E), FloatVector.broadcast(Lanes.F, ROUND)).sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(Lanes.F, -LN2_HI), c);
        r = n.fma(FloatVector.broadcast(Lanes.F, -LN2_LO), r);
        FloatVector p = r.fma(1.9875691500e-4f, 1.3981999507e-3f);
        p = p.fma(r, FloatVector.broadcast(Lanes.F, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(Lanes.F, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(Lanes.F, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(Lanes.F, 5.0000001201e-1f));
        FloatVector er = p.fma(r.mul(r), r).add(1f);          // e^r = 1 + r + r²·p(r)
        IntVector ni = (IntVector) n.convertShape(VectorOperators.F2I, Lanes.I, 0);
        IntVector half = ni.lanewise(VectorOperators.ASHR, 1), rest = ni.sub(half);
        FloatVector s1 = half.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = rest.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return er.mul(s1).mul(s2);
    }

    private static FloatVector f(UnaryOp op, FloatVector x) {
        return switch (op) {
            case NEG -> x.neg();
            case EXP -> exp(x);
            case SILU -> x.div(exp(x.neg()).add(1f));            // x·σ(x); exp(−x) = inf gives −0 for x ≪ 0
            default -> throw new IllegalArgumentException(op + " has no vector path");
        };
    }
}

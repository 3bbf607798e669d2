package dev.jomni.tensor.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * Floating reductions of a vector's lanes in a fixed order. {@code reduceLanes(ADD)} may add in another
 * order once C2 compiles it than in the interpreter, so the same inputs could give different bits from
 * one call to the next; summing the lanes left to right does not. (For the same reason the coarse ops
 * call Math.exp per element rather than the vector EXP, whose intrinsic and fallback differ by an ulp.)
 */
final class Lanes {
    private Lanes() {}

    /** Σ lanes, left to right; {@code scratch} holds at least the vector's length. */
    static float sum(FloatVector v, float[] scratch) {
        v.intoArray(scratch, 0);
        float s = 0;
        for (int i = 0, n = v.length(); i < n; i++) s += scratch[i];
        return s;
    }
}

package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.HalfPrecision;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Runs of floating elements read into and written from {@code double[]} rows: the coarse ops' scalar
 * reference paths compute in double and round where the op's semantics round, so one loop serves
 * every dtype. The dtype switch sits outside the element loop.
 */
final class Rows {
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    private Rows() {}

    /** dst[0, n) ← elements [at, at + n) of s, of dtype t (exact: every floating dtype fits a double). */
    static void read(MemorySegment s, DType t, long at, int n, double[] dst) {
        switch (t) {
            case F64 -> { for (int j = 0; j < n; j++) dst[j] = s.getAtIndex(F64, at + j); }
            case F32 -> { for (int j = 0; j < n; j++) dst[j] = s.getAtIndex(F32, at + j); }
            case BF16 -> { for (int j = 0; j < n; j++) dst[j] = HalfPrecision.bf16ToFloat(s.getAtIndex(I16, at + j)); }
            case F16 -> { for (int j = 0; j < n; j++) dst[j] = Float.float16ToFloat(s.getAtIndex(I16, at + j)); }
            default -> throw new IllegalArgumentException("not a floating dtype: " + t.lower());
        }
    }

    /** Elements [at, at + n) of s, of dtype t ← src[0, n), each rounded to nearest even. */
    static void write(MemorySegment s, DType t, long at, int n, double[] src) {
        switch (t) {
            case F64 -> { for (int j = 0; j < n; j++) s.setAtIndex(F64, at + j, src[j]); }
            case F32 -> { for (int j = 0; j < n; j++) s.setAtIndex(F32, at + j, (float) src[j]); }
            case BF16 -> { for (int j = 0; j < n; j++) s.setAtIndex(I16, at + j, HalfPrecision.floatToBf16((float) src[j])); }
            case F16 -> { for (int j = 0; j < n; j++) s.setAtIndex(I16, at + j, Float.floatToFloat16((float) src[j])); }
            default -> throw new IllegalArgumentException("not a floating dtype: " + t.lower());
        }
    }

    /**
     * v rounded to t's precision, as storing and reloading it would. Through f32 for the 16-bit types:
     * that is how the element-wise ops store (double → f32 → bf16), so the reference rounds the same way.
     */
    static double round(DType t, double v) {
        return switch (t) {
            case F64 -> v;
            case F32 -> (float) v;
            case BF16 -> HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16((float) v));
            case F16 -> Float.float16ToFloat(Float.floatToFloat16((float) v));
            default -> throw new IllegalArgumentException("not a floating dtype: " + t.lower());
        };
    }
}

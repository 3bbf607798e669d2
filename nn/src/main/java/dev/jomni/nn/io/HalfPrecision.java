package dev.jomni.nn.io;

/**
 * bfloat16 and IEEE binary16 (f16) ↔ float32, bit patterns held in {@code short}s.
 * float32 → 16-bit rounds to nearest, ties to even (as PyTorch's {@code .to(torch.bfloat16)}); NaN stays NaN.
 */
public final class HalfPrecision {
    private HalfPrecision() {}

    /** Exact: bf16 is the top half of a float32. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        // Rounding a NaN's payload could carry into the exponent and make it ±inf; keep it a quiet NaN.
        if ((bits & 0x7FFFFFFF) > 0x7F800000) return (short) ((bits >>> 16) | 0x0040);
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }

    /** Exact. */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Round to nearest even; beyond ±65504 becomes ±inf, below 2^-24 (half of the smallest subnormal) ±0. */
    public static short floatToF16(float value) {
        return Float.floatToFloat16(value);
    }

    public static float[] bf16ToFloats(short[] bits) {
        var out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) out[i] = bf16ToFloat(bits[i]);
        return out;
    }

    public static short[] floatsToBf16(float[] values) {
        var out = new short[values.length];
        for (int i = 0; i < values.length; i++) out[i] = floatToBf16(values[i]);
        return out;
    }
}

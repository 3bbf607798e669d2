package dev.jomni.tensor.cpu;

/** bfloat16 conversions (f16 uses the JDK's Float.float16ToFloat / floatToFloat16). */
public final class Half {
    private Half() {}

    public static float bf16ToFloat(short bits) { return Float.intBitsToFloat(bits << 16); }

    /** Round to nearest even, as PyTorch's .to(torch.bfloat16); NaN stays a quiet NaN. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) return (short) ((bits >>> 16) | 0x0040);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }
}

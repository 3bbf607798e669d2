package dev.jomni.nn.io;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class HalfPrecisionTest {
    @Test
    void bf16RoundsToNearestEven() {
        float ulp = 0x1p-7f;                                // bf16 spacing in [1, 2)
        assertEquals(1f, bf16(1f + ulp / 2), "tie goes to the even neighbour 1.0");
        assertEquals(1f + 2 * ulp, bf16(1f + 1.5f * ulp), "tie goes to the even neighbour 1 + 2 ulp");
        assertEquals(1f + ulp, bf16(1f + ulp / 2 + 0x1p-20f), "above the tie rounds up");
        assertEquals(1f, bf16(1f + ulp / 2 - 0x1p-20f), "below the tie rounds down");
        assertEquals(-1f - 2 * ulp, bf16(-1f - 1.5f * ulp), "sign is symmetric");
        assertEquals(Float.POSITIVE_INFINITY, bf16(Float.MAX_VALUE), "beyond bf16's largest finite value plus half an ulp");
        assertTrue(Float.isNaN(bf16(Float.NaN)));
        assertTrue(Float.isNaN(bf16(Float.intBitsToFloat(0x7FFFFFFF))), "a NaN whose payload would carry stays NaN");
        assertEquals(Float.NEGATIVE_INFINITY, bf16(Float.NEGATIVE_INFINITY));
    }

    @Test
    void everyBf16AndF16PatternSurvivesARoundTrip() {
        for (int i = 0; i < 65536; i++) {
            short s = (short) i;
            float b = HalfPrecision.bf16ToFloat(s);
            if (Float.isNaN(b)) assertTrue(Float.isNaN(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16(b))));
            else assertEquals(s, HalfPrecision.floatToBf16(b), "bf16 0x" + Integer.toHexString(i));
            float h = HalfPrecision.f16ToFloat(s);
            if (!Float.isNaN(h)) assertEquals(s, HalfPrecision.floatToF16(h), "f16 0x" + Integer.toHexString(i));
        }
        assertEquals(65504f, HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(65504f)));
        assertEquals(Float.POSITIVE_INFINITY, HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(65520f)));
    }

    private static float bf16(float x) {
        return HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16(x));
    }
}

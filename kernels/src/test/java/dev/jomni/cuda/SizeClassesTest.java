package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SizeClassesTest {
    @Test
    void classHoldsTheRequestWastesAtMostAQuarterAndIsStable() {
        var r = new SplittableRandom(Gpu.seed());
        for (int t = 0; t < 100_000; t++) {
            long bytes = 1 + (r.nextLong() >>> (14 + r.nextInt(50)));  // sizes across 1 B .. 2^50
            long c = SizeClasses.roundUp(bytes);
            assertTrue(c >= bytes, bytes + " -> " + c);
            assertEquals(0, c % 512, bytes + " -> " + c + " is not a multiple of 512");
            if (bytes > 4096) assertTrue(c - bytes <= bytes / 4, bytes + " -> " + c + " wastes more than a quarter");
            assertEquals(c, SizeClasses.roundUp(c), "a class is its own class: " + c);
            assertTrue(SizeClasses.roundUp(bytes + 1) >= c, "monotonic at " + bytes);
        }
    }

    @Test
    void smallSizesGoBy512AndLargeOnesByQuartersOfAPowerOfTwo() {
        assertEquals(512, SizeClasses.roundUp(1));
        assertEquals(512, SizeClasses.roundUp(512));
        assertEquals(1024, SizeClasses.roundUp(513));
        assertEquals(4096, SizeClasses.roundUp(4096));
        assertEquals(5 * 1024, SizeClasses.roundUp(4097));                  // 4 KiB · 1.25
        assertEquals(7L << 19, SizeClasses.roundUp((3L << 20) + 1));         // 3 MiB + 1 -> 3.5 MiB
        assertEquals(1L << 30, SizeClasses.roundUp((7L << 27) + 1));         // just over 896 MiB -> 1 GiB
        var classes = new HashSet<Long>();
        for (long b = 1L << 20; b <= 1L << 21; b += 4096) classes.add(SizeClasses.roundUp(b));
        assertEquals(5, classes.size(), "1 MiB and its four quarters up to 2 MiB: " + classes);
        assertThrows(IllegalArgumentException.class, () -> SizeClasses.roundUp(0));
        assertThrows(IllegalArgumentException.class, () -> SizeClasses.roundUp(Long.MAX_VALUE - 5));
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class CachingAllocatorGpuTest {
    @Test
    void secondAllocationOfTheSameClassReusesTheBlockWithoutGrowingReserved() {
        CudaContext ctx = Gpu.context();
        CachingAllocator alloc = ctx.allocator();
        float[] x = Gpu.uniform(new SplittableRandom(Gpu.seed()), 3 * 262_144 + 11, -1f, 1f);  // ~3 MiB
        long bytes = x.length * 4L;
        try (Stream s = ctx.createStream()) {
            DeviceBuffer first = alloc.allocate(bytes, s);
            first.copyFrom(x);
            first.close();
            AllocatorStats before = alloc.stats();
            float[] back = new float[x.length];
            try (DeviceBuffer second = alloc.allocate(bytes + 100, s)) {  // same size class (3.5 MiB)
                second.copyFrom(x);
                second.copyTo(back);
                AllocatorStats during = alloc.stats();
                assertEquals(before.reservedBytes(), during.reservedBytes(), "reserved grew: " + before + " -> " + during);
                assertEquals(before.deviceAllocations(), during.deviceAllocations(), "cuMemAlloc called again");
                assertEquals(before.cacheHits() + 1, during.cacheHits());
                assertTrue(during.allocatedBytes() >= bytes + 100, during.toString());
            }
            assertArrayEquals(x, back);
            alloc.emptyCache();
            assertEquals(alloc.stats().allocatedBytes(), alloc.stats().reservedBytes(), "nothing cached after emptyCache");
        }
    }
}

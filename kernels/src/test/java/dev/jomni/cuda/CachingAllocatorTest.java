package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The allocator's bookkeeping on the CPU, with a fake device whose addresses are just counters. */
class CachingAllocatorTest {
    static final class FakeDevice implements CachingAllocator.RawMemory {
        final Map<Long, Long> live = new HashMap<>();  // address -> bytes
        long next = 1L << 40, capacity = Long.MAX_VALUE, used;
        int allocations, frees;

        public long allocate(long bytes) {
            if (used + bytes > capacity) throw new CudaException("cuMemAlloc: out of memory", "CUDA_ERROR_OUT_OF_MEMORY", 2);
            allocations++;
            used += bytes;
            long a = next;
            next += bytes + 4096;
            live.put(a, bytes);
            return a;
        }

        public void free(long address) {
            Long bytes = live.remove(address);
            assertTrue(bytes != null, "double or foreign free of " + address);
            used -= bytes;
            frees++;
        }
    }

    private final FakeDevice device = new FakeDevice();
    private final CachingAllocator alloc = new CachingAllocator(null, device);
    private final Object streamA = "stream A", streamB = "stream B";

    @Test
    void closedBlocksAreReusedForTheSameClassOnTheSameStream() {
        DeviceBuffer x = alloc.allocate(3_000_000, streamA);
        long address = x.rawAddress();
        x.close();
        DeviceBuffer y = alloc.allocate(2_900_000, streamA);  // same class (3 MiB)
        assertEquals(address, y.rawAddress());
        assertEquals(1, device.allocations, "no second device allocation");
        AllocatorStats s = alloc.stats();
        assertEquals(SizeClasses.roundUp(3_000_000), s.reservedBytes());
        assertEquals(s.reservedBytes(), s.allocatedBytes());
        assertEquals(1, s.cacheHits());
        assertEquals(2_900_000, y.bytes(), "the buffer reports the size asked for");
    }

    @Test
    void otherStreamsAndOtherClassesGetTheirOwnBlocks() {
        alloc.allocate(1 << 20, streamA).close();
        DeviceBuffer other = alloc.allocate(1 << 20, streamB);
        DeviceBuffer bigger = alloc.allocate(3 << 20, streamA);
        assertEquals(3, device.allocations);
        assertNotEquals(other.rawAddress(), bigger.rawAddress());
        assertEquals(0, alloc.stats().cacheHits());
    }

    @Test
    void statsTrackAllocatedReservedAndPeaks() {
        DeviceBuffer a = alloc.allocate(1 << 20, streamA), b = alloc.allocate(2 << 20, streamA);
        a.close();
        AllocatorStats s = alloc.stats();
        assertEquals(2 << 20, s.allocatedBytes());
        assertEquals(3 << 20, s.reservedBytes());
        assertEquals(3 << 20, s.peakAllocatedBytes());
        alloc.resetPeaks();
        assertEquals(2 << 20, alloc.stats().peakAllocatedBytes());
        b.close();
        b.close();  // closing twice returns the block once
        assertEquals(0, alloc.stats().allocatedBytes());
        assertEquals(3 << 20, alloc.stats().reservedBytes());
    }

    @Test
    void emptyCacheFreesOnlyCachedBlocks() {
        DeviceBuffer kept = alloc.allocate(1 << 20, streamA);
        alloc.allocate(2 << 20, streamA).close();
        alloc.allocate(5000, streamB).close();
        alloc.emptyCache();
        assertEquals(2, device.frees);
        assertEquals(1 << 20, alloc.stats().reservedBytes());
        assertEquals(1 << 20, device.used);
        kept.close();
        alloc.emptyCache();
        assertEquals(0, device.used);
        assertEquals(0, alloc.stats().reservedBytes());
    }

    @Test
    void outOfMemoryEmptiesTheCacheAndRetriesOnce() {
        device.capacity = 5 << 20;
        alloc.allocate(4 << 20, streamA).close();  // cached, holding 4 of the 5 MiB
        DeviceBuffer x = alloc.allocate(3 << 20, streamA);  // fits only once the cached 4 MiB go back
        assertEquals(3 << 20, alloc.stats().reservedBytes());
        x.close();
        device.capacity = 1 << 20;
        alloc.emptyCache();
        var e = assertThrows(CudaException.class, () -> alloc.allocate(2 << 20, streamA));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertTrue(e.getMessage().contains("after emptying the cache"), e.getMessage());
    }
}

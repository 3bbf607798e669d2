package dev.jomni.cuda;

/**
 * The caching allocator's counters.
 *
 * @param allocatedBytes     bytes in blocks handed out and not yet closed (rounded up to size classes)
 * @param reservedBytes      bytes held from the driver: allocated plus cached
 * @param peakAllocatedBytes the most {@code allocatedBytes} has been since creation or {@link CachingAllocator#resetPeaks()}
 * @param peakReservedBytes  the most {@code reservedBytes} has been, likewise
 * @param deviceAllocations  cuMemAlloc calls made (a steady state makes none)
 * @param cacheHits          allocations served from the cache
 */
public record AllocatorStats(long allocatedBytes, long reservedBytes, long peakAllocatedBytes, long peakReservedBytes,
                             long deviceAllocations, long cacheHits) {}

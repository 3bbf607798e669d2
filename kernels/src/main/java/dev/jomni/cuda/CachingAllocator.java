package dev.jomni.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * A caching device allocator: closed blocks go back to a pool keyed by (stream, size class) instead of
 * to the driver, so a training step that repeats its allocations makes no cuMemAlloc once warm. A
 * block is reused only by allocations on the stream it was allocated on, which orders the reuse
 * after the earlier work without synchronisation; a block used on another stream too must be closed
 * only after that stream's work (an event) is done. When the driver runs out of memory the cache is
 * emptied and the allocation retried once. One per context ({@link CudaContext#allocator()}); thread-safe.
 */
public final class CachingAllocator {
    /** Where blocks come from: the driver, or a fake in CPU tests. */
    interface RawMemory {
        long allocate(long bytes);

        void free(long address);
    }

    private final CudaContext context;
    private final RawMemory raw;
    private final Map<Object, Map<Long, ArrayDeque<Long>>> pools = new HashMap<>();
    private long allocated, reserved, peakAllocated, peakReserved, deviceAllocations, cacheHits;

    CachingAllocator(CudaContext context, RawMemory raw) {
        this.context = context;
        this.raw = raw;
    }

    static RawMemory driverMemory(CudaContext ctx) {
        return new RawMemory() {
            public long allocate(long bytes) {
                ctx.bind();
                return Driver.longOut("cuMemAlloc(" + bytes + " bytes) for the caching allocator" + ctx.on(), Driver.MEM_ALLOC, bytes);
            }

            public void free(long address) {
                ctx.bind();
                Driver.call("cuMemFree (caching allocator)" + ctx.on(), Driver.MEM_FREE, address);
            }
        };
    }

    /** A block of at least {@code bytes} for work on {@code stream}; close() returns it to the cache. */
    public DeviceBuffer allocate(long bytes, Stream stream) {
        context.checkOwn(stream);
        return allocate(bytes, (Object) stream);
    }

    synchronized DeviceBuffer allocate(long bytes, Object streamKey) {
        long size = SizeClasses.roundUp(bytes);
        ArrayDeque<Long> pool = pools.computeIfAbsent(streamKey, k -> new HashMap<>()).get(size);
        long address;
        if (pool != null && !pool.isEmpty()) {
            address = pool.pop();
            cacheHits++;
        } else {
            address = allocateFromDevice(size, bytes);
            reserved += size;
            peakReserved = Math.max(peakReserved, reserved);
            deviceAllocations++;
        }
        allocated += size;
        peakAllocated = Math.max(peakAllocated, allocated);
        return new DeviceBuffer(context, address, bytes, b -> release(streamKey, size, b.rawAddress()));
    }

    private long allocateFromDevice(long size, long asked) {
        try {
            return raw.allocate(size);
        } catch (CudaException e) {
            if (e.code() != Driver.CUDA_ERROR_OUT_OF_MEMORY) throw e;
            emptyCache();
            try {
                return raw.allocate(size);
            } catch (CudaException again) {
                throw new CudaException("caching allocator: out of device memory for " + asked + " bytes (class " + size
                        + ") after emptying the cache; " + stats() + ": " + again.getMessage(), again.errorName(), again.code());
            }
        }
    }

    private synchronized void release(Object streamKey, long size, long address) {
        allocated -= size;
        pools.computeIfAbsent(streamKey, k -> new HashMap<>()).computeIfAbsent(size, k -> new ArrayDeque<>()).push(address);
    }

    /** Returns every cached (not allocated) block to the driver. */
    public synchronized void emptyCache() {
        for (Map<Long, ArrayDeque<Long>> bySize : pools.values()) {
            for (Map.Entry<Long, ArrayDeque<Long>> e : bySize.entrySet()) {
                for (Long address : e.getValue()) {
                    raw.free(address);
                    reserved -= e.getKey();
                }
                e.getValue().clear();
            }
        }
    }

    public synchronized AllocatorStats stats() {
        return new AllocatorStats(allocated, reserved, peakAllocated, peakReserved, deviceAllocations, cacheHits);
    }

    /** Starts the peaks again from the current values (a trainer does this per step). */
    public synchronized void resetPeaks() {
        peakAllocated = allocated;
        peakReserved = reserved;
    }
}

package dev.jomni.tensor.spi;

import dev.jomni.tensor.Device;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A block of memory holding a tensor's elements, shared by the tensor and its views. Reference
 * counted by the tensors that use it: freed when the last one is closed (by its scope, explicitly,
 * or, for tensors created outside any scope, by the garbage collector). The allocation counters
 * here are published to users by {@link dev.jomni.tensor.Memory}.
 */
public abstract class Storage {
    private static final AtomicLong LIVE_BYTES = new AtomicLong(), LIVE_COUNT = new AtomicLong(), SEQUENCE = new AtomicLong();
    /** The most {@link #liveBytes} has been since {@link #resetPeak}. */
    private static final AtomicLong PEAK_BYTES = new AtomicLong();
    /** Live storages by allocation number: lets a test count what one piece of code left behind. */
    private static final ConcurrentHashMap<Long, Long> LIVE = new ConcurrentHashMap<>();

    public final Device device;
    public final long bytes;
    private final AtomicInteger refs = new AtomicInteger();

    private final boolean counted;
    private final long sequence = SEQUENCE.getAndIncrement();

    protected Storage(Device device, long bytes, boolean counted) {
        this.device = device;
        this.bytes = bytes;
        this.counted = counted;
        if (counted) {
            long live = LIVE_BYTES.addAndGet(bytes);
            PEAK_BYTES.accumulateAndGet(live, Math::max);
            LIVE_COUNT.incrementAndGet();
            LIVE.put(sequence, bytes);
        }
    }

    /** Releases the memory; called once, when the last tensor using it is closed. */
    protected abstract void free();

    /** Called by each tensor made over this storage (the tensor package's bookkeeping; backends never call it). */
    public final void retain() { refs.incrementAndGet(); }

    /** Called once by each tensor over this storage when it is closed; frees at the last one. */
    public final void release() {
        if (refs.decrementAndGet() == 0) {
            free();
            if (counted) {
                LIVE_BYTES.addAndGet(-bytes);
                LIVE_COUNT.decrementAndGet();
                LIVE.remove(sequence);
            }
        }
    }

    /** Bytes held by storages allocated by backends and not yet freed (memory-mapped files excluded). */
    public static long liveBytes() { return LIVE_BYTES.get(); }

    /** The peak of {@link #liveBytes} since the last {@link #resetPeak} (or the start). */
    public static long peakBytes() { return PEAK_BYTES.get(); }

    /** Restarts the peak from the bytes live now (per training step, per benchmark iteration); returns them. */
    public static long resetPeak() {
        long live = LIVE_BYTES.get();
        PEAK_BYTES.set(live);
        return live;
    }

    /** Number of storages allocated by backends and not yet freed. */
    public static long liveCount() { return LIVE_COUNT.get(); }

    /** A point in the sequence of allocations, for {@link #liveSince}. */
    public static long mark() { return SEQUENCE.get(); }

    /** Storages allocated after {@code mark} and still live: {count, bytes}. Unaffected by older garbage. */
    public static long[] liveSince(long mark) {
        long count = 0, total = 0;
        for (var e : LIVE.entrySet())
            if (e.getKey() >= mark) {
                count++;
                total += e.getValue();
            }
        return new long[] {count, total};
    }
}

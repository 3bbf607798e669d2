package dev.jomni.tensor;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A block of memory holding a tensor's elements, shared by the tensor and its views. Reference
 * counted by the tensors that use it: freed when the last one is closed (by its scope, explicitly,
 * or, for tensors created outside any scope, by the garbage collector).
 */
public abstract class Storage {
    private static final AtomicLong LIVE_BYTES = new AtomicLong(), LIVE_COUNT = new AtomicLong();

    public final Device device;
    public final long bytes;
    private final AtomicInteger refs = new AtomicInteger();

    protected Storage(Device device, long bytes, boolean counted) {
        this.device = device;
        this.bytes = bytes;
        this.counted = counted;
        if (counted) {
            LIVE_BYTES.addAndGet(bytes);
            LIVE_COUNT.incrementAndGet();
        }
    }

    private final boolean counted;

    /** Releases the memory; called once, when the last tensor using it is closed. */
    protected abstract void free();

    void retain() { refs.incrementAndGet(); }

    void release() {
        if (refs.decrementAndGet() == 0) {
            free();
            if (counted) {
                LIVE_BYTES.addAndGet(-bytes);
                LIVE_COUNT.decrementAndGet();
            }
        }
    }

    /** Bytes held by storages allocated by backends and not yet freed (memory-mapped files excluded). */
    public static long liveBytes() { return LIVE_BYTES.get(); }

    /** Number of storages allocated by backends and not yet freed. */
    public static long liveCount() { return LIVE_COUNT.get(); }
}

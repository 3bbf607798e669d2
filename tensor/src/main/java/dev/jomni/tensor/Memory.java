package dev.jomni.tensor;

import dev.jomni.tensor.spi.Storage;

/**
 * How much tensor memory the backends hold: bytes and count of live storages, the peak since a
 * reset, and what one piece of code left behind ({@link #mark} / {@link #liveSince}). Memory-mapped
 * files wrapped in place are not counted. Every device's allocations count together.
 */
public final class Memory {
    private Memory() {}

    /** Bytes held by storages allocated by backends and not yet freed. */
    public static long liveBytes() { return Storage.liveBytes(); }

    /** The peak of {@link #liveBytes} since the last {@link #resetPeak} (or the start). */
    public static long peakBytes() { return Storage.peakBytes(); }

    /** Restarts the peak from the bytes live now (per training step, per benchmark iteration); returns them. */
    public static long resetPeak() { return Storage.resetPeak(); }

    /** Number of storages allocated by backends and not yet freed. */
    public static long liveCount() { return Storage.liveCount(); }

    /** A point in the sequence of allocations, for {@link #liveSince}. */
    public static long mark() { return Storage.mark(); }

    /** Storages allocated after {@code mark} and still live: {count, bytes}. Unaffected by older garbage. */
    public static long[] liveSince(long mark) { return Storage.liveSince(mark); }
}

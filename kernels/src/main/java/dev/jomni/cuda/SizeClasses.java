package dev.jomni.cuda;

/**
 * The caching allocator's block sizes: multiples of 512 bytes up to 4 KiB, then four classes per
 * power of two (2^k·{1.25, 1.5, 1.75, 2}): a block is at most a quarter larger than asked, and a
 * model's many distinct tensor sizes fall into few classes, so cached blocks are reused.
 */
final class SizeClasses {
    static final long MIN = 512;
    static final long MAX = 1L << 56;  // far beyond any device; keeps the rounding free of overflow

    private SizeClasses() {}

    /** The smallest class that holds {@code bytes}. */
    static long roundUp(long bytes) {
        if (bytes <= 0 || bytes > MAX)
            throw new IllegalArgumentException("allocation of " + bytes + " bytes: must be positive and at most 2^56");
        if (bytes <= 8 * MIN) return (bytes + MIN - 1) / MIN * MIN;
        int log = 63 - Long.numberOfLeadingZeros(bytes - 1);  // 2^log < bytes <= 2^(log+1)
        long step = 1L << (log - 2);
        return (bytes + step - 1) & -step;
    }
}

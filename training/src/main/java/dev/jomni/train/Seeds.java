package dev.jomni.train;

import dev.jomni.tensor.Generator;

/**
 * The trainers' counter-based randomness: every draw is seeded from (seed, counter), so a resumed run
 * reproduces an uninterrupted one without saving a generator's state.
 */
public final class Seeds {
    private Seeds() {}

    /** A well-mixed seed for counter {@code n} of {@code seed} (splitmix64's finaliser). */
    public static long mix(long seed, long n) {
        long z = seed * 0x632BE59BD9B4E019L + n * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Epoch e's order of n items: a Fisher–Yates shuffle from a generator seeded by (seed, e). */
    public static int[] epochOrder(int n, long seed, int epoch) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        var gen = new Generator(mix(seed, -1 - epoch));
        for (int i = n - 1; i > 0; i--) {
            int j = gen.nextInt(i + 1), t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}

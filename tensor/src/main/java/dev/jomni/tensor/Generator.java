package dev.jomni.tensor;

import java.util.SplittableRandom;

/**
 * An explicit, seeded source of randomness: {@code rand}, {@code randn} and {@code dropout} draw from
 * the one passed to them, so a run is reproduced by its seeds. Not thread-safe; one per stream of use.
 */
public final class Generator {
    private final SplittableRandom random;

    public Generator(long seed) { random = new SplittableRandom(seed); }

    public double nextDouble() { return random.nextDouble(); }

    public long nextLong() { return random.nextLong(); }

    public int nextInt(int bound) { return random.nextInt(bound); }

    /** Standard normal by Box–Muller (two uniforms per draw, so the stream position is predictable). */
    public double nextGaussian() {
        double u1 = 1.0 - random.nextDouble(), u2 = random.nextDouble();
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
}

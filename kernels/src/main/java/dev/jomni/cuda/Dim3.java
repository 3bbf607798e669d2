package dev.jomni.cuda;

/** A grid or block shape. */
public record Dim3(int x, int y, int z) {
    public Dim3 {
        if (x <= 0 || y <= 0 || z <= 0) throw new IllegalArgumentException("launch dimension (" + x + ", " + y + ", " + z + ") must be positive");
    }

    public static Dim3 of(int x) {
        return new Dim3(x, 1, 1);
    }

    public static Dim3 of(int x, int y) {
        return new Dim3(x, y, 1);
    }

    /** ceil(n / per), as a grid size; throws where it exceeds CUDA's 2^31 − 1 blocks. */
    public static int blocks(long n, long per) {
        long b = Math.max(1, (n + per - 1) / per);
        if (b > Integer.MAX_VALUE) throw new IllegalArgumentException(n + " items in blocks of " + per + " need " + b + " blocks");
        return (int) b;
    }

    @Override
    public String toString() {
        return "(" + x + ", " + y + ", " + z + ")";
    }
}

package dev.jomni.tensor;

import java.util.Arrays;

/**
 * Argument checks whose messages name the op and the shapes or dtypes at fault. Public for the coarse
 * ops of {@code dev.jomni.tensor.ops}; not meant for model code.
 */
public final class Check {
    private Check() {}

    public static String str(int[] shape) { return Arrays.toString(shape); }

    public static IllegalArgumentException fail(String op, String format, Object... args) {
        return new IllegalArgumentException(op + ": " + String.format(format, args));
    }

    /** Normalises a possibly negative axis against rank; names the op when out of range. */
    public static int dim(String op, int dim, int rank) {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw fail(op, "dim %d is out of range for a tensor of rank %d", dim, rank);
        return d;
    }

    public static void floating(String op, Tensor t) {
        if (!t.dtype().floating) throw fail(op, "needs a floating tensor, got %s %s", t.dtype().lower(), str(t.shape()));
    }

    public static void sameDevice(String op, Tensor a, Tensor b) {
        if (!a.device().equals(b.device()))
            throw fail(op, "tensors on different devices: %s and %s", a.device(), b.device());
    }

    public static void index(String op, Tensor index) {
        if (index.dtype() != DType.I64 && index.dtype() != DType.I32)
            throw fail(op, "index must be i64 or i32, got %s %s", index.dtype().lower(), str(index.shape()));
    }

    /** The broadcast of two shapes (NumPy rules), or an error naming both. */
    public static int[] broadcast(String op, int[] a, int[] b) {
        int n = Math.max(a.length, b.length);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int x = i < n - a.length ? 1 : a[i - (n - a.length)];
            int y = i < n - b.length ? 1 : b[i - (n - b.length)];
            if (x != y && x != 1 && y != 1)
                throw fail(op, "shapes %s and %s do not broadcast (axis %d: %d vs %d)", str(a), str(b), i, x, y);
            out[i] = x == 1 ? y : x;
        }
        return out;
    }
}

package dev.jomni.cuda;

/** Launcher of fill.cu's fills: a constant, or uniform values from a counter-based hash of (seed, index). */
public final class FillKernel {
    static final int THREADS = 256;
    private static final Dim3 BLOCK = Dim3.of(THREADS);

    private FillKernel() {}

    /** out[i] = value for i < n (f32). */
    public static void f32(Stream stream, DeviceBuffer out, long n, float value) {
        launch(stream, "fill_f32", out, n, 4, value, n);
    }

    /** out[i] = bf16(value) for i < n. */
    public static void bf16(Stream stream, DeviceBuffer out, long n, float value) {
        launch(stream, "fill_bf16", out, n, 2, value, n);
    }

    /** out[i] = lo + (hi − lo)·u(seed, i), u uniform in [0, 1) (f32). */
    public static void uniformF32(Stream stream, DeviceBuffer out, long n, long seed, float lo, float hi) {
        launch(stream, "fill_uniform_f32", out, n, 4, n, seed, lo, hi);
    }

    /** out[i] = bf16(lo + (hi − lo)·u(seed, i)), u uniform in [0, 1). */
    public static void uniformBf16(Stream stream, DeviceBuffer out, long n, long seed, float lo, float hi) {
        launch(stream, "fill_uniform_bf16", out, n, 2, n, seed, lo, hi);
    }

    private static void launch(Stream stream, String kernel, DeviceBuffer out, long n, int elementBytes, Object... rest) {
        if (n <= 0) throw new IllegalArgumentException(kernel + ": n = " + n);
        DeviceBuffer.elementsFit(out, n, elementBytes, kernel + " out");
        Object[] args = new Object[rest.length + 1];
        args[0] = out;
        System.arraycopy(rest, 0, args, 1, rest.length);
        stream.context().kernel("fill", kernel).launch(stream, Dim3.of(Dim3.blocks(n, THREADS)), BLOCK, 0, args);
    }

    /** The hash behind the uniform fills, for references on the CPU: u(seed, i) in [0, 1). */
    static float uniform01(long seed, long i) {
        long z = seed + (i + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (float) (z >>> 40) * 0x1.0p-24f;
    }
}

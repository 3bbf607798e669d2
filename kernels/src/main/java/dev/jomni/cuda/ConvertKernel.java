package dev.jomni.cuda;

/** Launcher of fill.cu's conversions between f32 and bf16 (round to nearest even; exact widening). */
public final class ConvertKernel {
    private static final Dim3 BLOCK = Dim3.of(FillKernel.THREADS);

    private ConvertKernel() {}

    /** out[i] = bf16(in[i]), i < n: out holds n bf16, in n f32. */
    public static void f32ToBf16(Stream stream, DeviceBuffer out, DeviceBuffer in, long n) {
        check("convert_f32_bf16", out, 2, in, 4, n);
        stream.context().kernel("fill", "convert_f32_bf16")
                .launch(stream, Dim3.of(Dim3.blocks(n, FillKernel.THREADS)), BLOCK, 0, out, in, n);
    }

    /** out[i] = f32(in[i]), i < n: out holds n f32, in n bf16. */
    public static void bf16ToF32(Stream stream, DeviceBuffer out, DeviceBuffer in, long n) {
        check("convert_bf16_f32", out, 4, in, 2, n);
        stream.context().kernel("fill", "convert_bf16_f32")
                .launch(stream, Dim3.of(Dim3.blocks(n, FillKernel.THREADS)), BLOCK, 0, out, in, n);
    }

    private static void check(String kernel, DeviceBuffer out, int outBytes, DeviceBuffer in, int inBytes, long n) {
        if (n <= 0) throw new IllegalArgumentException(kernel + ": n = " + n);
        DeviceBuffer.elementsFit(out, n, outBytes, kernel + " out");
        DeviceBuffer.elementsFit(in, n, inBytes, kernel + " in");
    }
}

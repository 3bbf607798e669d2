package dev.jomni.cuda;

/** Launcher of add.cu: out = a + b over n contiguous bf16 elements, fp32 add and one rounding. */
public final class AddKernel {
    static final int THREADS = 256;  // with VECS = 2: 8 KiB of each input in flight per block
    static final int VECS = 2;       // must match add.cu
    private static final Dim3 BLOCK = Dim3.of(THREADS);

    private AddKernel() {}

    /** out[i] = a[i] + b[i], i < n; all three hold at least n bf16 values; out may alias a or b. */
    public static void bf16(Stream stream, DeviceBuffer out, DeviceBuffer a, DeviceBuffer b, long n) {
        if (n <= 0) throw new IllegalArgumentException("add_bf16: n = " + n);
        DeviceBuffer.elementsFit(out, n, 2, "add_bf16 out");
        DeviceBuffer.elementsFit(a, n, 2, "add_bf16 a");
        DeviceBuffer.elementsFit(b, n, 2, "add_bf16 b");
        boolean aligned = ((out.address() | a.address() | b.address()) & 15) == 0;  // the kernel's own test
        int grid = aligned ? Dim3.blocks(n / 8, (long) THREADS * VECS) : Dim3.blocks(n, THREADS);
        stream.context().kernel("add", "add_bf16").launch(stream, Dim3.of(grid), BLOCK, 0, out, a, b, n);
    }
}

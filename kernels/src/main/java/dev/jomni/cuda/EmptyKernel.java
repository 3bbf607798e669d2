package dev.jomni.cuda;

/** Launcher of empty.cu's {@code empty_kernel}: one block of one thread that does nothing (launch cost alone). */
public final class EmptyKernel {
    private static final Dim3 ONE = Dim3.of(1);

    private EmptyKernel() {}

    public static void launch(Stream stream) {
        stream.context().kernel("empty", "empty_kernel").launch(stream, ONE, ONE, 0);
    }
}

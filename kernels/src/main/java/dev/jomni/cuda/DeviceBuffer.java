package dev.jomni.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * A range of device memory. Owning buffers free their memory on close() (to the driver, the stream
 * order, or the {@link CachingAllocator}); slices share their parent's memory and must not outlive
 * it. Using a closed buffer throws. Not thread-safe. Copies named {@code …Async} are queued on the
 * given stream; the others run on the legacy default stream and return when done, but do not wait for
 * work queued on other streams: synchronize those first.
 */
public final class DeviceBuffer implements AutoCloseable {
    /** What close() does with the memory. */
    interface Release {
        void release(DeviceBuffer buffer);
    }

    private static final Release SLICE = b -> {};

    private final CudaContext context;
    private final long address;
    private final long bytes;
    private final Release release;
    private boolean closed;

    DeviceBuffer(CudaContext context, long address, long bytes, Release release) {
        this.context = context;
        this.address = address;
        this.bytes = bytes;
        this.release = release;
    }

    public CudaContext context() {
        return context;
    }

    /** Size in bytes (as asked for; a cached block may be larger underneath). */
    public long bytes() {
        return bytes;
    }

    /** A view of {@code length} bytes from {@code offset}; closing it frees nothing. */
    public DeviceBuffer slice(long offset, long length) {
        if (offset < 0 || length <= 0 || offset + length > bytes)
            throw new IndexOutOfBoundsException("slice [" + offset + ", " + (offset + length) + ") of a " + bytes + "-byte buffer");
        return new DeviceBuffer(context, address() + offset, length, SLICE);
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        release.release(this);
    }

    /** The device address; for this package's launchers and bindings only. */
    long address() {
        if (closed) throw new IllegalStateException("device buffer of " + bytes + " bytes" + context.on() + " used after close()");
        return address;
    }

    /** The address even after close(), for the release action itself. */
    long rawAddress() {
        return address;
    }

    // ---- host arrays -> device (synchronous) ----

    public void copyFrom(float[] src) { copyFromHost(MemorySegment.ofArray(src), "float[" + src.length + "]"); }
    public void copyFrom(short[] src) { copyFromHost(MemorySegment.ofArray(src), "short[" + src.length + "]"); }
    public void copyFrom(int[] src) { copyFromHost(MemorySegment.ofArray(src), "int[" + src.length + "]"); }
    public void copyFrom(byte[] src) { copyFromHost(MemorySegment.ofArray(src), "byte[" + src.length + "]"); }

    public void copyTo(float[] dst) { copyToHost(MemorySegment.ofArray(dst), "float[" + dst.length + "]"); }
    public void copyTo(short[] dst) { copyToHost(MemorySegment.ofArray(dst), "short[" + dst.length + "]"); }
    public void copyTo(int[] dst) { copyToHost(MemorySegment.ofArray(dst), "int[" + dst.length + "]"); }
    public void copyTo(byte[] dst) { copyToHost(MemorySegment.ofArray(dst), "byte[" + dst.length + "]"); }

    /** Copies all of {@code src} (heap or native host memory) to the start of this buffer, synchronously. */
    void copyFromHost(MemorySegment src, String what) {
        long n = src.byteSize();
        checkFits(n, what);
        context.bind();
        String call = "cuMemcpyHtoD(" + n + " bytes from " + what + ")" + context.on();
        if (src.isNative()) {
            Driver.call(call, Driver.MEMCPY_HTOD, address(), src, n);
        } else {  // downcalls take native memory only: stage heap arrays
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment staged = arena.allocate(n, 16);
                staged.copyFrom(src);
                Driver.call(call, Driver.MEMCPY_HTOD, address(), staged, n);
            }
        }
        // cuMemcpyHtoD from pageable memory returns once the data is staged, before the DMA lands
        syncLegacyStream(call);
    }

    /** Fills all of {@code dst} from the start of this buffer, synchronously. */
    void copyToHost(MemorySegment dst, String what) {
        long n = dst.byteSize();
        checkFits(n, what);
        context.bind();
        String call = "cuMemcpyDtoH(" + n + " bytes into " + what + ")" + context.on();
        if (dst.isNative()) {
            Driver.call(call, Driver.MEMCPY_DTOH, dst, address(), n);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staged = arena.allocate(n, 16);
            Driver.call(call, Driver.MEMCPY_DTOH, staged, address(), n);
            dst.copyFrom(staged);
        }
    }

    // ---- device -> device ----

    /** Copies the first {@code n} bytes of {@code src} here, synchronously. */
    public void copyFrom(DeviceBuffer src, long n) {
        checkFits(n, "a device buffer");
        src.checkFits(n, "a copy");
        context.bind();
        Driver.call("cuMemcpyDtoD(" + n + " bytes)" + context.on(), Driver.MEMCPY_DTOD, address(), src.address(), n);
        syncLegacyStream("cuMemcpyDtoD");  // device-to-device copies do not block the host
    }

    /** Queues a copy of the first {@code n} bytes of {@code src} to here on {@code stream}. */
    public void copyFromAsync(DeviceBuffer src, long n, Stream stream) {
        checkFits(n, "a device buffer");
        src.checkFits(n, "a copy");
        context.bind();
        exact(Driver.MEMCPY_DTOD_ASYNC, address(), src.address(), n, stream, "cuMemcpyDtoDAsync(" + n + " bytes)");
    }

    /** Queues a copy of the first {@code n} bytes of pinned host memory to here on {@code stream}. */
    public void copyFromAsync(PinnedBuffer src, long n, Stream stream) {
        checkFits(n, "pinned memory");
        src.checkFits(n);
        context.bind();
        int status;
        try {
            status = (int) Driver.MEMCPY_HTOD_ASYNC.invokeExact(address(), src.segment(), n, stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuMemcpyHtoDAsync", t);
        }
        if (status != 0) throw Driver.error(status, "cuMemcpyHtoDAsync(" + n + " bytes)" + context.on());
    }

    /** Queues a copy of the first {@code n} bytes here to pinned host memory on {@code stream}. */
    public void copyToAsync(PinnedBuffer dst, long n, Stream stream) {
        checkFits(n, "pinned memory");
        dst.checkFits(n);
        context.bind();
        int status;
        try {
            status = (int) Driver.MEMCPY_DTOH_ASYNC.invokeExact(dst.segment(), address(), n, stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuMemcpyDtoHAsync", t);
        }
        if (status != 0) throw Driver.error(status, "cuMemcpyDtoHAsync(" + n + " bytes)" + context.on());
    }

    // ---- memset ----

    /** Sets every byte to {@code value} (0..255), synchronously. 0xFF makes every f32, f16 and bf16 a NaN. */
    public void fill(int value) {
        context.bind();
        Driver.call("cuMemsetD8(" + bytes + " bytes)" + context.on(), Driver.MEMSET_D8, address(), (byte) value, bytes);
        syncLegacyStream("cuMemsetD8");  // memsets of device memory do not block the host
    }

    private void syncLegacyStream(String after) {
        Driver.call("cuStreamSynchronize(legacy default stream) after " + after + context.on(), Driver.STREAM_SYNCHRONIZE,
                MemorySegment.NULL);
    }

    /** Queues setting every byte to {@code value} (0..255) on {@code stream}. */
    public void fillAsync(int value, Stream stream) {
        context.bind();
        int status;
        try {
            status = (int) Driver.MEMSET_D8_ASYNC.invokeExact(address(), (byte) value, bytes, stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuMemsetD8Async", t);
        }
        if (status != 0) throw Driver.error(status, "cuMemsetD8Async(" + bytes + " bytes)" + context.on());
    }

    private static void exact(MethodHandle h, long dst, long src, long n, Stream stream, String what) {
        int status;
        try {
            status = (int) h.invokeExact(dst, src, n, stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow(what, t);
        }
        if (status != 0) throw Driver.error(status, what + stream.context().on());
    }

    void checkFits(long n, String what) {
        if (n < 0 || n > bytes)
            throw new IllegalArgumentException("copy of " + n + " bytes (" + what + ") into/out of a " + bytes + "-byte device buffer" + context.on());
    }

    static long elementsFit(DeviceBuffer b, long count, int elementBytes, String what) {
        if (count < 0 || count * elementBytes > b.bytes)
            throw new IllegalArgumentException(what + ": " + count + " elements of " + elementBytes + " bytes do not fit a "
                    + b.bytes + "-byte buffer");
        return count;
    }

    @Override
    public String toString() {
        return "DeviceBuffer[" + bytes + " bytes" + context.on() + (closed ? ", closed]" : "]");
    }
}

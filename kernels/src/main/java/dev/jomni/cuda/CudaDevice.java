package dev.jomni.cuda;

import dev.jomni.tensor.Device;

/**
 * One GPU as the CUDA backend drives it: its context, the stream all of the backend's work on it is
 * queued on (in order), the primitives' kernels and (made on first use) a cuBLASLt handle. Owned by a
 * {@link CudaBackend} ({@link CudaBackend#on(Device)}), one per device index, made on first use; nothing
 * here is static, so two devices (or two backends in a test) never share a stream or a handle.
 */
public final class CudaDevice {
    final Device device;
    final CudaContext ctx;
    /** The backend's stream on this device: every op, copy and allocation of the backend is ordered on it. */
    final Stream stream;
    final CudaStream defaultStream;
    /** The grid-stride kernels' grid cap: 8 blocks of 256 per SM keep every SM busy. */
    final int maxBlocks;
    final Kernel ewF32, ewF64, ewFlatF32, ewFlatF64, addIntoOrdered, reduceBlock, reduceThread, gather, scatterAdd, cumsum,
            cumsumBlock, argsort, matmulF64;
    private volatile BlasLt blas;

    CudaDevice(Device device, CudaContext ctx) {
        this.device = device;
        this.ctx = ctx;
        stream = ctx.createStream();
        defaultStream = new CudaStream(device, stream, false);
        maxBlocks = Math.max(1, ctx.properties().multiprocessorCount() * 8);
        ewF32 = ctx.kernel("elementwise", "ew_f32");
        ewF64 = ctx.kernel("elementwise", "ew_f64");
        ewFlatF32 = ctx.kernel("elementwise", "ew_flat_f32");
        ewFlatF64 = ctx.kernel("elementwise", "ew_flat_f64");
        addIntoOrdered = ctx.kernel("elementwise", "add_into_ordered");
        reduceBlock = ctx.kernel("reduce", "reduce_block");
        reduceThread = ctx.kernel("reduce", "reduce_thread");
        gather = ctx.kernel("index", "gather");
        scatterAdd = ctx.kernel("index", "scatter_add");
        cumsum = ctx.kernel("index", "cumsum_rows");
        cumsumBlock = ctx.kernel("index", "cumsum_block");
        argsort = ctx.kernel("index", "argsort_rows");
        matmulF64 = ctx.kernel("index", "matmul_f64");
    }

    public Device device() {
        return device;
    }

    public CudaContext context() {
        return ctx;
    }

    /** The stream the backend queues this device's work on, in order (for events and timing). */
    public Stream stream() {
        return stream;
    }

    /** The caching allocator's counters (allocated, reserved, peaks, driver allocations). */
    public AllocatorStats memoryStats() {
        return ctx.allocator().stats();
    }

    /** Restarts the allocator's peaks from the current values (per training step). */
    public void resetPeakMemory() {
        ctx.allocator().resetPeaks();
    }

    /** Waits until all work queued on this device's stream has run. */
    public void synchronize() {
        stream.synchronize();
    }

    /** A kernel of one of jomni's kernel files (kernels/src/main/cuda/FILE.cu), for the coarse ops' launchers. */
    Kernel kernel(String file, String function) {
        return ctx.kernel(file, function);
    }

    BlasLt blas() {
        BlasLt b = blas;
        if (b == null) {
            synchronized (this) {
                if (blas == null) blas = BlasLt.create(ctx);
                b = blas;
            }
        }
        return b;
    }

    @Override
    public String toString() {
        return device + " (" + ctx.properties().name() + ")";
    }
}

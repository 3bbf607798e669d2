package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.jomni.tensor.Device;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One GPU as the CUDA backend drives it: its context, the stream all of the backend's work on it is
 * queued on (in order), the primitives' kernels and (made on first use) a cuBLASLt handle. Owned by a
 * {@link CudaBackend} ({@link CudaBackend#on(Device)}), one per device index, made on first use; nothing
 * here is static, so two devices (or two backends in a test) never share a stream or a handle.
 *
 * <p>Host synchronisations are counted ({@link #hostSyncs}): every wait for the stream and every
 * device-to-host copy goes through {@link #await}, which also raises the deferred index-range errors:
 * {@link CudaBackend#checkIndex} queues a kernel that writes the first bad index it meets into a small
 * device record (flag, op, position, value, bound; index.cu's IndexError), copied back beside the next
 * synchronisation's wait (no extra one) and turned into an exception naming the op.
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
    final Kernel checkIndex;
    private volatile BlasLt blas;

    private final AtomicLong hostSyncs = new AtomicLong();
    /** Where each host synchronisation came from, while {@link #traceSyncs} is on (a test's diagnosis). */
    private volatile List<String> syncSites;
    /** index.cu's IndexError on the device (zero: no error) and its pinned host copy. */
    private final DeviceBuffer indexError;
    private final PinnedBuffer indexErrorHost;
    static final long INDEX_ERROR_BYTES = 32;
    /** A check has been queued since the error record was last read. */
    private volatile boolean checksPending;
    /** Op names by the number a check kernel writes (few distinct names: they are interned once). */
    private final ConcurrentHashMap<String, Integer> opIds = new ConcurrentHashMap<>();
    private final List<String> opNames = new ArrayList<>();

    CudaDevice(Device device, CudaContext ctx) {
        this.device = device;
        this.ctx = ctx;
        stream = ctx.createStream();
        defaultStream = new CudaStream(this, stream, false);
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
        checkIndex = ctx.kernel("index", "check_index");
        indexError = ctx.allocate(INDEX_ERROR_BYTES);
        indexErrorHost = ctx.allocatePinned(INDEX_ERROR_BYTES);
        Driver.call("cuMemsetD8 (index error record)" + ctx.on(), Driver.MEMSET_D8, indexError.address(), (byte) 0, INDEX_ERROR_BYTES);
    }

    /** Device address of the index error record, for check_index. */
    long indexErrorAddress() {
        checksPending = true;
        return indexError.address();
    }

    /** The number check_index reports {@code op} by. */
    int opId(String op) {
        Integer id = opIds.get(op);
        if (id != null) return id;
        synchronized (opNames) {
            return opIds.computeIfAbsent(op, k -> {
                opNames.add(k);
                return opNames.size();          // from 1: 0 is "no error"
            });
        }
    }

    /**
     * Waits until the stream's queued work (a device-to-host copy among it) has run: one host
     * synchronisation. Raises an index error that a check queued before it found.
     */
    void await() {
        boolean read = checksPending;
        MemorySegment host = indexErrorHost.segment();
        if (read) {                                   // queued before the wait, so the wait covers it
            ctx.bind();
            int status;
            try {
                status = (int) Driver.MEMCPY_DTOH_ASYNC.invokeExact(host, indexError.address(), INDEX_ERROR_BYTES, stream.handle());
            } catch (Throwable t) {
                throw Driver.rethrow("cuMemcpyDtoHAsync", t);
            }
            if (status != 0) throw Driver.error(status, "cuMemcpyDtoHAsync(index error record)" + ctx.on());
        }
        countSync();
        stream.synchronize();
        if (!read) return;
        checksPending = false;
        int flag = host.get(JAVA_INT, 0);
        if (flag == 0) return;
        int op = host.get(JAVA_INT, 4);
        long position = host.get(JAVA_LONG, 8), value = host.get(JAVA_LONG, 16), bound = host.get(JAVA_LONG, 24);
        host.fill((byte) 0);
        ctx.bind();
        try {                                         // clear it for the next check, in stream order
            int status = (int) Driver.MEMSET_D8_ASYNC.invokeExact(indexError.address(), (byte) 0, INDEX_ERROR_BYTES, stream.handle());
            if (status != 0) throw Driver.error(status, "cuMemsetD8Async(index error record)" + ctx.on());
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw Driver.rethrow("cuMemsetD8Async", t);
        }
        String name;
        synchronized (opNames) {
            name = op >= 1 && op <= opNames.size() ? opNames.get(op - 1) : "index op #" + op;
        }
        String what = dev.jomni.tensor.spi.Backend.indexOutOfRange(name, value, position, bound).getMessage();
        throw new IllegalArgumentException(what + "; checked on " + device + " when the op was queued, raised at this synchronisation");
    }

    /** Counts a host wait that is not the default stream's (another stream's, an event's). */
    void countSync() {
        hostSyncs.incrementAndGet();
        List<String> sites = syncSites;
        if (sites != null) sites.add(callSite());
    }

    /**
     * Starts (or, with false, stops) recording where host synchronisations come from; {@link #syncSites}
     * returns them. Costs a stack walk per synchronisation: for tests.
     */
    public void traceSyncs(boolean on) {
        syncSites = on ? java.util.Collections.synchronizedList(new ArrayList<>()) : null;
    }

    /** The call sites of the synchronisations since {@code traceSyncs(true)}: the first frame outside the tensor core. */
    public List<String> syncSites() {
        List<String> sites = syncSites;
        return sites == null ? List.of() : List.copyOf(sites);
    }

    private static String callSite() {
        return StackWalker.getInstance().walk(frames -> frames
                .filter(f -> !f.getClassName().startsWith("dev.jomni.cuda.") && !f.getClassName().startsWith("dev.jomni.tensor."))
                .findFirst().map(f -> f.getClassName() + "." + f.getMethodName() + ":" + f.getLineNumber()).orElse("?"));
    }

    /**
     * How many times the host has waited for this device (stream or event synchronisations, and
     * device-to-host copies, which wait) since it was first used: a forward pass should add none.
     */
    public long hostSyncs() {
        return hostSyncs.get();
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

    /** Waits until all work queued on this device's stream has run; raises a deferred index error. */
    public void synchronize() {
        await();
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

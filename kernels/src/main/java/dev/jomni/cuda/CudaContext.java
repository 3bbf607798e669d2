package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * The primary context of one GPU: where memory, streams, events and modules are made. Obtained from
 * {@link Cuda#context(int)}; lives as long as the process. Any thread may use it: each call makes it
 * current on the calling thread first (a thread-local check, one cuCtxSetCurrent when it changes).
 */
@SuppressWarnings("restricted")  // reinterprets the pinned allocation's address
public final class CudaContext {
    private static final ThreadLocal<CudaContext> BOUND = new ThreadLocal<>();

    private final int ordinal;
    private final MemorySegment handle;
    private final DeviceProperties properties;
    private final ConcurrentMap<String, CudaModule> kernelFiles = new ConcurrentHashMap<>();
    private volatile CachingAllocator allocator;

    private CudaContext(int ordinal, MemorySegment handle, DeviceProperties properties) {
        this.ordinal = ordinal;
        this.handle = handle;
        this.properties = properties;
    }

    static CudaContext retainPrimary(int ordinal) {
        String on = " on device " + ordinal;
        int device = Driver.intOut("cuDeviceGet(" + ordinal + ")", Driver.DEVICE_GET, ordinal);
        MemorySegment ctx = Driver.pointerOut("cuDevicePrimaryCtxRetain" + on, Driver.PRIMARY_CTX_RETAIN, device);
        String name;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256);
            Driver.call("cuDeviceGetName" + on, Driver.DEVICE_GET_NAME, buf, 256, device);
            name = buf.getString(0);
        }
        var props = new DeviceProperties(ordinal, name,
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
                Driver.longOut("cuDeviceTotalMem" + on, Driver.DEVICE_TOTAL_MEM, device),
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE),
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
                attribute(device, Driver.CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED) != 0);
        return new CudaContext(ordinal, ctx, props);
    }

    private static int attribute(int device, int attribute) {
        return Driver.intOut("cuDeviceGetAttribute(" + attribute + ") on device " + device,
                Driver.DEVICE_GET_ATTRIBUTE, attribute, device);
    }

    /** Makes this context current on the calling thread, if it is not already. */
    void bind() {
        if (BOUND.get() != this) {
            Driver.call("cuCtxSetCurrent(device " + ordinal + ")", Driver.CTX_SET_CURRENT, handle);
            BOUND.set(this);
        }
    }

    /** Forget which context this thread has current: a library (NCCL) may have switched it. */
    static void unbindThread() {
        BOUND.remove();
    }

    public int ordinal() {
        return ordinal;
    }

    public DeviceProperties properties() {
        return properties;
    }

    /** Free and total device memory now. */
    public MemoryInfo memoryInfo() {
        bind();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG), total = arena.allocate(JAVA_LONG);
            Driver.call("cuMemGetInfo" + on(), Driver.MEM_GET_INFO, free, total);
            return new MemoryInfo(free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0));
        }
    }

    /** Waits until all work queued on this device has finished; reports asynchronous kernel faults. */
    public void synchronize() {
        bind();
        Driver.call("cuCtxSynchronize" + on(), Driver.CTX_SYNCHRONIZE);
    }

    /** Device memory straight from cuMemAlloc, freed by close(). Prefer {@link #allocator()} in loops. */
    public DeviceBuffer allocate(long bytes) {
        checkBytes(bytes);
        bind();
        long address = Driver.longOut("cuMemAlloc(" + bytes + " bytes)" + on(), Driver.MEM_ALLOC, bytes);
        return new DeviceBuffer(this, address, bytes, b -> {
            bind();
            Driver.call("cuMemFree(" + bytes + " bytes)" + on(), Driver.MEM_FREE, b.rawAddress());
        });
    }

    /**
     * Managed (unified) memory, cuMemAllocManaged with CU_MEM_ATTACH_GLOBAL: one address valid on the host
     * and on every stream, whose pages the driver migrates on demand, so it can be evicted to host memory
     * under device memory pressure (bitsandbytes' paged optimizer state). Refused when more than the device
     * has free is asked for (oversubscribing managed memory can stall the device). Freed by close(), after the
     * device has finished the work queued so far (rare: optimizer state lives as long as the run).
     */
    public DeviceBuffer allocateManaged(long bytes) {
        checkBytes(bytes);
        long free = memoryInfo().freeBytes();
        if (bytes > free)
            throw new IllegalArgumentException("cuMemAllocManaged(" + bytes + " bytes)" + on() + ": more than the " + free + " bytes free on the device");
        bind();
        long address = Driver.longOut("cuMemAllocManaged(" + bytes + " bytes)" + on(), Driver.MEM_ALLOC_MANAGED, bytes, Driver.CU_MEM_ATTACH_GLOBAL);
        return new DeviceBuffer(this, address, bytes, b -> {
            synchronize();                             // queued kernels may still use it: free once they are done
            Driver.call("cuMemFree(" + bytes + " managed bytes)" + on(), Driver.MEM_FREE, b.rawAddress());
        });
    }

    /**
     * Stream-ordered device memory (cuMemAllocAsync from the device's default pool): usable by work
     * queued on {@code stream} after this call; close() frees it in stream order (cuMemFreeAsync).
     */
    public DeviceBuffer allocateAsync(long bytes, Stream stream) {
        checkBytes(bytes);
        checkOwn(stream);
        bind();
        long address = Driver.longOut("cuMemAllocAsync(" + bytes + " bytes)" + on(), Driver.MEM_ALLOC_ASYNC,
                bytes, stream.handle());
        return new DeviceBuffer(this, address, bytes, b -> {
            bind();
            Driver.call("cuMemFreeAsync(" + bytes + " bytes)" + on(), Driver.MEM_FREE_ASYNC, b.rawAddress(),
                    stream.handle());
        });
    }

    /** Page-locked host memory (cuMemHostAlloc), needed for copies that overlap with compute. */
    public PinnedBuffer allocatePinned(long bytes) {
        checkBytes(bytes);
        bind();
        MemorySegment p = Driver.pointerOut("cuMemHostAlloc(" + bytes + " bytes)" + on(), Driver.MEM_HOST_ALLOC,
                bytes, Driver.CU_MEMHOSTALLOC_PORTABLE);
        return new PinnedBuffer(this, p.reinterpret(bytes));
    }

    /** A new non-blocking stream (it does not synchronise with the legacy default stream). */
    public Stream createStream() {
        bind();
        MemorySegment s = Driver.pointerOut("cuStreamCreate" + on(), Driver.STREAM_CREATE, Driver.CU_STREAM_NON_BLOCKING);
        return new Stream(this, s);
    }

    /** A new event with timing enabled. */
    public Event createEvent() {
        bind();
        return new Event(this, Driver.pointerOut("cuEventCreate" + on(), Driver.EVENT_CREATE, Driver.CU_EVENT_DEFAULT));
    }

    /** Loads a module from a fatbin, cubin or NUL-terminated PTX image (cuModuleLoadData). */
    public CudaModule loadModule(byte[] image, String name) {
        bind();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment img = arena.allocate(image.length + 1L, 16);
            MemorySegment.copy(image, 0, img, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
            MemorySegment m = Driver.pointerOut("cuModuleLoadData(" + name + ", " + image.length + " bytes)" + on(),
                    Driver.MODULE_LOAD_DATA, img);
            return new CudaModule(this, m, name);
        }
    }

    /** The caching allocator of this device (one per context, made on first use). */
    public CachingAllocator allocator() {
        CachingAllocator a = allocator;
        if (a == null) {
            synchronized (this) {
                if (allocator == null) allocator = new CachingAllocator(this, CachingAllocator.driverMemory(this));
                a = allocator;
            }
        }
        return a;
    }

    /** A kernel of one of jomni's own kernel files (kernels/src/main/cuda/FILE.cu), loaded once per context. */
    Kernel kernel(String file, String function) {
        CudaModule m = kernelFiles.get(file);
        if (m == null) m = kernelFiles.computeIfAbsent(file, this::loadKernelFile);
        return m.kernel(function);
    }

    private CudaModule loadKernelFile(String file) {
        String resource = "/dev/jomni/cuda/kernels/" + file + ".fatbin";
        try (InputStream in = CudaContext.class.getResourceAsStream(resource)) {
            if (in == null)
                throw new CudaException("kernel image " + resource + " is not on the classpath: the kernels jar was built"
                        + " without nvcc, so the CUDA kernels are unavailable (rebuild where nvcc is on PATH)");
            return loadModule(in.readAllBytes(), file + ".fatbin");
        } catch (IOException e) {
            throw new CudaException("reading kernel image " + resource + ": " + e);
        }
    }

    void checkOwn(Stream stream) {
        if (stream.context() != this)
            throw new IllegalArgumentException("stream of device " + stream.context().ordinal() + " used on device " + ordinal);
    }

    MemorySegment handle() {
        return handle;
    }

    String on() {
        return " on device " + ordinal;
    }

    private static void checkBytes(long bytes) {
        if (bytes <= 0) throw new IllegalArgumentException("allocation of " + bytes + " bytes: must be positive");
    }

    @Override
    public String toString() {
        return "cuda:" + ordinal + " (" + properties.name() + ")";
    }
}

package dev.jomni.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * Code loaded into a context ({@link CudaContext#loadModule}): a fatbin, cubin or PTX image whose
 * {@code extern "C"} kernels are looked up by name. close() unloads it; its kernels are then invalid.
 */
public final class CudaModule implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private final String name;
    private final ConcurrentMap<String, Kernel> kernels = new ConcurrentHashMap<>();
    private boolean closed;

    CudaModule(CudaContext context, MemorySegment handle, String name) {
        this.context = context;
        this.handle = handle;
        this.name = name;
    }

    /** The kernel named {@code function} (its extern "C" name), looked up once. */
    public Kernel kernel(String function) {
        Kernel k = kernels.get(function);
        return k != null ? k : kernels.computeIfAbsent(function, this::lookup);
    }

    private Kernel lookup(String function) {
        if (closed) throw new IllegalStateException("module " + name + " used after close()");
        context.bind();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment f = Driver.pointerOut("cuModuleGetFunction(" + function + " in " + name + ")" + context.on(),
                    Driver.MODULE_GET_FUNCTION, handle, arena.allocateFrom(function));
            return new Kernel(context, f, function + " (" + name + ")");
        }
    }

    public String name() {
        return name;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        Driver.call("cuModuleUnload(" + name + ")" + context.on(), Driver.MODULE_UNLOAD, handle);
    }
}

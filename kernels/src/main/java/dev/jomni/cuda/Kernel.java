package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One kernel of a loaded module, launched with cuLaunchKernel. Arguments are given in the kernel's
 * parameter order as {@link DeviceBuffer} (a pointer), {@code Integer} (int), {@code Long} (long long,
 * size_t), {@code Float} or {@code Double}; they are packed into a per-thread native scratch area, so
 * a launch allocates nothing native.
 */
public final class Kernel {
    private static final int MAX_ARGS = 32;
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final CudaContext context;
    private final MemorySegment function;
    private final String name;

    Kernel(CudaContext context, MemorySegment function, String name) {
        this.context = context;
        this.function = function;
        this.name = name;
    }

    public String name() {
        return name;
    }

    /** Lets launches ask for up to {@code bytes} of dynamic shared memory (above the default 48 KiB). */
    public void setMaxDynamicSharedMemory(int bytes) {
        context.bind();
        Driver.call("cuFuncSetAttribute(" + name + ", MAX_DYNAMIC_SHARED_SIZE_BYTES=" + bytes + ")" + context.on(),
                Driver.FUNC_SET_ATTRIBUTE, function, Driver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
    }

    /** Queues the kernel on {@code stream}; errors name the kernel, the launch shape and the arguments. */
    public void launch(Stream stream, Dim3 grid, Dim3 block, int sharedBytes, Object... args) {
        if (args.length > MAX_ARGS) throw new IllegalArgumentException(name + ": " + args.length + " arguments, at most " + MAX_ARGS);
        context.checkOwn(stream);
        context.bind();
        Scratch s = SCRATCH.get();
        for (int i = 0; i < args.length; i++) {
            long at = 8L * i;
            switch (args[i]) {
                case DeviceBuffer b -> s.values.set(JAVA_LONG, at, b.address());
                case Integer v -> s.values.set(JAVA_INT, at, v);
                case Long v -> s.values.set(JAVA_LONG, at, v);
                case Float v -> s.values.set(JAVA_FLOAT, at, v);
                case Double v -> s.values.set(JAVA_DOUBLE, at, v);
                case null, default -> throw new IllegalArgumentException(name + ": argument " + i + " is "
                        + (args[i] == null ? "null" : args[i].getClass().getSimpleName())
                        + "; kernels take DeviceBuffer, Integer, Long, Float or Double");
            }
        }
        int status;
        try {
            status = (int) Driver.LAUNCH_KERNEL.invokeExact(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(),
                    block.z(), sharedBytes, stream.handle(), s.pointers, MemorySegment.NULL);
        } catch (Throwable t) {
            throw Driver.rethrow("cuLaunchKernel", t);
        }
        if (status != 0)
            throw Driver.error(status, "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ", shared "
                    + sharedBytes + " bytes, args " + Arrays.toString(args) + ")" + context.on());
    }

    /**
     * Queues the kernel with its parameters already packed ({@code params}: one pointer per kernel
     * parameter, struct-by-value arguments included), for {@link Launch}.
     */
    void launchPacked(Stream stream, Dim3 grid, Dim3 block, int sharedBytes, MemorySegment params) {
        context.bind();
        int status;
        try {
            status = (int) Driver.LAUNCH_KERNEL.invokeExact(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(),
                    block.z(), sharedBytes, stream.handle(), params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw Driver.rethrow("cuLaunchKernel", t);
        }
        if (status != 0)
            throw Driver.error(status, "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ")" + context.on());
    }

    /** Argument values, 8 bytes a slot, and the array of pointers to them that cuLaunchKernel reads. */
    private static final class Scratch {
        final MemorySegment values;
        final MemorySegment pointers;

        Scratch() {
            Arena arena = Arena.ofAuto();  // lives as long as its thread's Scratch
            values = arena.allocate(8L * MAX_ARGS, 16);
            pointers = arena.allocate(ADDRESS.byteSize() * MAX_ARGS, 16);
            for (int i = 0; i < MAX_ARGS; i++) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i));
        }
    }
}

package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Device;
import dev.jomni.tensor.spi.Storage;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * CPU memory: native (off-heap) memory from malloc, freed with free as soon as the last tensor using
 * it closes, so memory-scoped code never waits for the garbage collector; or a wrapped segment
 * (a memory-mapped file) that this storage does not own.
 */
final class CpuStorage extends Storage {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MALLOC = LINKER.downcallHandle(LINKER.defaultLookup().find("malloc").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle FREE = LINKER.downcallHandle(LINKER.defaultLookup().find("free").orElseThrow(),
            FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));

    /** The elements; valid until the storage is freed. */
    final MemorySegment segment;
    private final boolean owned;

    private CpuStorage(MemorySegment segment, boolean owned) {
        super(Device.cpu(), segment.byteSize(), owned);
        this.segment = segment;
        this.owned = owned;
    }

    static CpuStorage allocate(long bytes) {
        MemorySegment p;
        try {
            p = (MemorySegment) MALLOC.invokeExact(Math.max(8L, bytes));
        } catch (Throwable t) {
            throw new IllegalStateException("malloc(" + bytes + ")", t);
        }
        if (p.address() == 0) throw new OutOfMemoryError("CPU backend: malloc of " + bytes + " bytes failed");
        return new CpuStorage(p.reinterpret(bytes), true);
    }

    /** Storage over memory that someone else owns and keeps alive (not freed, not counted as live). */
    static CpuStorage wrap(MemorySegment memory) { return new CpuStorage(memory, false); }

    @Override
    protected void free() {
        if (!owned) return;
        try {
            FREE.invokeExact(segment);
        } catch (Throwable t) {
            throw new IllegalStateException("free", t);
        }
    }
}

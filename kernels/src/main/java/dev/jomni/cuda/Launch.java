package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Packs one launch's parameters, scalars and tensor.cuh's {@code Shape} / {@code Operand} structs
 * (passed by value), into per-thread native memory, then launches; a launch allocates nothing native.
 * Used as {@code Launch.begin().i32(..).operand(..)...launch(kernel, stream, grid, block)}.
 */
final class Launch {
    static final int MAX_RANK = 8;
    static final long SHAPE_BYTES = 72, OPERAND_BYTES = 80;   // must match tensor.cuh
    private static final int MAX_PARAMS = 24;
    private static final ThreadLocal<Launch> CURRENT = ThreadLocal.withInitial(Launch::new);

    private final MemorySegment values, params;
    private final long base;
    private long at;
    private int count;
    private boolean inStruct;

    private Launch() {
        Arena arena = Arena.ofAuto();  // lives as long as its thread's Launch
        values = arena.allocate(2048, 16);
        params = arena.allocate(8L * MAX_PARAMS, 16);
        base = values.address();
    }

    static Launch begin() {
        Launch l = CURRENT.get();
        l.at = 0;
        l.count = 0;
        l.inStruct = false;
        return l;
    }

    /**
     * From here on the values are the fields of one struct parameter (C layout: each field at its
     * natural alignment), so the driver handles one parameter, not one per value: it is the number of
     * parameters, more than their bytes, that a launch's cost grows with.
     */
    Launch struct() {
        at = (at + 7) & ~7L;
        params.setAtIndex(JAVA_LONG, count++, base + at);
        inStruct = true;
        return this;
    }

    private long slot(long bytes) {
        long align = inStruct ? Math.min(bytes, 8) : 8;
        long a = (at + align - 1) & -align;
        at = a + bytes;
        if (!inStruct) params.setAtIndex(JAVA_LONG, count++, base + a);
        return a;
    }

    Launch i32(int v) {
        values.set(JAVA_INT, slot(4), v);
        return this;
    }

    Launch i64(long v) {
        values.set(JAVA_LONG, slot(8), v);
        return this;
    }

    Launch f64(double v) {
        values.set(JAVA_DOUBLE, slot(8), v);
        return this;
    }

    /** A Shape: sizes[0..rank) (the rest 1). */
    Launch shape(long[] sizes, int rank) {
        long a = slot(SHAPE_BYTES);
        for (int d = 0; d < MAX_RANK; d++) values.set(JAVA_LONG, a + 8L * d, d < rank ? sizes[d] : 1);
        values.set(JAVA_INT, a + 64, rank);
        values.set(JAVA_INT, a + 68, 0);
        return this;
    }

    /** An Operand: device address of the first element, strides[0..rank) in elements (the rest 0), dtype code (DType.code). */
    Launch operand(long address, long[] strides, int rank, int dtype) {
        long a = slot(OPERAND_BYTES);
        values.set(JAVA_LONG, a, address);
        for (int d = 0; d < MAX_RANK; d++) values.set(JAVA_LONG, a + 8 + 8L * d, d < rank ? strides[d] : 0);
        values.set(JAVA_INT, a + 72, dtype);
        values.set(JAVA_INT, a + 76, 0);
        return this;
    }

    void launch(Kernel kernel, Stream stream, int grid, int block) {
        kernel.launchPacked(stream, Dim3.of(grid), Dim3.of(block), 0, params);
    }

    void launch(Kernel kernel, Stream stream, Dim3 grid, Dim3 block) {
        kernel.launchPacked(stream, grid, block, 0, params);
    }

    /** With {@code sharedBytes} of dynamic shared memory per block (above 48 KiB the kernel must have opted in). */
    void launch(Kernel kernel, Stream stream, int grid, int block, int sharedBytes) {
        kernel.launchPacked(stream, Dim3.of(grid), Dim3.of(block), sharedBytes, params);
    }

    /** As above, on a grid of several dimensions. */
    void launch(Kernel kernel, Stream stream, Dim3 grid, int block, int sharedBytes) {
        kernel.launchPacked(stream, grid, Dim3.of(block), sharedBytes, params);
    }
}

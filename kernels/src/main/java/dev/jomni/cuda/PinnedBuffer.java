package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory (cuMemHostAlloc), the host side of asynchronous copies. Filled and read
 * through typed copies; freed by close(), after the copies that use it have finished.
 */
public final class PinnedBuffer implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment segment;
    private boolean closed;

    PinnedBuffer(CudaContext context, MemorySegment segment) {
        this.context = context;
        this.segment = segment;
    }

    public long bytes() {
        return segment.byteSize();
    }

    public void put(float[] src) { checkFits((long) src.length * 4); MemorySegment.copy(src, 0, segment(), JAVA_FLOAT, 0, src.length); }
    public void put(short[] src) { checkFits((long) src.length * 2); MemorySegment.copy(src, 0, segment(), JAVA_SHORT, 0, src.length); }
    public void get(float[] dst) { checkFits((long) dst.length * 4); MemorySegment.copy(segment(), JAVA_FLOAT, 0, dst, 0, dst.length); }
    public void get(short[] dst) { checkFits((long) dst.length * 2); MemorySegment.copy(segment(), JAVA_SHORT, 0, dst, 0, dst.length); }

    MemorySegment segment() {
        if (closed) throw new IllegalStateException("pinned buffer of " + bytes() + " bytes used after close()");
        return segment;
    }

    void checkFits(long n) {
        if (n > bytes()) throw new IllegalArgumentException(n + " bytes do not fit a " + bytes() + "-byte pinned buffer");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        Driver.call("cuMemFreeHost(" + bytes() + " bytes)", Driver.MEM_FREE_HOST, segment);
    }
}

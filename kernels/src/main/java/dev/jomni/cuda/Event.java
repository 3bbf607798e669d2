package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A CUDA event: a point in a stream's work, for ordering streams and for timing on the device. */
public final class Event implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private boolean closed;

    Event(CudaContext context, MemorySegment handle) {
        this.context = context;
        this.handle = handle;
    }

    /** Marks the current end of {@code stream}'s queued work. */
    public void record(Stream stream) {
        context.bind();
        int status;
        try {
            status = (int) Driver.EVENT_RECORD.invokeExact(handle(), stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuEventRecord", t);
        }
        if (status != 0) throw Driver.error(status, "cuEventRecord" + context.on());
    }

    /** Waits until the work before the last record() has run. */
    public void synchronize() {
        context.bind();
        int status;
        try {
            status = (int) Driver.EVENT_SYNCHRONIZE.invokeExact(handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuEventSynchronize", t);
        }
        if (status != 0) throw Driver.error(status, "cuEventSynchronize" + context.on());
    }

    /** Device time between two recorded, completed events, in milliseconds (resolution about 0.5 µs). */
    public static float elapsedMillis(Event start, Event end) {
        start.context.bind();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ms = arena.allocate(JAVA_FLOAT);
            Driver.call("cuEventElapsedTime" + start.context.on(), Driver.EVENT_ELAPSED_TIME, ms, start.handle(), end.handle());
            return ms.get(JAVA_FLOAT, 0);
        }
    }

    MemorySegment handle() {
        if (closed) throw new IllegalStateException("event" + context.on() + " used after close()");
        return handle;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        Driver.call("cuEventDestroy" + context.on(), Driver.EVENT_DESTROY, handle);
    }
}

package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A CUDA stream: work queued on it runs in order. Also the unit of graph capture: between
 * {@link #beginCapture()} and {@link #endCapture()} work queued on this stream is recorded, not run.
 */
public final class Stream implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private boolean closed;

    Stream(CudaContext context, MemorySegment handle) {
        this.context = context;
        this.handle = handle;
    }

    public CudaContext context() {
        return context;
    }

    /** Waits until everything queued so far has run; reports asynchronous faults of that work. */
    public void synchronize() {
        context.bind();
        int status;
        try {
            status = (int) Driver.STREAM_SYNCHRONIZE.invokeExact(handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuStreamSynchronize", t);
        }
        if (status != 0) throw Driver.error(status, "cuStreamSynchronize" + context.on());
    }

    /** Work queued here after this call waits until {@code event} (recorded on any stream) has happened. */
    public void waitFor(Event event) {
        context.bind();
        Driver.call("cuStreamWaitEvent" + context.on(), Driver.STREAM_WAIT_EVENT, handle(), event.handle(), 0);
    }

    /** Starts recording (thread-local capture mode: other threads' unsafe calls are not affected). */
    public void beginCapture() {
        context.bind();
        Driver.call("cuStreamBeginCapture" + context.on(), Driver.STREAM_BEGIN_CAPTURE, handle(),
                Driver.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    }

    /** Ends recording and instantiates what was recorded as a graph that can be launched many times. */
    public Graph endCapture() {
        context.bind();
        MemorySegment graph;
        try (Arena arena = Arena.ofConfined()) {  // cuStreamEndCapture(stream, &graph): the out-pointer comes last
            MemorySegment out = arena.allocate(ADDRESS);
            Driver.call("cuStreamEndCapture" + context.on(), Driver.STREAM_END_CAPTURE, handle(), out);
            graph = out.get(ADDRESS, 0);
        }
        MemorySegment exec;
        try {
            exec = Driver.pointerOut("cuGraphInstantiate" + context.on(), Driver.GRAPH_INSTANTIATE, graph, 0L);
        } catch (CudaException e) {
            Driver.call("cuGraphDestroy", Driver.GRAPH_DESTROY, graph);
            throw e;
        }
        return new Graph(context, graph, exec);
    }

    MemorySegment handle() {
        if (closed) throw new IllegalStateException("stream" + context.on() + " used after close()");
        return handle;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        Driver.call("cuStreamDestroy" + context.on(), Driver.STREAM_DESTROY, handle);
    }
}

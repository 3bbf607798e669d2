package dev.jomni.cuda;

import java.lang.foreign.MemorySegment;

/**
 * An instantiated CUDA graph, made by {@link Stream#endCapture()}: the recorded work, replayed by
 * one launch with the same kernels, arguments and buffers each time.
 */
public final class Graph implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment graph;
    private final MemorySegment exec;
    private boolean closed;

    Graph(CudaContext context, MemorySegment graph, MemorySegment exec) {
        this.context = context;
        this.graph = graph;
        this.exec = exec;
    }

    /** Queues one replay of the whole graph on {@code stream}. */
    public void launch(Stream stream) {
        if (closed) throw new IllegalStateException("graph" + context.on() + " launched after close()");
        context.bind();
        int status;
        try {
            status = (int) Driver.GRAPH_LAUNCH.invokeExact(exec, stream.handle());
        } catch (Throwable t) {
            throw Driver.rethrow("cuGraphLaunch", t);
        }
        if (status != 0) throw Driver.error(status, "cuGraphLaunch" + context.on());
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        Driver.call("cuGraphExecDestroy" + context.on(), Driver.GRAPH_EXEC_DESTROY, exec);
        Driver.call("cuGraphDestroy" + context.on(), Driver.GRAPH_DESTROY, graph);
    }
}

package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One rank of an NCCL communicator, bound to one GPU. Collectives are queued on a stream of that GPU
 * and count elements of a {@link DataType}. Made per process ({@link #initRank}, one process per GPU)
 * or for several GPUs of this process at once ({@link #initAll}).
 */
public final class NcclComm implements AutoCloseable {
    private final CudaContext context;
    private final MemorySegment handle;
    private final int rank, size;
    private boolean closed;

    private NcclComm(CudaContext context, MemorySegment handle, int rank, int size) {
        this.context = context;
        this.handle = handle;
        this.rank = rank;
        this.size = size;
    }

    /** This process's rank {@code rank} of {@code size}, on {@code context}'s GPU; blocks until all ranks have joined. */
    public static NcclComm initRank(CudaContext context, int size, NcclUniqueId id, int rank) {
        if (rank < 0 || rank >= size) throw new IllegalArgumentException("NCCL rank " + rank + " of " + size);
        Libraries.nccl();
        context.bind();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            MemorySegment idValue = arena.allocate(NcclLib.UNIQUE_ID);
            MemorySegment.copy(id.raw(), 0, idValue, JAVA_BYTE, 0, NcclLib.UNIQUE_ID_BYTES);
            NcclLib.call("ncclCommInitRank(rank " + rank + " of " + size + ")" + context.on(), NcclLib.COMM_INIT_RANK, out, size, idValue, rank);
            return new NcclComm(context, out.get(ADDRESS, 0), rank, size);
        }
    }

    /** One communicator over the given GPUs of this process; rank i is {@code contexts.get(i)}. */
    public static List<NcclComm> initAll(List<CudaContext> contexts) {
        Libraries.nccl();
        int n = contexts.size();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment comms = arena.allocate(ADDRESS, n);
            MemorySegment devices = arena.allocate(JAVA_INT, n);
            for (int i = 0; i < n; i++) devices.setAtIndex(JAVA_INT, i, contexts.get(i).ordinal());
            contexts.getFirst().bind();
            NcclLib.call("ncclCommInitAll(" + n + " GPUs)", NcclLib.COMM_INIT_ALL, comms, n, devices);
            List<NcclComm> result = new ArrayList<>(n);
            for (int i = 0; i < n; i++) result.add(new NcclComm(contexts.get(i), comms.getAtIndex(ADDRESS, i), i, n));
            return result;
        }
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    public CudaContext context() {
        return context;
    }

    /** recv[i] = op over ranks of send[i], i < count, on every rank (send and recv may be one buffer). */
    public void allReduce(DeviceBuffer send, DeviceBuffer recv, long count, DataType type, ReduceOp op, Stream stream) {
        fits(send, count, type, "allReduce send");
        fits(recv, count, type, "allReduce recv");
        collective("ncclAllReduce(" + count + " " + type + ", " + op + ")", () -> (int) NcclLib.ALL_REDUCE.invokeExact(
                ptr(send), ptr(recv), count, type.ncclDataType, op.code, handle(), stream.handle()), stream);
    }

    /** recv = root's send (count elements) on every rank; {@code send} is read on the root only. */
    public void broadcast(DeviceBuffer send, DeviceBuffer recv, long count, DataType type, int root, Stream stream) {
        fits(send, count, type, "broadcast send");
        fits(recv, count, type, "broadcast recv");
        collective("ncclBroadcast(" + count + " " + type + ", root " + root + ")", () -> (int) NcclLib.BROADCAST.invokeExact(
                ptr(send), ptr(recv), count, type.ncclDataType, root, handle(), stream.handle()), stream);
    }

    /** recv [size · sendCount] = every rank's send, in rank order. */
    public void allGather(DeviceBuffer send, DeviceBuffer recv, long sendCount, DataType type, Stream stream) {
        fits(send, sendCount, type, "allGather send");
        fits(recv, sendCount * size, type, "allGather recv");
        collective("ncclAllGather(" + sendCount + " " + type + " per rank)", () -> (int) NcclLib.ALL_GATHER.invokeExact(
                ptr(send), ptr(recv), sendCount, type.ncclDataType, handle(), stream.handle()), stream);
    }

    /** recv [recvCount] = this rank's block of op over ranks of send [size · recvCount]. */
    public void reduceScatter(DeviceBuffer send, DeviceBuffer recv, long recvCount, DataType type, ReduceOp op, Stream stream) {
        fits(send, recvCount * size, type, "reduceScatter send");
        fits(recv, recvCount, type, "reduceScatter recv");
        collective("ncclReduceScatter(" + recvCount + " " + type + " per rank, " + op + ")", () -> (int) NcclLib.REDUCE_SCATTER.invokeExact(
                ptr(send), ptr(recv), recvCount, type.ncclDataType, op.code, handle(), stream.handle()), stream);
    }

    private interface Downcall {
        int call() throws Throwable;
    }

    private void collective(String what, Downcall call, Stream stream) {
        context.checkOwn(stream);
        context.bind();
        int status;
        try {
            status = call.call();
        } catch (Throwable t) {
            throw Driver.rethrow(what, t);
        } finally {
            CudaContext.unbindThread();
        }
        NcclLib.check(status, what + " on rank " + rank + " of " + size + context.on(), handle);
    }

    private static MemorySegment ptr(DeviceBuffer b) {
        return MemorySegment.ofAddress(b.address());
    }

    private static void fits(DeviceBuffer b, long count, DataType type, String what) {
        DeviceBuffer.elementsFit(b, count, type.bytes(), what);
    }

    private MemorySegment handle() {
        if (closed) throw new IllegalStateException("NCCL communicator (rank " + rank + ") used after close()");
        return handle;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        context.bind();
        NcclLib.call("ncclCommDestroy(rank " + rank + ")" + context.on(), NcclLib.COMM_DESTROY, handle);
    }
}

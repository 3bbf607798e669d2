package dev.jomni.tensor.spi;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The primitives a device implements; everything else in the op set is composed from them (with
 * autograd) by the front end. Output tensors are allocated by the caller. Unless a method says
 * otherwise, inputs may be any strided view (stride 0 for broadcast) of any dtype, outputs are
 * freshly allocated contiguous tensors, and results must not depend on the number of threads.
 * Implementations: {@code CpuBackend} (the reference) and the CUDA backend in {@code kernels},
 * both found through {@link java.util.ServiceLoader} by {@link #of}.
 */
public interface Backend {
    /** The backend of {@code device}'s kind (loaded on first use; throws saying what is missing). */
    static Backend of(Device device) { return Backends.of(device.kind()); }

    /** The backend of the device {@code t} lives on. */
    static Backend of(Tensor t) { return of(t.device()); }

    Device.Kind kind();

    /**
     * This backend's kernels for a coarse op of {@code dev.jomni.tensor.ops}, by the op's nested
     * {@code Kernels} interface; throws naming the op when the backend has none.
     */
    <K> K kernels(Class<K> op);

    /** Throws, saying what is missing, when this backend cannot run on this machine. */
    default void checkAvailable() {}

    /** The stream this backend queues {@code device}'s ops on, in order (one per device, never closed). */
    Stream defaultStream(Device device);

    /**
     * A new stream of {@code device}, for work that may overlap the default stream's (a copy beside
     * compute); ordered with other streams through {@link Stream#record} / {@link Stream#waitFor}.
     * The caller closes it.
     */
    Stream newStream(Device device);

    /** Blocks until all work queued on {@code device}'s default stream has run; reports deferred errors. */
    default void synchronize(Device device) { defaultStream(device).synchronize(); }

    /** Uninitialised memory for {@code numel} elements. */
    Storage allocate(Device device, DType dtype, long numel);

    /**
     * Uninitialised memory that the system may move out of the device under memory pressure and back on
     * use (CUDA managed memory), for state touched once a step (a paged optimizer's). The default: the
     * backend's ordinary memory, which is already host memory on the CPU.
     */
    default Storage allocatePaged(Device device, DType dtype, long numel) { return allocate(device, dtype, numel); }

    /** A copy of {@code host} (contiguous elements of dtype, native byte order) on the device. */
    Storage fromHost(Device device, DType dtype, MemorySegment host);

    /**
     * Storage over existing host memory, without copying (a memory-mapped checkpoint); the caller keeps
     * the memory alive and unchanged for the storage's life, and it is not counted as allocated. Only a
     * backend whose device addresses host memory directly can; the others throw.
     */
    default Storage wrap(Device device, MemorySegment memory) {
        throw new UnsupportedOperationException("wrap: the " + kind() + " backend cannot use host memory in place; copy it with fromHost");
    }

    /** Copies the contiguous tensor {@code src} into host memory. */
    void toHost(Tensor src, MemorySegment host);

    void fill(Tensor dst, double value);

    /** dst ← src, converting dtype; same shape; dst may be a view, not overlapping src. */
    void copy(Tensor src, Tensor dst);

    /** dst += src element-wise, same shape; dst may be a view whose elements overlap (accumulated in order). */
    void addInto(Tensor dst, Tensor src);

    void unary(UnaryOp op, Tensor x, Tensor out, double a, double b);

    /** x, y have out's shape (broadcast through stride 0). */
    void binary(BinaryOp op, Tensor x, Tensor y, Tensor out);

    /** out = cond ? x : y; all of out's shape. */
    void where(Tensor cond, Tensor x, Tensor y, Tensor out);

    /** x: [rows, n] → out: [rows]. Floating sums accumulate in at least f32. */
    void reduce(ReduceOp op, Tensor x, Tensor out);

    /** a: [batch, m, k] @ b: [batch, k, n] → out: [batch, m, n]; floating types accumulate in at least f32. */
    void matmul(Tensor a, Tensor b, Tensor out);

    /**
     * Checks that every element of the integer tensor {@code index} (I64 or I32, any strides, on this
     * backend's device) lies in [0, bound), on behalf of {@code op}; index ops call it before their
     * kernels, so the kernels may assume valid indices. A violation is reported by
     * {@link #indexOutOfRange}, naming the op, the value and its row-major position. The CPU backend
     * checks at once and throws. A device backend may check asynchronously, without a host
     * synchronisation, and raise the error (naming the op) at the next synchronisation instead; the
     * results of the op and of later work are undefined until then.
     */
    void checkIndex(String op, Tensor index, long bound);

    /** The error for an out-of-range index, the same on every backend. */
    static IllegalArgumentException indexOutOfRange(String op, long value, long position, long bound) {
        return new IllegalArgumentException(op + ": index " + value + " is out of range for an axis of size " + bound
                + " (at position " + position + " of the index)");
    }

    /** out = x.index_select(dim, index); index I64 [len]. */
    void indexSelect(Tensor x, int dim, Tensor index, Tensor out);

    /** dst.index_add_(dim, index, src), in place, in index order. */
    void indexAdd(Tensor dst, int dim, Tensor index, Tensor src);

    /** out = x.gather(dim, index); index I64 shaped like out. */
    void gather(Tensor x, int dim, Tensor index, Tensor out);

    /** dst.scatter_add_(dim, index, src), in place, in index order. */
    void scatterAdd(Tensor dst, int dim, Tensor index, Tensor src);

    /** Running sum along the last axis (from the end when reverse). */
    void cumsum(Tensor x, Tensor out, boolean reverse);

    /** Stable sort of each row along the last axis; writes the I64 permutation into indices. */
    void argsort(Tensor x, boolean descending, Tensor indices);
}

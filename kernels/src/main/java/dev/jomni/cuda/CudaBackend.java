package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.CrossEntropy;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.OpKernels;
import dev.jomni.tensor.spi.ReduceOp;
import dev.jomni.tensor.spi.Storage;
import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.spi.UnaryOp;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The tensor core's primitives on NVIDIA GPUs ({@code Device.cuda(i)}), found through
 * {@link java.util.ServiceLoader}. Memory comes from each device's {@link CachingAllocator}; all work
 * of a device is queued in order on one stream of the backend, and {@link #toHost} waits for it.
 * Element-wise ops, reductions, indexing, running sums and sorting are the kernels of
 * elementwise.cu, reduce.cu and index.cu, which take any strides (stride 0 broadcasts) and compute in
 * f32 (f64 where an operand is f64, i64 or i32) with the CPU reference's rounding; f32/bf16/f16
 * matrix products go to cuBLASLt (f32 accumulation), others to a double-precision kernel. Nothing
 * uses atomics: results do not depend on scheduling.
 */
public final class CudaBackend implements Backend {
    static final int THREADS = 256;
    /** reduce_thread (one thread per row) below this row length, reduce_block (a block per row) from it. */
    static final int SHORT_ROW = 64;

    // elementwise.cu's kinds: codes.cuh's EW_ constants (CodesTest checks them)
    static final int FILL = 0, COPY = 1, RAWCOPY = 2, UNARY = 3, BINARY = 4, WHERE = 5;

    /** The coarse ops' CUDA launchers: one line per op. */
    private final OpKernels kernels = new OpKernels("cuda");
    /** This backend's devices by index, each made on first use. */
    private final ConcurrentHashMap<Integer, CudaDevice> devices = new ConcurrentHashMap<>();

    public CudaBackend() {
        kernels.register(CrossEntropy.Kernels.class, new CudaCrossEntropy(this));
        kernels.register(dev.jomni.tensor.ops.RmsNorm.Kernels.class, new CudaRmsNorm(this));
        kernels.register(dev.jomni.tensor.ops.Softmax.Kernels.class, new CudaSoftmax(this));
        kernels.register(dev.jomni.tensor.ops.Rope.Kernels.class, new CudaRope(this));
        kernels.register(dev.jomni.tensor.ops.Swiglu.Kernels.class, new CudaSwiglu(this));
        kernels.register(dev.jomni.tensor.ops.LinearCrossEntropy.Kernels.class, new CudaLinearCrossEntropy(this));
        kernels.register(dev.jomni.tensor.ops.MoeExperts.Kernels.class, new CudaMoeExperts(this));
        kernels.register(dev.jomni.tensor.ops.ScaledDotProductAttention.Kernels.class, new CudaScaledDotProductAttention(this));
        kernels.register(dev.jomni.tensor.ops.Nf4Matmul.Kernels.class, new CudaNf4Matmul(this));
        kernels.register(dev.jomni.tensor.ops.Nf4Weight.Kernels.class, new CudaNf4Quantize(this));
        kernels.register(dev.jomni.tensor.ops.AdamWStep.Kernels.class, new CudaAdamWStep(this));
        kernels.register(dev.jomni.tensor.ops.IndexCopy.Kernels.class, new CudaIndexCopy(this));
    }

    @Override public Device.Kind kind() { return Device.Kind.CUDA; }

    @Override public <K> K kernels(Class<K> op) { return kernels.get(op); }

    @Override
    public void checkAvailable() {
        String why = Cuda.unavailableReason();
        if (why != null)
            throw new IllegalStateException("CUDA backend unavailable: " + why + ". Use Device.cpu() on this machine.");
        if (CudaBackend.class.getResource("/dev/jomni/cuda/kernels/elementwise.fatbin") == null)
            throw new IllegalStateException("CUDA backend unavailable: the kernels jar was built without nvcc"
                    + " (no dev/jomni/cuda/kernels/*.fatbin on the class path); rebuild where nvcc is on PATH");
    }

    // ---------------------------------------------------------------- streams

    @Override
    public dev.jomni.tensor.spi.Stream defaultStream(Device device) {
        return on(device).defaultStream;
    }

    @Override
    public dev.jomni.tensor.spi.Stream newStream(Device device) {
        CudaDevice d = on(device);
        return new CudaStream(d, d.ctx.createStream(), true);
    }

    // ---------------------------------------------------------------- public helpers

    // Shorthands for of(device).X(), kept for the benchmarks and tests that call them.

    /** The caching allocator's counters for {@code device} (allocated, reserved, peaks, driver allocations). */
    public static AllocatorStats memoryStats(Device device) {
        return of(device).memoryStats();
    }

    /** Restarts the allocator's peaks from the current values (per training step). */
    public static void resetPeakMemory(Device device) {
        of(device).resetPeakMemory();
    }

    /** The stream the backend queues {@code device}'s work on, in order (for events and timing). */
    public static Stream stream(Device device) {
        return of(device).stream();
    }

    /** How many times the host has waited for {@code device} (see {@link CudaDevice#hostSyncs}). */
    public static long hostSyncs(Device device) {
        return of(device).hostSyncs();
    }

    // ---------------------------------------------------------------- memory

    @Override
    public Storage allocate(Device device, DType dtype, long numel) {
        CudaDevice s = on(device);
        long bytes = numel * dtype.byteSize;
        return new CudaStorage(device, s.ctx.allocator().allocate(Math.max(1, bytes), s.stream), bytes);
    }

    /** Managed memory ({@link CudaContext#allocateManaged}): the driver may evict it to the host and fetches it back on use. */
    @Override
    public Storage allocatePaged(Device device, DType dtype, long numel) {
        CudaDevice s = on(device);
        long bytes = numel * dtype.byteSize;
        return new CudaStorage(device, s.ctx.allocateManaged(Math.max(1, bytes)), bytes);
    }

    @Override
    public Storage fromHost(Device device, DType dtype, MemorySegment host) {
        CudaStorage st = (CudaStorage) allocate(device, dtype, host.byteSize() / dtype.byteSize);
        long n = host.byteSize();
        if (n == 0) return st;
        CudaDevice s = on(device);
        s.ctx.bind();
        // From pageable memory the call returns once the bytes are staged: host may be freed after it.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = host.isNative() ? host : arena.allocate(n, 16).copyFrom(host);
            int status = (int) Driver.MEMCPY_HTOD_ASYNC.invokeExact(st.address(), src, n, s.stream.handle());
            if (status != 0) throw Driver.error(status, "cuMemcpyHtoDAsync(" + n + " bytes) for a " + dtype.lower() + " tensor" + s.ctx.on());
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw Driver.rethrow("cuMemcpyHtoDAsync", t);
        }
        return st;
    }

    @Override
    public void toHost(Tensor src, MemorySegment host) {
        if (!src.isContiguous()) {
            Tensor tmp = Tensor.empty(src.device(), src.dtype(), src.shape());
            copy(src, tmp);
            toHost(tmp, host);
            tmp.close();
            return;
        }
        long n = src.numel() * src.dtype().byteSize;
        CudaDevice s = on(src.device());
        if (n > 0) {
            s.ctx.bind();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment dst = host.isNative() ? host : arena.allocate(n, 16);
                int status = (int) Driver.MEMCPY_DTOH_ASYNC.invokeExact(dst, address(src), n, s.stream.handle());
                if (status != 0) throw Driver.error(status, "cuMemcpyDtoHAsync(" + n + " bytes) of " + describe(src) + s.ctx.on());
                s.await();
                if (dst != host) MemorySegment.copy(dst, 0, host, 0, n);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw Driver.rethrow("cuMemcpyDtoHAsync", t);
            }
        } else s.await();
    }

    // ---------------------------------------------------------------- element-wise

    @Override
    public void fill(Tensor dst, double value) {
        elementwise(FILL, 0, dst, null, null, null, value, 0);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        checkShapes("copy", src, dst);
        if (dst.numel() == 0) return;
        if (src.dtype() == dst.dtype() && src.isContiguous() && dst.isContiguous()) {
            CudaDevice s = on(dst.device());
            long n = dst.numel() * dst.dtype().byteSize;
            s.ctx.bind();
            int status;
            try {
                status = (int) Driver.MEMCPY_DTOD_ASYNC.invokeExact(address(dst), address(src), n, s.stream.handle());
            } catch (Throwable t) {
                throw Driver.rethrow("cuMemcpyDtoDAsync", t);
            }
            if (status != 0) throw Driver.error(status, "cuMemcpyDtoDAsync(" + n + " bytes) " + describe(src) + " -> " + describe(dst) + s.ctx.on());
            return;
        }
        elementwise(src.dtype() == dst.dtype() ? RAWCOPY : COPY, 0, dst, src, null, null, 0, 0);
    }

    @Override
    public void addInto(Tensor dst, Tensor src) {
        checkShapes("addInto", src, dst);
        if (!overlaps(dst.shape(), TensorAccess.strides(dst))) elementwise(BINARY, BinaryOp.ADD.code, dst, dst, src, null, 0, 0);
        else addIntoOrdered(dst, src);
    }

    /**
     * dst += src where dst's elements overlap (sliding windows): in parallel over the axes whose slices
     * are disjoint, in row-major order over the others, so shared elements add up in the CPU's order.
     */
    private void addIntoOrdered(Tensor dst, Tensor src) {
        long n = dst.numel();
        if (n == 0) return;
        int[] shape = dst.shape();
        int rank = shape.length;
        checkRank("addInto", rank);
        boolean[] parallel = disjointAxes(shape, TensorAccess.strides(dst));
        long[] ds = TensorAccess.strides(dst), ss = TensorAccess.strides(src);
        long[] size = new long[rank], dst2 = new long[rank], src2 = new long[rank];
        int at = 0, count = 0;
        long outer = 1;
        for (int pass = 0; pass < 2; pass++)              // the parallel axes first, then the rest, each in order
            for (int d = 0; d < rank; d++)
                if (parallel[d] == (pass == 0)) {
                    size[at] = shape[d];
                    dst2[at] = ds[d];
                    src2[at] = ss[d];
                    at++;
                    if (pass == 0) {
                        count++;
                        outer *= shape[d];
                    }
                }
        CudaDevice s = on(dst.device());
        Launch.begin().struct().shape(size, rank).i32(count).i64(outer).i64(n / outer)    // AddIntoArgs
                .operand(address(dst), dst2, rank, dst.dtype().code)
                .operand(address(src), src2, rank, src.dtype().code)
                .launch(s.addIntoOrdered, s.stream, Dim3.blocks(outer, THREADS), THREADS);
    }

    /**
     * The axes along which a view's slices never share an element, whatever the other coordinates: with
     * the axes sorted by stride, those above the last one whose stride is inside the extent of the
     * smaller ones.
     */
    static boolean[] disjointAxes(int[] shape, long[] strides) {
        Integer[] order = new Integer[shape.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (p, q) -> Long.compare(Math.abs(strides[p]), Math.abs(strides[q])));
        long extent = 1;
        int lastOverlap = -1;
        for (int i = 0; i < order.length; i++) {
            int d = order[i];
            if (shape[d] <= 1) continue;
            long st = Math.abs(strides[d]);
            if (st < extent) lastOverlap = i;
            extent += st * (shape[d] - 1);
        }
        boolean[] out = new boolean[shape.length];
        for (int i = lastOverlap + 1; i < order.length; i++) if (shape[order[i]] > 1) out[order[i]] = true;
        return out;
    }

    @Override
    public void unary(UnaryOp op, Tensor x, Tensor out, double a, double b) {
        checkShapes("unary " + op, x, out);
        elementwise(UNARY, op.code, out, x, null, null, a, b);
    }

    @Override
    public void binary(BinaryOp op, Tensor x, Tensor y, Tensor out) {
        checkShapes("binary " + op, x, out);
        checkShapes("binary " + op, y, out);
        if (op == BinaryOp.ADD && out.dtype() == DType.BF16 && x.dtype() == DType.BF16 && y.dtype() == DType.BF16
                && out.numel() > 0 && out.isContiguous() && x.isContiguous() && y.isContiguous()) {
            long n = out.numel();                          // add.cu's vectorised kernel (the 256M-element benchmark)
            AddKernel.bf16(on(out.device()).stream, slice(out, n), slice(x, n), slice(y, n), n);
            return;
        }
        elementwise(BINARY, op.code, out, x, y, null, 0, 0);
    }

    @Override
    public void where(Tensor cond, Tensor x, Tensor y, Tensor out) {
        checkShapes("where", cond, out);
        checkShapes("where", x, out);
        checkShapes("where", y, out);
        elementwise(WHERE, 0, out, x, y, cond, 0, 0);
    }

    /** One elementwise.cu launch over out's shape; x, y, c may be null (unused). */
    private void elementwise(int kind, int op, Tensor out, Tensor x, Tensor y, Tensor c, double a, double b) {
        long n = out.numel();
        if (n == 0) return;
        CudaDevice s = on(out.device());
        long outAddress = address(out);
        // all contiguous (the common case): one axis, no shape merging
        Dims d = contiguous(out) && contiguous(x) && contiguous(y) && contiguous(c) ? Dims.flat(n) : merged(out, x, y, c);
        long xAddress = x == null ? outAddress : address(x), yAddress = y == null ? outAddress : address(y),
                cAddress = c == null ? outAddress : address(c);
        int od = out.dtype().code, xd = (x == null ? out : x).dtype().code, yd = (y == null ? out : y).dtype().code,
                cd = (c == null ? out : c).dtype().code;
        boolean wide = kind != RAWCOPY && (wide(out) || wide(x) || wide(y) || wide(c));
        int grid = (int) Math.min((n + THREADS - 1) / THREADS, s.maxBlocks), block = THREADS;
        if (d.rank == 1 && d.strides[0][0] == 1) {         // one contiguous axis: the small-parameter kernel
            Launch.begin().struct().i32(kind).i32(op).f64(a).f64(b).i64(n)      // elementwise.cu's FlatArgs
                    .i64(outAddress).i64(1).i32(od).i64(xAddress).i64(d.strides[1][0]).i32(xd)
                    .i64(yAddress).i64(d.strides[2][0]).i32(yd).i64(cAddress).i64(d.strides[3][0]).i32(cd)
                    .launch(wide ? s.ewFlatF64 : s.ewFlatF32, s.stream, grid, block);
            return;
        }
        Launch.begin().struct().i32(kind).i32(op).f64(a).f64(b).i64(n).shape(d.size, d.rank)   // EwArgs
                .operand(outAddress, d.strides[0], d.rank, od)
                .operand(xAddress, d.strides[1], d.rank, xd)
                .operand(yAddress, d.strides[2], d.rank, yd)
                .operand(cAddress, d.strides[3], d.rank, cd)
                .launch(wide ? s.ewF64 : s.ewF32, s.stream, grid, block);
    }

    // ---------------------------------------------------------------- reductions and products

    @Override
    public void reduce(ReduceOp op, Tensor x, Tensor out) {
        int rows = x.shape()[0], n = x.shape()[1];
        if (rows == 0) return;
        if (n == 0) {
            if (op != ReduceOp.SUM) throw new IllegalArgumentException("reduce " + op + " of empty rows " + describe(x));
            fill(out, 0);
            return;
        }
        CudaDevice s = on(x.device());
        long[] xs = TensorAccess.strides(x);
        boolean shortRows = n < SHORT_ROW;
        Launch.begin().struct().i32(op.code).i64(rows).i64(n)                       // reduce.cu's ReduceArgs
                .operand(address(x), xs, 2, x.dtype().code)
                .operand(address(out), TensorAccess.strides(out), 1, out.dtype().code)
                .launch(shortRows ? s.reduceThread : s.reduceBlock, s.stream, shortRows ? Dim3.blocks(rows, THREADS) : rows, THREADS);
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor out) {
        int batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
        if (out.numel() == 0) return;
        if (k == 0) {
            fill(out, 0);
            return;
        }
        DType t = out.dtype();
        DataType lt = t == DType.F32 ? DataType.F32 : t == DType.BF16 ? DataType.BF16 : t == DType.F16 ? DataType.F16 : null;
        CudaDevice s = on(out.device());
        if (lt == null || a.dtype() != t || b.dtype() != t) {
            Launch.begin().struct().i64(batch).i64(m).i64(n).i64(k)                      // index.cu's MatmulArgs
                    .operand(address(a), TensorAccess.strides(a), 3, a.dtype().code)
                    .operand(address(b), TensorAccess.strides(b), 3, b.dtype().code)
                    .operand(address(out), TensorAccess.strides(out), 3, t.code)
                    .launch(s.matmulF64, s.stream, (int) Math.min(Dim3.blocks(out.numel(), THREADS), s.maxBlocks), THREADS);
            return;
        }
        List<Tensor> temps = new ArrayList<>();
        try {
            Tensor c = out.isContiguous() ? out : keep(temps, Tensor.empty(out.device(), t, out.shape()));
            try {
                blasMatmul(s, lt, a, b, c, batch, m, n, k, temps);
            } catch (CudaException e) {
                // a view at an odd address may leave cuBLASLt without an algorithm: fresh (aligned) copies have one
                if (!e.errorName().equals("CUBLAS_STATUS_NOT_SUPPORTED")) throw e;
                blasMatmul(s, lt, keep(temps, contiguousCopy(a)), keep(temps, contiguousCopy(b)), c, batch, m, n, k, temps);
            }
            if (c != out) copy(c, out);
        } finally {
            for (Tensor tmp : temps) tmp.close();
        }
    }

    private void blasMatmul(CudaDevice s, DataType lt, Tensor a, Tensor b, Tensor c, int batch, int m, int n, int k, List<Tensor> temps) {
        long[] as = TensorAccess.strides(a), bs = TensorAccess.strides(b);
        // A [m, k] row-major (ld k), or stored transposed [k, m] (ld m); otherwise a contiguous copy.
        boolean aN = (k == 1 || as[2] == 1) && (m == 1 || as[1] == k), aT = !aN && (m == 1 || as[1] == 1) && (k == 1 || as[2] == m);
        if (!aN && !aT) {
            a = keep(temps, contiguousCopy(a));
            as = TensorAccess.strides(a);
            aN = true;
        }
        boolean bN = (n == 1 || bs[2] == 1) && (k == 1 || bs[1] == n), bT = !bN && (k == 1 || bs[1] == 1) && (n == 1 || bs[2] == k);
        if (!bN && !bT) {
            b = keep(temps, contiguousCopy(b));
            bs = TensorAccess.strides(b);
            bN = true;
        }
        long strideA = batch == 1 ? (long) m * k : as[0], strideB = batch == 1 ? (long) k * n : bs[0];
        Matmul op = new Matmul(lt, m, n, k, aT, bT, batch, strideA, strideB, (long) m * n, Epilogue.NONE);
        s.blas().matmul(op, slice(c, c.numel()), sliceToEnd(a), sliceToEnd(b), null, s.stream);
    }

    // ---------------------------------------------------------------- indexing

    /**
     * Queues index.cu's check_index: no host read here. A bad element is recorded on the device and
     * raised, naming op, position, value and bound, at the next synchronisation (toHost, synchronize);
     * meanwhile gather and scatter_add skip out-of-range elements, so the context does not fault.
     */
    @Override
    public void checkIndex(String op, Tensor index, long bound) {
        long n = index.numel();
        if (n == 0) return;
        CudaDevice s = on(index.device());
        int rank = index.rank();
        checkRank(op, rank);
        long[] shape = rank == 0 ? new long[] {1} : longs(index.shape());
        Launch.begin().struct().shape(shape, Math.max(rank, 1)).i64(n).i64(bound)          // index.cu's CheckArgs
                .operand(address(index), rank == 0 ? new long[] {0} : TensorAccess.strides(index), Math.max(rank, 1), index.dtype().code)
                .i64(s.indexErrorAddress()).i32(s.opId(op))
                .launch(s.checkIndex, s.stream, (int) Math.min(Dim3.blocks(n, THREADS), s.maxBlocks), THREADS);
    }

    @Override
    public void indexSelect(Tensor x, int dim, Tensor index, Tensor out) {
        if (out.numel() == 0) return;
        Tensor idx = onDevice(index, out.device());
        long[] is = new long[out.rank()];
        is[dim] = TensorAccess.strides(idx)[0];
        gatherKernel(x, dim, idx, is, out);
        if (idx != index) idx.close();
    }

    @Override
    public void gather(Tensor x, int dim, Tensor index, Tensor out) {
        if (out.numel() == 0) return;
        Tensor idx = onDevice(index, out.device());
        gatherKernel(x, dim, idx, TensorAccess.strides(idx), out);
        if (idx != index) idx.close();
    }

    private void gatherKernel(Tensor x, int dim, Tensor idx, long[] idxStrides, Tensor out) {
        CudaDevice s = on(out.device());
        int rank = out.rank();
        checkRank("gather", rank);
        long n = out.numel();
        Launch.begin().struct().shape(longs(out.shape()), rank).i32(dim).i64(n).i64(x.shape()[dim])   // index.cu's IndexArgs
                .operand(address(out), TensorAccess.strides(out), rank, out.dtype().code)
                .operand(address(x), TensorAccess.strides(x), rank, x.dtype().code)
                .operand(address(idx), idxStrides, rank, idx.dtype().code)
                .launch(s.gather, s.stream, (int) Math.min(Dim3.blocks(n, THREADS), s.maxBlocks), THREADS);
    }

    @Override
    public void indexAdd(Tensor dst, int dim, Tensor index, Tensor src) {
        if (src.numel() == 0) return;
        Tensor idx = onDevice(index, dst.device());
        long[] is = new long[src.rank()];
        is[dim] = TensorAccess.strides(idx)[0];
        scatterAddKernel(dst, dim, idx, is, src, src.shape());
        if (idx != index) idx.close();
    }

    @Override
    public void scatterAdd(Tensor dst, int dim, Tensor index, Tensor src) {
        if (index.numel() == 0) return;
        Tensor idx = onDevice(index, dst.device());
        scatterAddKernel(dst, dim, idx, TensorAccess.strides(idx), src, index.shape());
        if (idx != index) idx.close();
    }

    /**
     * index.cu's scatter_add over {@code shape} (src's / index's). A 16-bit destination accumulates in an
     * f32 copy and is rounded once at the end, close to the CPU's double accumulator.
     */
    private void scatterAddKernel(Tensor dst, int dim, Tensor idx, long[] idxStrides, Tensor src, int[] shape) {
        CudaDevice s = on(dst.device());
        int rank = shape.length;
        checkRank("scatterAdd", rank);
        long columns = Tensor.numel(shape) / shape[dim];
        Tensor acc = dst.dtype() == DType.BF16 || dst.dtype() == DType.F16 ? Tensor.empty(dst.device(), DType.F32, dst.shape()) : dst;
        if (acc != dst) copy(dst, acc);
        Launch.begin().struct().shape(longs(shape), rank).i32(dim).i64(columns).i64(dst.shape()[dim])  // index.cu's IndexArgs
                .operand(address(acc), TensorAccess.strides(acc), rank, acc.dtype().code)
                .operand(address(src), TensorAccess.strides(src), rank, src.dtype().code)
                .operand(address(idx), idxStrides, rank, idx.dtype().code)
                .launch(s.scatterAdd, s.stream, Dim3.blocks(columns, THREADS), THREADS);
        if (acc != dst) {
            copy(acc, dst);
            acc.close();
        }
    }

    @Override
    public void cumsum(Tensor x, Tensor out, boolean reverse) {
        rowKernel(x, out, reverse, true);
    }

    @Override
    public void argsort(Tensor x, boolean descending, Tensor indices) {
        rowKernel(x, indices, descending, false);
    }

    /** cumsum_rows or argsort_rows over the rows of the last axis; non-contiguous operands go through copies. */
    private void rowKernel(Tensor x, Tensor out, boolean flag, boolean cumsum) {
        if (out.numel() == 0) return;
        CudaDevice s = on(out.device());
        long n = x.rank() == 0 ? 1 : x.shape()[x.rank() - 1], rows = x.numel() / n;
        Tensor xc = x.isContiguous() ? x : contiguousCopy(x);
        Tensor oc = out.isContiguous() ? out : Tensor.empty(out.device(), out.dtype(), out.shape());
        long[] rowMajor = {n, 1};
        Launch l = Launch.begin().struct().i64(rows).i64(n).i32(flag ? 1 : 0)            // index.cu's RowArgs
                .operand(address(xc), rowMajor, 2, xc.dtype().code)
                .operand(address(oc), rowMajor, 2, oc.dtype().code);
        if (cumsum) {
            if (n < SHORT_ROW) l.launch(s.cumsum, s.stream, Dim3.blocks(rows, THREADS), THREADS);
            else {
                if (rows > Integer.MAX_VALUE) throw new IllegalArgumentException("cumsum: " + rows + " rows exceed the grid");
                l.launch(s.cumsumBlock, s.stream, (int) rows, THREADS);
            }
        }
        else {
            long blocks = rows * ((n + THREADS - 1) / THREADS);
            if (blocks > Integer.MAX_VALUE) throw new IllegalArgumentException("argsort: " + rows + " rows of " + n + " need too many blocks");
            l.launch(s.argsort, s.stream, (int) blocks, THREADS);
        }
        if (xc != x) xc.close();
        if (oc != out) {
            copy(oc, out);
            oc.close();
        }
    }

    // ---------------------------------------------------------------- helpers

    /** This backend's state for {@code device} (made on first use). */
    public CudaDevice on(Device device) {
        if (device.kind() != Device.Kind.CUDA) throw new IllegalArgumentException("CUDA backend asked for " + device);
        CudaDevice d = devices.get(device.index());
        return d != null ? d : devices.computeIfAbsent(device.index(), i -> new CudaDevice(device, Cuda.context(i)));
    }

    /** The CUDA state of {@code device} in the backend that {@link Backend#of(Device)} finds for it. */
    public static CudaDevice of(Device device) {
        if (!(Backend.of(device) instanceof CudaBackend b))
            throw new IllegalArgumentException(device + " is not a CUDA device");
        return b.on(device);
    }

    private static CudaStorage storage(Tensor t) {
        if (!(TensorAccess.storage(t) instanceof CudaStorage s))
            throw new IllegalArgumentException("CUDA backend given a tensor on " + t.device() + ": " + describe(t));
        return s;
    }

    /** Device address of t's first element. */
    static long address(Tensor t) {
        return storage(t).address() + TensorAccess.offset(t) * t.dtype().byteSize;
    }

    /** A buffer view from t's first element over {@code elements} elements. */
    static DeviceBuffer slice(Tensor t, long elements) {
        CudaStorage s = storage(t);
        long w = t.dtype().byteSize;
        return s.buffer.slice(TensorAccess.offset(t) * w, Math.max(1, elements * w));
    }

    /** A buffer view from t's first element to the end of its storage. */
    private static DeviceBuffer sliceToEnd(Tensor t) {
        CudaStorage s = storage(t);
        long from = TensorAccess.offset(t) * t.dtype().byteSize;
        return s.buffer.slice(from, s.buffer.bytes() - from);
    }

    private static boolean wide(Tensor t) {
        if (t == null) return false;
        DType d = t.dtype();
        return d == DType.F64 || d == DType.I64 || d == DType.I32;
    }

    private Tensor contiguousCopy(Tensor t) {
        Tensor c = Tensor.empty(t.device(), t.dtype(), t.shape());
        copy(t, c);
        return c;
    }

    private static Tensor keep(List<Tensor> temps, Tensor t) {
        temps.add(t);
        return t;
    }

    /** index on this device (a CPU index tensor is copied over). */
    private static Tensor onDevice(Tensor index, Device device) {
        if (index.device().equals(device)) return index;
        try (var g = dev.jomni.tensor.Autograd.noGrad()) {
            return index.to(device);
        }
    }

    /** True when two of the view's coordinates may share an element (then addInto runs in order, serially). */
    static boolean overlaps(int[] shape, long[] strides) {
        int r = 0;
        long[][] dims = new long[shape.length][];
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] == 1) continue;
            if (shape[i] == 0) return false;
            if (strides[i] == 0) return true;
            dims[r++] = new long[] {Math.abs(strides[i]), shape[i]};
        }
        long[][] sorted = Arrays.copyOf(dims, r);
        Arrays.sort(sorted, (p, q) -> Long.compare(p[0], q[0]));
        long extent = 1;
        for (long[] d : sorted) {
            if (d[0] < extent) return true;
            extent += d[0] * (d[1] - 1);
        }
        return false;
    }

    private static long[] longs(int[] v) {
        long[] r = new long[v.length];
        for (int i = 0; i < v.length; i++) r[i] = v[i];
        return r;
    }

    private static void checkRank(String op, int rank) {
        if (rank > Launch.MAX_RANK)
            throw new IllegalArgumentException("CUDA " + op + ": rank " + rank + " exceeds the kernels' " + Launch.MAX_RANK);
    }

    private static void checkShapes(String op, Tensor a, Tensor b) {
        boolean same = a.rank() == b.rank();
        for (int i = 0; same && i < a.rank(); i++) same = a.size(i) == b.size(i);
        if (!same)
            throw new IllegalArgumentException("CUDA " + op + ": shapes " + Arrays.toString(a.shape()) + " and " + Arrays.toString(b.shape()) + " differ");
    }

    private static String describe(Tensor t) {
        return t.dtype().lower() + Arrays.toString(t.shape()) + "@" + t.device();
    }

    private static boolean contiguous(Tensor t) {
        return t == null || t.isContiguous();
    }

    private static Dims merged(Tensor out, Tensor x, Tensor y, Tensor c) {
        long[] none = new long[out.rank()];
        return Dims.coalesce(out.shape(), TensorAccess.strides(out), x == null ? none : TensorAccess.strides(x), y == null ? none : TensorAccess.strides(y),
                c == null ? none : TensorAccess.strides(c));
    }

    /** Shape and per-operand strides with size-1 axes dropped and axes contiguous in every operand merged. */
    record Dims(long[] size, long[][] strides, int rank) {
        private static final long[][] UNIT = {{1}, {1}, {1}, {1}};

        /** n elements, every operand contiguous (the unused ones read nothing). */
        static Dims flat(long n) {
            return new Dims(new long[] {n}, UNIT, 1);
        }

        static Dims coalesce(int[] shape, long[]... strides) {
            int n = shape.length, k = strides.length;
            long[] size = new long[Math.max(1, n)];
            long[][] st = new long[k][Math.max(1, n)];
            int r = 0;
            for (int d = 0; d < n; d++) {
                if (shape[d] == 1) continue;
                if (r > 0) {
                    boolean merge = true;
                    for (int o = 0; o < k && merge; o++) merge = st[o][r - 1] == strides[o][d] * shape[d];
                    if (merge) {
                        size[r - 1] *= shape[d];
                        for (int o = 0; o < k; o++) st[o][r - 1] = strides[o][d];
                        continue;
                    }
                }
                size[r] = shape[d];
                for (int o = 0; o < k; o++) st[o][r] = strides[o][d];
                r++;
            }
            if (r == 0) {                                       // a scalar or all-ones shape: one element
                size[0] = 1;
                r = 1;
            }
            checkRank("element-wise op over " + Arrays.toString(shape), r);
            return new Dims(size, st, r);
        }
    }
}

package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Matrix products through cuBLASLt: f32, f16 and bf16 operands with f32 accumulation, strided
 * batches, and the bias / GELU epilogues ({@link Matmul} says the row-major convention). A plan (the
 * descriptors and the heuristic's candidate algorithms) is made on the first call of each shape and
 * kept; {@link #tune} times the candidates on the device and keeps the fastest. One handle per
 * context; calls are serialised (synchronized), so share one per thread for concurrency.
 *
 * <p>cuBLASLt is column-major; a row-major C = A·B is the column-major Cᵀ = Bᵀ·Aᵀ, so B is passed as
 * cuBLASLt's first operand and A as its second, with no data moved.
 */
public final class BlasLt implements AutoCloseable {
    /** cuBLAS's recommended workspace on Hopper; Ampere needs less. */
    static final long WORKSPACE_BYTES = 32L << 20;
    static final int CANDIDATES = 8;

    private final CudaContext context;
    private final MemorySegment handle;
    private final DeviceBuffer workspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment alpha, beta, one, biasPointer;
    private final Map<PlanKey, Plan> plans = new HashMap<>();
    private boolean closed;

    private BlasLt(CudaContext context, MemorySegment handle, DeviceBuffer workspace) {
        this.context = context;
        this.handle = handle;
        this.workspace = workspace;
        alpha = arena.allocateFrom(JAVA_FLOAT, 1f);
        beta = arena.allocateFrom(JAVA_FLOAT, 0f);
        one = arena.allocateFrom(JAVA_FLOAT, 1f);
        biasPointer = arena.allocate(ADDRESS);
    }

    /** A cuBLASLt handle and a 32 MiB workspace on {@code context}'s device. */
    public static BlasLt create(CudaContext context) {
        Libraries.blasLt();
        context.bind();
        MemorySegment h = Lt.pointerOut("cublasLtCreate" + context.on(), Lt.CREATE);
        return new BlasLt(context, h, context.allocate(WORKSPACE_BYTES));
    }

    /** cuBLASLt's version, e.g. 130100 for 13.1.0. */
    public static long version() {
        Libraries.blasLt();
        try {
            return (long) Lt.GET_VERSION.invokeExact();
        } catch (Throwable t) {
            throw Driver.rethrow("cublasLtGetVersion", t);
        }
    }

    /**
     * Queues {@code c = epilogue(op(a) · op(b) + bias)} on {@code stream}. {@code bias} ([n] of the dtype)
     * is null unless the epilogue adds one. Buffers must hold {@link Matmul}'s extents.
     */
    public synchronized void matmul(Matmul op, DeviceBuffer c, DeviceBuffer a, DeviceBuffer b, DeviceBuffer bias, Stream stream) {
        Plan plan = plan(op, op.dtype(), c, a, b, bias, stream);
        run(plan, plan.chosen, beta, c, a, b, bias, stream);
    }

    /**
     * Queues {@code c = op(a) · op(b)}, or {@code c += op(a) · op(b)} when {@code accumulate}, with a and b
     * of op's dtype and c of {@code cType} (f32 accumulation either way): a bf16 product straight into an
     * f32 buffer, as the fused linear cross-entropy's logit chunks and gradient sums need. No epilogue.
     */
    public synchronized void matmul(Matmul op, DataType cType, boolean accumulate, DeviceBuffer c, DeviceBuffer a, DeviceBuffer b, Stream stream) {
        if (op.epilogue() != Epilogue.NONE) throw new IllegalArgumentException(op + ": no epilogue with an output type of its own");
        Plan plan = plan(op, cType, c, a, b, null, stream);
        run(plan, plan.chosen, accumulate ? one : beta, c, a, b, null, stream);
    }

    /**
     * Times each candidate algorithm for {@code op} (2 warm-up and 5 timed runs each, CUDA events,
     * median) on these buffers and keeps the fastest for later calls. Returns the medians in
     * milliseconds, in the heuristic's order; the chosen one is the smallest. Overwrites {@code c}.
     */
    public synchronized float[] tune(Matmul op, DeviceBuffer c, DeviceBuffer a, DeviceBuffer b, DeviceBuffer bias, Stream stream) {
        Plan plan = plan(op, op.dtype(), c, a, b, bias, stream);
        float[] medians = new float[plan.count];
        try (Event start = context.createEvent(); Event end = context.createEvent()) {
            for (int i = 0; i < plan.count; i++) {
                float[] t = new float[5];
                try {
                    for (int w = 0; w < 2; w++) run(plan, i, beta, c, a, b, bias, stream);
                    for (int r = 0; r < t.length; r++) {
                        start.record(stream);
                        run(plan, i, beta, c, a, b, bias, stream);
                        end.record(stream);
                        end.synchronize();
                        t[r] = Event.elapsedMillis(start, end);
                    }
                    Arrays.sort(t);
                    medians[i] = t[t.length / 2];
                } catch (CudaException e) {
                    medians[i] = Float.POSITIVE_INFINITY;  // a candidate the heuristic offered but that fails here
                }
            }
        }
        int best = 0;
        for (int i = 1; i < medians.length; i++) if (medians[i] < medians[best]) best = i;
        if (medians[best] == Float.POSITIVE_INFINITY) throw new CudaException("cuBLASLt: every candidate failed for " + op);
        plan.chosen = best;
        return medians;
    }

    private void run(Plan plan, int algo, MemorySegment beta, DeviceBuffer c, DeviceBuffer a, DeviceBuffer b, DeviceBuffer bias, Stream stream) {
        Matmul op = plan.op;
        int status;
        try {
            if (op.epilogue().hasBias()) {
                biasPointer.set(ADDRESS, 0, MemorySegment.ofAddress(bias.address()));
                status = (int) Lt.DESC_SET.invokeExact(plan.desc, Lt.MATMUL_DESC_BIAS_POINTER, biasPointer, ADDRESS.byteSize());
                if (status != 0) throw Lt.error(status, "cublasLtMatmulDescSetAttribute(BIAS_POINTER) for " + op);
            }
            MemorySegment algoPtr = plan.results.asSlice(algo * Lt.HEURISTIC_RESULT_BYTES, Lt.ALGO_BYTES);
            MemorySegment d = MemorySegment.ofAddress(c.address());
            status = (int) Lt.MATMUL.invokeExact(handle, plan.desc, alpha,
                    MemorySegment.ofAddress(b.address()), plan.layoutX,  // cuBLASLt's A: our B (column-major view)
                    MemorySegment.ofAddress(a.address()), plan.layoutY,  // cuBLASLt's B: our A
                    beta, d, plan.layoutD, d, plan.layoutD, algoPtr,
                    MemorySegment.ofAddress(workspace.address()), WORKSPACE_BYTES, stream.handle());
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw Driver.rethrow("cublasLtMatmul", t);
        }
        if (status != 0) throw Lt.error(status, "cublasLtMatmul(" + op + ", algorithm " + algo + " of " + plan.count + ")" + context.on());
    }

    private Plan plan(Matmul op, DataType cType, DeviceBuffer c, DeviceBuffer a, DeviceBuffer b, DeviceBuffer bias, Stream stream) {
        if (closed) throw new IllegalStateException("BlasLt used after close()");
        context.checkOwn(stream);
        int e = op.dtype().bytes();
        DeviceBuffer.elementsFit(a, op.elementsA(), e, op + ": A");
        DeviceBuffer.elementsFit(b, op.elementsB(), e, op + ": B");
        DeviceBuffer.elementsFit(c, op.elementsC(), cType.bytes(), op + ": C");
        long addresses = a.address() | b.address() | c.address();
        if (op.epilogue().hasBias()) {
            if (bias == null) throw new IllegalArgumentException(op + ": the epilogue needs a bias of " + op.n() + " elements");
            DeviceBuffer.elementsFit(bias, op.n(), e, op + ": bias");
            addresses |= bias.address();
        } else if (bias != null) {
            throw new IllegalArgumentException(op + ": a bias was given but the epilogue is " + op.epilogue());
        }
        // the heuristic may pick kernels that assume aligned pointers: tell it the alignment these have
        int alignment = (int) Math.min(256, Long.lowestOneBit(addresses | 256));
        context.bind();
        return plans.computeIfAbsent(new PlanKey(op, cType, alignment), this::newPlan);
    }

    private record PlanKey(Matmul op, DataType cType, int alignment) {}

    private Plan newPlan(PlanKey key) {
        Matmul op = key.op();
        String what = " for " + op + (key.cType() == op.dtype() ? "" : " into " + key.cType());
        int type = op.dtype().cudaDataType;
        MemorySegment desc = Lt.pointerOut("cublasLtMatmulDescCreate" + what, Lt.DESC_CREATE, Lt.CUBLAS_COMPUTE_32F, Lt.CUDA_R_32F);
        descInt(desc, Lt.MATMUL_DESC_TRANSA, op.transB() ? Lt.CUBLAS_OP_T : Lt.CUBLAS_OP_N, what);
        descInt(desc, Lt.MATMUL_DESC_TRANSB, op.transA() ? Lt.CUBLAS_OP_T : Lt.CUBLAS_OP_N, what);
        descInt(desc, Lt.MATMUL_DESC_EPILOGUE, op.epilogue().code, what);
        // column-major views: our B [k, n] is (n × k, ld n); stored [n, k] it is (k × n, ld k), transposed
        MemorySegment x = op.transB() ? layout(type, op.k(), op.n(), op.k(), op.batch(), op.strideB(), what)
                : layout(type, op.n(), op.k(), op.n(), op.batch(), op.strideB(), what);
        MemorySegment y = op.transA() ? layout(type, op.m(), op.k(), op.m(), op.batch(), op.strideA(), what)
                : layout(type, op.k(), op.m(), op.k(), op.batch(), op.strideA(), what);
        MemorySegment d = layout(key.cType().cudaDataType, op.n(), op.m(), op.n(), op.batch(), op.strideC(), what);
        MemorySegment pref = Lt.pointerOut("cublasLtMatmulPreferenceCreate", Lt.PREF_CREATE);
        MemorySegment results = arena.allocate(Lt.HEURISTIC_RESULT_BYTES * CANDIDATES, 16);
        int count;
        try (Arena tmp = Arena.ofConfined()) {
            Lt.call("cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)", Lt.PREF_SET, pref, Lt.PREF_MAX_WORKSPACE_BYTES,
                    tmp.allocateFrom(JAVA_LONG, WORKSPACE_BYTES), 8L);
            for (int attr = 5; attr <= 8; attr++)  // MIN_ALIGNMENT_{A,B,C,D}_BYTES
                Lt.call("cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)", Lt.PREF_SET, pref, attr,
                        tmp.allocateFrom(JAVA_INT, key.alignment()), 4L);
            MemorySegment returned = tmp.allocate(JAVA_INT);
            Lt.call("cublasLtMatmulAlgoGetHeuristic" + what + context.on(), Lt.ALGO_GET_HEURISTIC, handle, desc, x, y, d, d, pref,
                    CANDIDATES, results, returned);
            count = returned.get(JAVA_INT, 0);
        } finally {
            Lt.call("cublasLtMatmulPreferenceDestroy", Lt.PREF_DESTROY, pref);
        }
        int usable = 0;  // keep the candidates whose state is CUBLAS_STATUS_SUCCESS, in order
        for (int i = 0; i < count; i++) {
            if (results.get(JAVA_INT, i * Lt.HEURISTIC_RESULT_BYTES + Lt.HEURISTIC_STATE_OFFSET) != 0) continue;
            if (usable != i) MemorySegment.copy(results, i * Lt.HEURISTIC_RESULT_BYTES, results, usable * Lt.HEURISTIC_RESULT_BYTES, Lt.HEURISTIC_RESULT_BYTES);
            usable++;
        }
        if (usable == 0) throw new CudaException("cuBLASLt has no algorithm" + what + " (pointer alignment " + key.alignment() + " bytes)"
                + context.on(), "CUBLAS_STATUS_NOT_SUPPORTED", 15);
        return new Plan(op, desc, x, y, d, results, usable);
    }

    private static void descInt(MemorySegment desc, int attribute, int value, String what) {
        try (Arena tmp = Arena.ofConfined()) {
            Lt.call("cublasLtMatmulDescSetAttribute(" + attribute + ")" + what, Lt.DESC_SET, desc, attribute,
                    tmp.allocateFrom(JAVA_INT, value), 4L);
        }
    }

    private static MemorySegment layout(int type, long rows, long cols, long ld, int batch, long stride, String what) {
        MemorySegment l = Lt.pointerOut("cublasLtMatrixLayoutCreate(" + rows + " x " + cols + ", ld " + ld + ")" + what,
                Lt.LAYOUT_CREATE, type, rows, cols, ld);
        if (batch > 1) {
            try (Arena tmp = Arena.ofConfined()) {
                Lt.call("cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)" + what, Lt.LAYOUT_SET, l, Lt.LAYOUT_BATCH_COUNT,
                        tmp.allocateFrom(JAVA_INT, batch), 4L);
                Lt.call("cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)" + what, Lt.LAYOUT_SET, l,
                        Lt.LAYOUT_STRIDED_BATCH_OFFSET, tmp.allocateFrom(JAVA_LONG, stride), 8L);
            }
        }
        return l;
    }

    /** Descriptors and candidate algorithms of one shape; {@code chosen} indexes the candidates. */
    private static final class Plan {
        final Matmul op;
        final MemorySegment desc, layoutX, layoutY, layoutD, results;
        final int count;
        int chosen;

        Plan(Matmul op, MemorySegment desc, MemorySegment layoutX, MemorySegment layoutY, MemorySegment layoutD,
             MemorySegment results, int count) {
            this.op = op;
            this.desc = desc;
            this.layoutX = layoutX;
            this.layoutY = layoutY;
            this.layoutD = layoutD;
            this.results = results;
            this.count = count;
        }
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        context.bind();
        for (Plan p : plans.values()) {
            Lt.call("cublasLtMatmulDescDestroy", Lt.DESC_DESTROY, p.desc);
            for (MemorySegment l : new MemorySegment[] {p.layoutX, p.layoutY, p.layoutD})
                Lt.call("cublasLtMatrixLayoutDestroy", Lt.LAYOUT_DESTROY, l);
        }
        plans.clear();
        Lt.call("cublasLtDestroy" + context.on(), Lt.DESTROY, handle);
        workspace.close();
        arena.close();
    }
}

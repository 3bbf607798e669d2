package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/** cuBLASLt (cublasLt.h of CUDA 13), hand-bound. Initialised only after {@link Libraries#blasLt()} succeeded. */
@SuppressWarnings("restricted")  // FFM downcalls and foreign pointers are this class's job
final class Lt {
    private Lt() {}

    // cublasLt.h / library_types.h values used here
    static final int CUBLAS_COMPUTE_32F = 68;
    static final int CUDA_R_32F = 0;
    static final int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
    static final int MATMUL_DESC_TRANSA = 3, MATMUL_DESC_TRANSB = 4, MATMUL_DESC_EPILOGUE = 7, MATMUL_DESC_BIAS_POINTER = 8;
    static final int LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6;
    static final int PREF_MAX_WORKSPACE_BYTES = 1;
    /** cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize (8), state (4), wavesCount (4), reserved (16). */
    static final long HEURISTIC_RESULT_BYTES = 96, ALGO_BYTES = 64, HEURISTIC_WORKSPACE_OFFSET = 64, HEURISTIC_STATE_OFFSET = 72;

    private static final SymbolLookup LIB = Libraries.blasLt();

    private static MethodHandle fn(String name, MemoryLayout... args) {
        return Libraries.function(LIB, "libcublasLt", name, FunctionDescriptor.of(JAVA_INT, args));
    }

    static final MethodHandle CREATE = fn("cublasLtCreate", ADDRESS);
    static final MethodHandle DESTROY = fn("cublasLtDestroy", ADDRESS);
    static final MethodHandle GET_VERSION = Libraries.function(LIB, "libcublasLt", "cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
    static final MethodHandle GET_STATUS_NAME = Libraries.function(LIB, "libcublasLt", "cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    static final MethodHandle GET_STATUS_STRING = Libraries.function(LIB, "libcublasLt", "cublasLtGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    static final MethodHandle DESC_CREATE = fn("cublasLtMatmulDescCreate", ADDRESS, JAVA_INT, JAVA_INT);
    static final MethodHandle DESC_DESTROY = fn("cublasLtMatmulDescDestroy", ADDRESS);
    static final MethodHandle DESC_SET = fn("cublasLtMatmulDescSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
    static final MethodHandle LAYOUT_CREATE = fn("cublasLtMatrixLayoutCreate", ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG);
    static final MethodHandle LAYOUT_DESTROY = fn("cublasLtMatrixLayoutDestroy", ADDRESS);
    static final MethodHandle LAYOUT_SET = fn("cublasLtMatrixLayoutSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
    static final MethodHandle PREF_CREATE = fn("cublasLtMatmulPreferenceCreate", ADDRESS);
    static final MethodHandle PREF_DESTROY = fn("cublasLtMatmulPreferenceDestroy", ADDRESS);
    static final MethodHandle PREF_SET = fn("cublasLtMatmulPreferenceSetAttribute", ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG);
    static final MethodHandle ALGO_GET_HEURISTIC = fn("cublasLtMatmulAlgoGetHeuristic",
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
    static final MethodHandle MATMUL = fn("cublasLtMatmul", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS);

    static void call(String what, MethodHandle h, Object... args) {
        int status;
        try {
            status = (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": downcall failed", t);
        }
        check(status, what);
    }

    static MemorySegment pointerOut(String what, MethodHandle h, Object... argsAfterOut) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            Object[] all = new Object[argsAfterOut.length + 1];
            all[0] = out;
            System.arraycopy(argsAfterOut, 0, all, 1, argsAfterOut.length);
            call(what, h, all);
            return out.get(ADDRESS, 0);
        }
    }

    static void check(int status, String what) {
        if (status != 0) throw error(status, what);
    }

    static CudaException error(int status, String what) {
        String name = text(GET_STATUS_NAME, status), detail = text(GET_STATUS_STRING, status);
        if (name == null) name = "cublasStatus " + status;
        return new CudaException(what + " failed: " + name + " (" + status + ")" + (detail == null ? "" : ": " + detail), name, status);
    }

    private static String text(MethodHandle h, int status) {
        try {
            MemorySegment s = (MemorySegment) h.invokeExact(status);
            return s.equals(MemorySegment.NULL) ? null : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }
}

package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/** NCCL (nccl.h of 2.2x), hand-bound. Initialised only after {@link Libraries#nccl()} succeeded. */
@SuppressWarnings("restricted")  // FFM downcalls and foreign pointers are this class's job
final class NcclLib {
    private NcclLib() {}

    static final int UNIQUE_ID_BYTES = 128;
    /** ncclUniqueId is passed by value to ncclCommInitRank: a struct of 128 chars. */
    static final MemoryLayout UNIQUE_ID = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE));
    private static final String[] RESULT_NAMES = {"ncclSuccess", "ncclUnhandledCudaError", "ncclSystemError",
            "ncclInternalError", "ncclInvalidArgument", "ncclInvalidUsage", "ncclRemoteError", "ncclInProgress"};

    private static final SymbolLookup LIB = Libraries.nccl();

    private static MethodHandle fn(String name, MemoryLayout... args) {
        return Libraries.function(LIB, "libnccl", name, FunctionDescriptor.of(JAVA_INT, args));
    }

    static final MethodHandle GET_VERSION = fn("ncclGetVersion", ADDRESS);
    static final MethodHandle GET_UNIQUE_ID = fn("ncclGetUniqueId", ADDRESS);
    static final MethodHandle COMM_INIT_RANK = fn("ncclCommInitRank", ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT);
    static final MethodHandle COMM_INIT_ALL = fn("ncclCommInitAll", ADDRESS, JAVA_INT, ADDRESS);
    static final MethodHandle COMM_DESTROY = fn("ncclCommDestroy", ADDRESS);
    static final MethodHandle GROUP_START = fn("ncclGroupStart");
    static final MethodHandle GROUP_END = fn("ncclGroupEnd");
    static final MethodHandle ALL_REDUCE = fn("ncclAllReduce", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    static final MethodHandle BROADCAST = fn("ncclBroadcast", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    static final MethodHandle ALL_GATHER = fn("ncclAllGather", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
    static final MethodHandle REDUCE_SCATTER = fn("ncclReduceScatter", ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
    static final MethodHandle GET_ERROR_STRING = Libraries.function(LIB, "libnccl", "ncclGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    static final MethodHandle GET_LAST_ERROR = Libraries.function(LIB, "libnccl", "ncclGetLastError", FunctionDescriptor.of(ADDRESS, ADDRESS));

    static void call(String what, MethodHandle h, Object... args) {
        int status;
        try {
            status = (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": downcall failed", t);
        } finally {
            CudaContext.unbindThread();  // NCCL may have made another device's context current
        }
        check(status, what, MemorySegment.NULL);
    }

    static void check(int status, String what, MemorySegment comm) {
        if (status == 0) return;
        String name = status >= 0 && status < RESULT_NAMES.length ? RESULT_NAMES[status] : "ncclResult " + status;
        String text = text(GET_ERROR_STRING, status), last = lastError(comm);
        throw new CudaException(what + " failed: " + name + " (" + status + ")" + (text == null ? "" : ": " + text)
                + (last == null || last.isEmpty() ? "" : "; last error: " + last), name, status);
    }

    private static String text(MethodHandle h, int status) {
        try {
            MemorySegment s = (MemorySegment) h.invokeExact(status);
            return s.equals(MemorySegment.NULL) ? null : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }

    private static String lastError(MemorySegment comm) {
        try {
            MemorySegment s = (MemorySegment) GET_LAST_ERROR.invokeExact(comm);
            return s.equals(MemorySegment.NULL) ? null : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }
}

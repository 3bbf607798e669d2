package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * The CUDA driver API (cuda.h of CUDA 13), hand-bound. Symbol names are the ones cuda.h's macros
 * resolve to ({@code cuMemAlloc} is {@code cuMemAlloc_v2}). Loaded when this class initialises, which
 * happens only after {@link Cuda} found the library, so a machine without CUDA never gets here.
 * Handles are static finals so that the JIT can inline the hot downcalls (launch, async copies, events).
 */
@SuppressWarnings("restricted")  // FFM downcalls and foreign pointers are this class's job
final class Driver {
    private Driver() {}

    // cuda.h enum values used by this package
    static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    static final int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    static final int CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115;
    static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    static final int CU_STREAM_NON_BLOCKING = 1;
    static final int CU_EVENT_DEFAULT = 0;
    static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    static final int CU_MEMHOSTALLOC_PORTABLE = 1;
    static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    static final int CU_MEM_ATTACH_GLOBAL = 1;

    private static final SymbolLookup LIB = Libraries.cuda();

    private static MethodHandle fn(String name, FunctionDescriptor fd) {
        return Libraries.function(LIB, "libcuda", name, fd);
    }

    private static FunctionDescriptor rc(java.lang.foreign.MemoryLayout... args) {
        return FunctionDescriptor.of(JAVA_INT, args);
    }

    static final MethodHandle GET_ERROR_NAME = fn("cuGetErrorName", rc(JAVA_INT, ADDRESS));
    static final MethodHandle GET_ERROR_STRING = fn("cuGetErrorString", rc(JAVA_INT, ADDRESS));
    static final MethodHandle INIT = fn("cuInit", rc(JAVA_INT));
    static final MethodHandle DRIVER_GET_VERSION = fn("cuDriverGetVersion", rc(ADDRESS));
    static final MethodHandle DEVICE_GET_COUNT = fn("cuDeviceGetCount", rc(ADDRESS));
    static final MethodHandle DEVICE_GET = fn("cuDeviceGet", rc(ADDRESS, JAVA_INT));
    static final MethodHandle DEVICE_GET_NAME = fn("cuDeviceGetName", rc(ADDRESS, JAVA_INT, JAVA_INT));
    static final MethodHandle DEVICE_GET_ATTRIBUTE = fn("cuDeviceGetAttribute", rc(ADDRESS, JAVA_INT, JAVA_INT));
    static final MethodHandle DEVICE_TOTAL_MEM = fn("cuDeviceTotalMem_v2", rc(ADDRESS, JAVA_INT));
    static final MethodHandle PRIMARY_CTX_RETAIN = fn("cuDevicePrimaryCtxRetain", rc(ADDRESS, JAVA_INT));
    static final MethodHandle CTX_SET_CURRENT = fn("cuCtxSetCurrent", rc(ADDRESS));
    static final MethodHandle CTX_SYNCHRONIZE = fn("cuCtxSynchronize", rc());
    static final MethodHandle MEM_GET_INFO = fn("cuMemGetInfo_v2", rc(ADDRESS, ADDRESS));
    static final MethodHandle MEM_ALLOC = fn("cuMemAlloc_v2", rc(ADDRESS, JAVA_LONG));
    static final MethodHandle MEM_FREE = fn("cuMemFree_v2", rc(JAVA_LONG));
    static final MethodHandle MEM_ALLOC_MANAGED = fn("cuMemAllocManaged", rc(ADDRESS, JAVA_LONG, JAVA_INT));
    static final MethodHandle MEM_ALLOC_ASYNC = fn("cuMemAllocAsync", rc(ADDRESS, JAVA_LONG, ADDRESS));
    static final MethodHandle MEM_FREE_ASYNC = fn("cuMemFreeAsync", rc(JAVA_LONG, ADDRESS));
    static final MethodHandle MEM_HOST_ALLOC = fn("cuMemHostAlloc", rc(ADDRESS, JAVA_LONG, JAVA_INT));
    static final MethodHandle MEM_FREE_HOST = fn("cuMemFreeHost", rc(ADDRESS));
    static final MethodHandle MEMCPY_HTOD = fn("cuMemcpyHtoD_v2", rc(JAVA_LONG, ADDRESS, JAVA_LONG));
    static final MethodHandle MEMCPY_DTOH = fn("cuMemcpyDtoH_v2", rc(ADDRESS, JAVA_LONG, JAVA_LONG));
    static final MethodHandle MEMCPY_DTOD = fn("cuMemcpyDtoD_v2", rc(JAVA_LONG, JAVA_LONG, JAVA_LONG));
    static final MethodHandle MEMCPY_HTOD_ASYNC = fn("cuMemcpyHtoDAsync_v2", rc(JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
    static final MethodHandle MEMCPY_DTOH_ASYNC = fn("cuMemcpyDtoHAsync_v2", rc(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
    static final MethodHandle MEMCPY_DTOD_ASYNC = fn("cuMemcpyDtoDAsync_v2", rc(JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
    static final MethodHandle MEMSET_D8 = fn("cuMemsetD8_v2", rc(JAVA_LONG, JAVA_BYTE, JAVA_LONG));
    static final MethodHandle MEMSET_D8_ASYNC = fn("cuMemsetD8Async", rc(JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS));
    static final MethodHandle STREAM_CREATE = fn("cuStreamCreate", rc(ADDRESS, JAVA_INT));
    static final MethodHandle STREAM_DESTROY = fn("cuStreamDestroy_v2", rc(ADDRESS));
    static final MethodHandle STREAM_SYNCHRONIZE = fn("cuStreamSynchronize", rc(ADDRESS));
    static final MethodHandle STREAM_WAIT_EVENT = fn("cuStreamWaitEvent", rc(ADDRESS, ADDRESS, JAVA_INT));
    static final MethodHandle STREAM_BEGIN_CAPTURE = fn("cuStreamBeginCapture_v2", rc(ADDRESS, JAVA_INT));
    static final MethodHandle STREAM_END_CAPTURE = fn("cuStreamEndCapture", rc(ADDRESS, ADDRESS));
    static final MethodHandle EVENT_CREATE = fn("cuEventCreate", rc(ADDRESS, JAVA_INT));
    static final MethodHandle EVENT_DESTROY = fn("cuEventDestroy_v2", rc(ADDRESS));
    static final MethodHandle EVENT_RECORD = fn("cuEventRecord", rc(ADDRESS, ADDRESS));
    static final MethodHandle EVENT_SYNCHRONIZE = fn("cuEventSynchronize", rc(ADDRESS));
    static final MethodHandle EVENT_ELAPSED_TIME = fn("cuEventElapsedTime_v2", rc(ADDRESS, ADDRESS, ADDRESS));
    static final MethodHandle MODULE_LOAD_DATA = fn("cuModuleLoadData", rc(ADDRESS, ADDRESS));
    static final MethodHandle MODULE_UNLOAD = fn("cuModuleUnload", rc(ADDRESS));
    static final MethodHandle MODULE_GET_FUNCTION = fn("cuModuleGetFunction", rc(ADDRESS, ADDRESS, ADDRESS));
    static final MethodHandle FUNC_SET_ATTRIBUTE = fn("cuFuncSetAttribute", rc(ADDRESS, JAVA_INT, JAVA_INT));
    static final MethodHandle LAUNCH_KERNEL = fn("cuLaunchKernel", rc(ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    static final MethodHandle GRAPH_INSTANTIATE = fn("cuGraphInstantiateWithFlags", rc(ADDRESS, ADDRESS, JAVA_LONG));
    static final MethodHandle GRAPH_LAUNCH = fn("cuGraphLaunch", rc(ADDRESS, ADDRESS));
    static final MethodHandle GRAPH_EXEC_DESTROY = fn("cuGraphExecDestroy", rc(ADDRESS));
    static final MethodHandle GRAPH_DESTROY = fn("cuGraphDestroy", rc(ADDRESS));

    /** Calls a cold-path function (setup, queries, teardown) and checks its status. */
    static void call(String what, MethodHandle h, Object... args) {
        int status;
        try {
            status = (int) h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": downcall failed", t);
        }
        check(status, what);
    }

    static void check(int status, String what) {
        if (status != 0) throw error(status, what);
    }

    static CudaException error(int status, String what) {
        String name = message(GET_ERROR_NAME, status);
        String text = message(GET_ERROR_STRING, status);
        return new CudaException(what + " failed: " + (name == null ? "CUresult " + status : name) + " (" + status + ")"
                + (text == null ? "" : ": " + text), name == null ? "CUresult " + status : name, status);
    }

    private static String message(MethodHandle h, int status) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocate(ADDRESS);
            int rc = (int) h.invokeExact(status, p);
            MemorySegment s = p.get(ADDRESS, 0);
            return rc != 0 || s.equals(MemorySegment.NULL) ? null : s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            return null;
        }
    }

    static RuntimeException rethrow(String what, Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(what + ": downcall failed", t);
    }

    static int intOut(String what, MethodHandle h, Object... argsAfterOut) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            call(what, h, prepend(out, argsAfterOut));
            return out.get(JAVA_INT, 0);
        }
    }

    static long longOut(String what, MethodHandle h, Object... argsAfterOut) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            call(what, h, prepend(out, argsAfterOut));
            return out.get(JAVA_LONG, 0);
        }
    }

    static MemorySegment pointerOut(String what, MethodHandle h, Object... argsAfterOut) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            call(what, h, prepend(out, argsAfterOut));
            return out.get(ADDRESS, 0);
        }
    }

    static float floatOut(String what, MethodHandle h, Object... argsAfterOut) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            call(what, h, prepend(out, argsAfterOut));
            return out.get(JAVA_FLOAT, 0);
        }
    }

    private static Object[] prepend(Object first, Object[] rest) {
        Object[] all = new Object[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }
}

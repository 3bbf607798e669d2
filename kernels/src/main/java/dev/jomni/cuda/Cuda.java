package dev.jomni.cuda;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/**
 * Entry point: is there a usable CUDA driver and GPU, and the context of each device. Nothing is
 * loaded until the first call; on a machine without CUDA {@link #available()} is false and
 * {@link #unavailableReason()} says why (which library, where it was looked for, or the driver's error).
 */
public final class Cuda {
    private static final Object LOCK = new Object();
    private static boolean initialised;
    private static CudaException failure;
    private static int deviceCount;
    private static final ConcurrentMap<Integer, CudaContext> CONTEXTS = new ConcurrentHashMap<>();

    private Cuda() {}

    /** True when the driver library loads, cuInit succeeds and at least one GPU is visible. */
    public static boolean available() {
        return unavailableReason() == null;
    }

    /** Why CUDA is unavailable, or null when it is available. */
    public static String unavailableReason() {
        try {
            init();
            return deviceCount > 0 ? null : "the CUDA driver sees no GPU (cuDeviceGetCount returned 0)";
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    /** Number of visible GPUs. */
    public static int deviceCount() {
        init();
        return deviceCount;
    }

    /** The driver's CUDA version as an int, 1000 * major + 10 * minor (13000 for 13.0). */
    public static int driverVersion() {
        init();
        return Driver.intOut("cuDriverGetVersion", Driver.DRIVER_GET_VERSION);
    }

    /**
     * The primary context of GPU {@code ordinal}, retained once and kept for the life of the process
     * (the same context the CUDA runtime, cuBLASLt and NCCL use).
     */
    public static CudaContext context(int ordinal) {
        init();
        if (ordinal < 0 || ordinal >= deviceCount)
            throw new IllegalArgumentException("cuda: no device " + ordinal + "; " + deviceCount + " visible");
        return CONTEXTS.computeIfAbsent(ordinal, CudaContext::retainPrimary);
    }

    /** Loads the driver and runs cuInit once; throws the (remembered) reason on failure. */
    static void init() {
        synchronized (LOCK) {
            if (!initialised) {
                initialised = true;
                try {
                    Libraries.cuda();
                    Driver.call("cuInit(0)", Driver.INIT, 0);
                    deviceCount = Driver.intOut("cuDeviceGetCount", Driver.DEVICE_GET_COUNT);
                } catch (CudaException e) {
                    failure = e;
                } catch (ExceptionInInitializerError e) {
                    failure = e.getCause() instanceof CudaException c ? c
                            : new CudaException("CUDA driver binding failed to initialise: " + e.getCause());
                }
            }
            if (failure != null) throw failure.copy();
        }
    }
}

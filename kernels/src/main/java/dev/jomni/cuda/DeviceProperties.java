package dev.jomni.cuda;

/**
 * What the driver reports about one GPU.
 *
 * @param ordinal                      the device index, as in {@link Cuda#context(int)}
 * @param name                         e.g. "NVIDIA H100 80GB HBM3"
 * @param multiprocessorCount          streaming multiprocessors (132 on an H100 SXM)
 * @param totalMemoryBytes             device memory
 * @param computeCapabilityMajor       9 for Hopper
 * @param computeCapabilityMinor       0 for Hopper
 * @param l2CacheBytes                 L2 cache size
 * @param maxSharedMemoryPerBlockOptin the most dynamic shared memory a block can opt into
 *                                     ({@link Kernel#setMaxDynamicSharedMemory(int)})
 * @param memoryPoolsSupported         whether {@link CudaContext#allocateAsync} (cuMemAllocAsync) works
 */
public record DeviceProperties(int ordinal, String name, int multiprocessorCount, long totalMemoryBytes,
                               int computeCapabilityMajor, int computeCapabilityMinor, long l2CacheBytes,
                               int maxSharedMemoryPerBlockOptin, boolean memoryPoolsSupported) {
    /** "9.0" style. */
    public String computeCapability() {
        return computeCapabilityMajor + "." + computeCapabilityMinor;
    }
}

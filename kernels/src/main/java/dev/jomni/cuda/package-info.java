/**
 * The GPU side of jomni, through the FFM API: hand-written bindings to the CUDA driver API, cuBLASLt
 * and NCCL, wrapped in small handle types, plus jomni's own kernels (kernels/src/main/cuda, built by
 * nvcc into the jar) and a caching device allocator.
 *
 * <p>Start at {@link dev.jomni.cuda.Cuda}: {@code Cuda.available()} (false with a reason on a machine
 * without a driver or GPU; nothing is loaded before the first call), then {@code Cuda.context(i)}, the
 * primary context of GPU i, which makes {@link dev.jomni.cuda.DeviceBuffer}s,
 * {@link dev.jomni.cuda.Stream}s, {@link dev.jomni.cuda.Event}s, {@link dev.jomni.cuda.PinnedBuffer}s,
 * {@link dev.jomni.cuda.CudaModule}s and the {@link dev.jomni.cuda.CachingAllocator}. Work is queued
 * on streams; {@link dev.jomni.cuda.Stream#beginCapture()} records it as a {@link dev.jomni.cuda.Graph}.
 * Matrix products: {@link dev.jomni.cuda.BlasLt} with a {@link dev.jomni.cuda.Matmul}; collectives:
 * {@link dev.jomni.cuda.Nccl} and {@link dev.jomni.cuda.NcclComm}. Kernel launchers are named after
 * their .cu file ({@link dev.jomni.cuda.AddKernel} for add.cu).
 *
 * <p>Every failed call throws {@link dev.jomni.cuda.CudaException} with the library's error name and
 * what was being done. No {@code MemorySegment} or device address leaves this package.
 */
package dev.jomni.cuda;

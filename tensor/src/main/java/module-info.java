/**
 * The tensor core: Tensor, DType, Device, autograd, scopes and the coarse ops are the API; the
 * Backend SPI (backends, storage, streams, op codes, tensor layout) and the CPU backend's kernels
 * are exported only to the kernels module, which implements the CUDA backend against them.
 */
module dev.jomni.tensor {
    requires jdk.incubator.vector;

    exports dev.jomni.tensor;
    exports dev.jomni.tensor.ops;
    exports dev.jomni.tensor.spi to dev.jomni.kernels;
    exports dev.jomni.tensor.cpu to dev.jomni.kernels;

    uses dev.jomni.tensor.spi.Backend;
    provides dev.jomni.tensor.spi.Backend with dev.jomni.tensor.cpu.CpuBackend;
}

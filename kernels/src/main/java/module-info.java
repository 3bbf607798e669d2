/** The CUDA backend of the tensor core (FFM bindings to the driver, cuBLASLt and NCCL, the kernels). */
module dev.jomni.kernels {
    requires dev.jomni.tensor;

    exports dev.jomni.cuda;

    provides dev.jomni.tensor.spi.Backend with dev.jomni.cuda.CudaBackend;
}

package dev.jomni.cuda;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;

/**
 * AdamWStep's CUDA kernels (adamw_step.cu): one launch per parameter, on the backend's stream; the
 * hyper-parameters travel as launch arguments, so a step reads nothing back from the device.
 */
final class CudaAdamWStep implements AdamWStep.Kernels {
    private final CudaBackend backend;

    CudaAdamWStep(CudaBackend backend) {
        this.backend = backend;
    }

    /** adamw_step.cu's AdamWArgs; absent operands are 0. */
    private static Launch args(Tensor p, Tensor g, Tensor m, Tensor v, Tensor absmax1, Tensor absmax2, Tensor qmap1, Tensor qmap2,
                               AdamWStep.Hyper h) {
        return Launch.begin().struct().i64(p.numel())
                .i64(CudaBackend.address(p)).i64(CudaBackend.address(g)).i64(CudaBackend.address(m)).i64(CudaBackend.address(v))
                .i64(absmax1 == null ? 0 : CudaBackend.address(absmax1)).i64(absmax2 == null ? 0 : CudaBackend.address(absmax2))
                .i64(qmap1 == null ? 0 : CudaBackend.address(qmap1)).i64(qmap2 == null ? 0 : CudaBackend.address(qmap2))
                .i32(p.dtype().code).i32(g.dtype().code)
                .f64(h.beta1()).f64(h.beta2()).f64(h.eps()).f64(h.lr()).f64(h.weightDecay()).f64(h.stepSize()).f64(h.correction());
    }

    private void elementwise(String function, Tensor p, Tensor g, Tensor m, Tensor v, AdamWStep.Hyper h) {
        CudaDevice d = backend.on(p.device());
        int grid = (int) Math.min(Dim3.blocks(p.numel(), CudaBackend.THREADS), d.maxBlocks);
        args(p, g, m, v, null, null, null, null, h).launch(d.kernel("adamw_step", function), d.stream, grid, CudaBackend.THREADS);
    }

    @Override
    public void torch(Tensor p, Tensor g, Tensor m, Tensor v, AdamWStep.Hyper h) {
        elementwise("adamw_torch", p, g, m, v, h);
    }

    @Override
    public void bnb32(Tensor p, Tensor g, Tensor m, Tensor v, AdamWStep.Hyper h) {
        elementwise("adamw_bnb32", p, g, m, v, h);
    }

    @Override
    public void blockwise8bit(Tensor p, Tensor g, Tensor codes1, Tensor codes2, Tensor absmax1, Tensor absmax2, Tensor qmap1, Tensor qmap2,
                              AdamWStep.Hyper h) {
        CudaDevice d = backend.on(p.device());
        // CUDA blocks walk the quantization blocks of 256, so the codes are loaded into shared memory once per CUDA block
        int grid = (int) Math.min(absmax1.numel(), d.maxBlocks);
        args(p, g, codes1, codes2, absmax1, absmax2, qmap1, qmap2, h)
                .launch(d.kernel("adamw_step", "adamw_8bit_blockwise"), d.stream, grid, AdamWStep.BLOCK);
    }
}

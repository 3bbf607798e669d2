package dev.jomni.cuda;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;

/**
 * AdamWStep's CUDA kernels (adamw_step.cu): one launch per parameter, on the backend's stream; the
 * hyper-parameters travel as launch arguments, so a step reads nothing back from the device.
 * {@code -Djomni.adamw.kernel=v2} (read at each call) runs the vectorised kernels instead of the first ones, to measure
 * both in one process; both compute the same bits (host emulation, kernels/src/test/cuda/emulate/adamw.sh). v1 stays the
 * default until v2 has passed CudaAdamWStepTest on a GPU.
 */
final class CudaAdamWStep implements AdamWStep.Kernels {
    static final String KERNEL_PROPERTY = "jomni.adamw.kernel";
    /** CUDA blocks per SM of adamw_8bit_blockwise and of adamw_torch / adamw_bnb32 (their __launch_bounds__); warps a block. */
    private static final int BLOCKS_PER_SM = 4, F32_BLOCKS_PER_SM = 6, WARPS = CudaBackend.THREADS / 32;

    private final CudaBackend backend;

    CudaAdamWStep(CudaBackend backend) {
        this.backend = backend;
    }

    /** Whether the first kernels are asked for: -Djomni.adamw.kernel is v1 (the default) or v2. */
    static boolean v1() {
        String v = System.getProperty(KERNEL_PROPERTY, "v1");
        return switch (v) {
            case "v1" -> true;
            case "v2" -> false;
            default -> throw new IllegalArgumentException("-D" + KERNEL_PROPERTY + "=" + v + ": v1 or v2");
        };
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
        boolean first = v1();
        // the default kernels: 4 elements a thread, one wave of resident blocks
        long threads = first ? p.numel() : (p.numel() + 3) / 4;
        long cap = first ? d.maxBlocks : (long) d.ctx.properties().multiprocessorCount() * F32_BLOCKS_PER_SM;
        int grid = (int) Math.min(Dim3.blocks(threads, CudaBackend.THREADS), cap);
        args(p, g, m, v, null, null, null, null, h)
                .launch(d.kernel("adamw_step", first ? function + "_v1" : function), d.stream, grid, CudaBackend.THREADS);
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
        Launch args = args(p, g, codes1, codes2, absmax1, absmax2, qmap1, qmap2, h);
        if (v1()) {   // a CUDA block per quantization block of 256, walking them; the codes in shared memory once per CUDA block
            args.launch(d.kernel("adamw_step", "adamw_8bit_blockwise_v1"), d.stream, (int) Math.min(absmax1.numel(), d.maxBlocks), AdamWStep.BLOCK);
            return;
        }
        // a warp per quantization block; one wave of CUDA blocks, each building its code tables once
        long resident = (long) d.ctx.properties().multiprocessorCount() * BLOCKS_PER_SM;
        int grid = (int) Math.min(Dim3.blocks(absmax1.numel(), WARPS), resident);
        args.launch(d.kernel("adamw_step", "adamw_8bit_blockwise"), d.stream, grid, AdamWStep.BLOCK);
    }
}

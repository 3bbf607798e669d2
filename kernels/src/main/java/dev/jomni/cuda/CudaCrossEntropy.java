package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.CrossEntropy;

/**
 * CrossEntropy's CUDA kernels (cross_entropy.cu): a warp per row for up to {@link CudaSoftmax#WARP_ROW}
 * classes, a block per longer row; f32 statistics (f64 for f64). The targets are range-checked by the
 * kernels as they read them: a bad one is recorded on the device and raised at the next host
 * synchronisation, naming "crossEntropy", its position and its value (no host read here). The scale of
 * backward is read on the device. Inputs contiguous, as CrossEntropy passes them.
 */
final class CudaCrossEntropy implements CrossEntropy.Kernels {
    static final String OP = "crossEntropy";
    private static final int ROWS_PER_BLOCK = CudaBackend.THREADS / 32;
    private static final long[] UNIT = {1};

    private final CudaBackend backend;

    CudaCrossEntropy(CudaBackend backend) {
        this.backend = backend;
    }

    @Override
    public void forward(Tensor logits, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
        launch("ce_fwd", logits, targets, ignoreIndex, lse, rowLoss, null, lse.dtype());
    }

    @Override
    public void backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex, Tensor dLogits) {
        launch("ce_bwd", logits, targets, ignoreIndex, lse, scale, dLogits, lse.dtype());
    }

    /** CeArgs {n, c, ignore, logits, targets, a, b, d, error, op}; d may be null (unused). */
    private void launch(String name, Tensor logits, Tensor targets, long ignoreIndex, Tensor a, Tensor b, Tensor d, DType stat) {
        int n = logits.size(0), c = logits.size(1);
        if (n == 0) return;
        CudaDevice dev = backend.on(logits.device());
        boolean warp = c <= CudaSoftmax.WARP_ROW;
        Launch l = Launch.begin().struct().i64(n).i64(c).i64(ignoreIndex);                // cross_entropy.cu's CeArgs
        for (Tensor t : new Tensor[] {logits, targets, a, b, d})
            if (t == null) l.operand(0, UNIT, 1, DType.F32.code);
            else l.operand(CudaBackend.address(t), UNIT, 1, t.dtype().code);
        l.i64(dev.indexErrorAddress()).i32(dev.opId(OP)).i32(0)
                .launch(dev.kernel("cross_entropy", name + (warp ? "_warp" : "") + (stat == DType.F64 ? "_f64" : "")), dev.stream,
                        warp ? Dim3.blocks(n, ROWS_PER_BLOCK) : n, CudaBackend.THREADS);
    }
}

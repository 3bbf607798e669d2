package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Rope;

/**
 * Rope's CUDA kernels (rope.cu): a thread per element, grid-stride; each product and the sum rounded to
 * the dtype as the CPU reference does (bit-identical). Inputs contiguous, as Rope passes them: x, dy
 * [B, h, T, d], cos, sin [B or 1, T, d].
 */
final class CudaRope implements Rope.Kernels {
    private final CudaBackend backend;

    CudaRope(CudaBackend backend) {
        this.backend = backend;
    }

    @Override
    public void forward(Tensor x, Tensor cos, Tensor sin, Tensor out) {
        rotate(x, cos, sin, out, false);
    }

    @Override
    public void backward(Tensor dy, Tensor cos, Tensor sin, Tensor dx) {
        rotate(dy, cos, sin, dx, true);
    }

    private static final long[] UNIT = {1};

    /** One rope_fwd launch: RopeArgs {total, h, t, d, tableBatch, transpose, x, cos, sin, out}, all flat. */
    private void rotate(Tensor x, Tensor cos, Tensor sin, Tensor out, boolean transpose) {
        long total = x.numel();
        if (total == 0) return;
        CudaDevice d = backend.on(x.device());
        Launch l = Launch.begin().struct().i64(total).i64(x.size(1)).i64(x.size(2)).i64(x.size(3)).i64(cos.size(0))
                .i32(transpose ? 1 : 0).i32(0);                                            // rope.cu's RopeArgs
        for (Tensor t : new Tensor[] {x, cos, sin, out}) l.operand(CudaBackend.address(t), UNIT, 1, t.dtype().code);
        int grid = (int) Math.min(Dim3.blocks(total, CudaBackend.THREADS), d.maxBlocks);
        l.launch(d.kernel("rope", x.dtype() == DType.F64 ? "rope_fwd_f64" : "rope_fwd"), d.stream, grid, CudaBackend.THREADS);
    }
}

package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Softmax;

/**
 * Softmax's CUDA kernels (softmax.cu): a warp per row for rows of up to {@link #WARP_ROW} elements (8 rows
 * per block), a block of 256 per longer row; f32 statistics (f64 for f64). Inputs contiguous [rows, n], as
 * Softmax passes them.
 */
final class CudaSoftmax implements Softmax.Kernels {
    /** Up to 32 elements per lane a warp per row keeps every lane busy; beyond, a block shares the row. */
    static final int WARP_ROW = 1024;
    private static final int ROWS_PER_BLOCK = CudaBackend.THREADS / 32;

    private final CudaBackend backend;

    CudaSoftmax(CudaBackend backend) {
        this.backend = backend;
    }

    private static Launch operand(Launch l, Tensor t, long n) {
        return l.operand(CudaBackend.address(t), new long[] {n, 1}, 2, t.dtype().code);
    }

    @Override
    public void forward(Tensor x, Tensor y, boolean log) {
        launch("softmax_fwd", x, y, y, log);
    }

    @Override
    public void backward(Tensor dy, Tensor y, Tensor dx, boolean log) {
        launch("softmax_bwd", dy, y, dx, log);
    }

    /** One launch of softmax.cu's {@code name} over the rows of a: SoftmaxArgs {rows, n, log, a, b, c}. */
    private void launch(String name, Tensor a, Tensor b, Tensor c, boolean log) {
        int rows = a.size(0), n = a.size(1);
        if (rows == 0 || n == 0) return;
        CudaDevice d = backend.on(a.device());
        boolean warp = n <= WARP_ROW, f64 = b.dtype() == DType.F64;
        Launch l = Launch.begin().struct().i64(rows).i64(n).i32(log ? 1 : 0).i32(0);       // softmax.cu's SoftmaxArgs
        operand(operand(operand(l, a, n), b, n), c, n)
                .launch(d.kernel("softmax", name + (warp ? "_warp" : "") + (f64 ? "_f64" : "")), d.stream,
                        warp ? Dim3.blocks(rows, ROWS_PER_BLOCK) : rows, CudaBackend.THREADS);
    }
}

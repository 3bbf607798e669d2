package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.RmsNorm;

/**
 * RmsNorm's CUDA kernels (rms_norm.cu): a block per row for y/rstd and dx, a thread per column for dw;
 * f32 statistics (f64 when x is f64). Inputs are contiguous, as RmsNorm passes them.
 */
final class CudaRmsNorm implements RmsNorm.Kernels {
    private final CudaBackend backend;

    CudaRmsNorm(CudaBackend backend) {
        this.backend = backend;
    }

    private static final long[] UNIT = {1};

    /** A contiguous [rows, n] (or [n], [rows]) operand: its strides are row-major. */
    private static Launch operand(Launch l, Tensor t, long n) {
        if (t == null) return l.operand(0, UNIT, 1, DType.F32.code);
        return t.rank() == 2 ? l.operand(CudaBackend.address(t), new long[] {n, 1}, 2, t.dtype().code)
                : l.operand(CudaBackend.address(t), UNIT, 1, t.dtype().code);
    }

    @Override
    public void forward(Tensor x, Tensor w, double eps, Tensor y, Tensor rstd) {
        int rows = x.size(0), n = x.size(1);
        if (rows == 0 || n == 0) return;
        CudaDevice d = backend.on(x.device());
        boolean f64 = rstd.dtype() == DType.F64;
        Launch l = Launch.begin().struct().i64(rows).i64(n).f64(eps);                      // rms_norm.cu's RmsArgs
        operand(operand(operand(operand(operand(l, x, n), w, n), y, n), rstd, n), null, n)
                .launch(d.kernel("rms_norm", f64 ? "rms_norm_fwd_f64" : "rms_norm_fwd"), d.stream, rows, CudaBackend.THREADS);
    }

    @Override
    public void backward(Tensor dy, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
        int rows = x.size(0), n = x.size(1);
        if (n == 0) return;
        CudaDevice d = backend.on(x.device());
        String suffix = rstd.dtype() == DType.F64 ? "_f64" : "";
        if (dx != null && rows > 0) {
            Launch l = Launch.begin().struct().i64(rows).i64(n).f64(0);
            operand(operand(operand(operand(operand(l, dy, n), w, n), dx, n), rstd, n), x, n)
                    .launch(d.kernel("rms_norm", "rms_norm_bwd_dx" + suffix), d.stream, rows, CudaBackend.THREADS);
        }
        if (dw != null) {
            Launch l = Launch.begin().struct().i64(rows).i64(n).f64(0);
            operand(operand(operand(operand(operand(l, dy, n), x, n), dw, n), rstd, n), null, n)
                    .launch(d.kernel("rms_norm", "rms_norm_bwd_dw" + suffix), d.stream, Dim3.blocks(n, CudaBackend.THREADS), CudaBackend.THREADS);
        }
    }
}

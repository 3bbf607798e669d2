package dev.jomni.cuda;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.Nf4Weight;

/**
 * Nf4Matmul's CUDA kernels (nf4.cu): the decode GEMV for M ≤ 16 (any of bf16, f16, f32), the fused dequant
 * GEMM and its dx on tensor cores for larger M (bf16, f16). f32 above M = 16 and f64 run dequantize-then-matmul
 * (a [N, K] temporary): the fused kernels' tensor-core inputs are 16-bit.
 */
final class CudaNf4Matmul implements Nf4Matmul.Kernels {
    static final int GEMV_MAX_M = 16, GEMV_ROWS_PER_BLOCK = 32, GEMV_THREADS = 256, TILE = 64, GEMM_THREADS = 128;
    private final CudaBackend backend;

    CudaNf4Matmul(CudaBackend backend) {
        this.backend = backend;
    }

    /** The weight's arguments after the output and input: packed, qabs, nabs, ncode, offset, wdt. */
    private static Launch weight(Launch l, Nf4Weight w) {
        long packed = CudaBackend.address(w.packed());
        if (packed % 16 != 0)
            throw new IllegalArgumentException("nf4Matmul: packed weight [" + w.rows() + ", " + w.cols() + "] at 0x" + Long.toHexString(packed)
                    + " is not 16-byte aligned (the kernels read 16-byte chunks)");
        return l.i64(packed).i64(CudaBackend.address(w.absmax())).i64(CudaBackend.address(w.nestedAbsmax()))
                .i64(CudaBackend.address(w.nestedCode())).f64(w.offset()).i32(w.dtype().code);
    }

    private static String suffix(DType t) {
        return switch (t) {
            case BF16 -> "bf16";
            case F16 -> "f16";
            case F32 -> "f32";
            case F64 -> "f64";
            default -> throw new IllegalArgumentException("nf4Matmul: dtype " + t.lower() + " is not floating");
        };
    }

    private static void aligned(String what, Tensor t) {
        if (CudaBackend.address(t) % 16 != 0)
            throw new IllegalArgumentException("nf4Matmul: " + what + " " + java.util.Arrays.toString(t.shape()) + " is not 16-byte aligned");
    }

    @Override
    public void dequantize(Nf4Weight w, Tensor out) {
        CudaDevice d = backend.on(out.device());
        long n = (long) w.rows() * w.cols();
        int grid = (int) Math.min(Dim3.blocks(n / 2, CudaBackend.THREADS), 65535L * 16);
        weight(Launch.begin().i64(CudaBackend.address(out)), w).i64(n)
                .launch(d.kernel("nf4", "nf4_dequantize_" + suffix(out.dtype())), d.stream, grid, CudaBackend.THREADS);
    }

    @Override
    public void forward(Tensor x, Nf4Weight w, Tensor y) {
        int m = x.size(0), n = w.rows(), k = w.cols();
        DType t = x.dtype();
        CudaDevice d = backend.on(x.device());
        if (m <= GEMV_MAX_M && t != DType.F64) {
            int mt = Integer.highestOneBit(m) == m ? m : Integer.highestOneBit(m) << 1;     // 1, 2, 4, 8, 16
            weight(Launch.begin().i64(CudaBackend.address(y)).i64(CudaBackend.address(x)), w).i32(m).i32(n).i32(k)
                    .launch(d.kernel("nf4", "nf4_gemv_" + suffix(t) + "_m" + mt), d.stream, Dim3.blocks(n, GEMV_ROWS_PER_BLOCK), GEMV_THREADS);
        } else if (t == DType.BF16 || t == DType.F16) {
            aligned("x", x);
            weight(Launch.begin().i64(CudaBackend.address(y)).i64(CudaBackend.address(x)), w).i32(m).i32(n).i32(k)
                    .launch(d.kernel("nf4", "nf4_gemm_" + suffix(t)), d.stream, grid(n, m), Dim3.of(GEMM_THREADS));
        } else {
            try (var none = Autograd.noGrad(); Tensor wt = dequantized(w, t)) {
                backend.copy(x.matmul(wt.mT()), y);
            }
        }
    }

    @Override
    public void backwardInput(Tensor dy, Nf4Weight w, Tensor dx) {
        int m = dy.size(0), n = w.rows(), k = w.cols();
        DType t = dy.dtype();
        CudaDevice d = backend.on(dy.device());
        if (t == DType.BF16 || t == DType.F16) {
            weight(Launch.begin().i64(CudaBackend.address(dx)).i64(CudaBackend.address(dy)), w).i32(m).i32(n).i32(k)
                    .launch(d.kernel("nf4", "nf4_gemm_dx_" + suffix(t)), d.stream, grid(k, m), Dim3.of(GEMM_THREADS));
        } else {
            try (var none = Autograd.noGrad(); Tensor wt = dequantized(w, t)) {
                backend.copy(dy.matmul(wt), dx);
            }
        }
    }

    /** (columns / 64, rows / 64) tiles, rounded up; rows within gridDim.y's 65535. */
    private static Dim3 grid(int columns, int rows) {
        int gy = Dim3.blocks(rows, TILE);
        if (gy > 65535) throw new IllegalArgumentException("nf4Matmul: " + rows + " rows exceed 65535 tiles of " + TILE);
        return Dim3.of(Dim3.blocks(columns, TILE), gy);
    }

    /** W [N, K] of t: dequantized to the weight's dtype and then t, as the kernels round. */
    private Tensor dequantized(Nf4Weight w, DType t) {
        Tensor wd = Tensor.empty(w.device(), t == DType.F64 ? DType.F64 : w.dtype(), w.rows(), w.cols());
        dequantize(w, wd);
        if (wd.dtype() == t) return wd;
        Tensor c = wd.to(t);
        wd.close();
        return c;
    }
}

package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Swiglu;
import dev.jomni.tensor.spi.TensorAccess;

/**
 * Swiglu's CUDA kernels (swiglu.cu): a thread per element, grid-stride, computed in f64 with the CPU
 * reference's rounding points. gate, up, dgate, dup are read at their own row stride (unit column
 * stride), so the halves of a [rows, 2I] gate_up need no copy; out and dout are contiguous.
 */
final class CudaSwiglu implements Swiglu.Kernels {
    private final CudaBackend backend;

    CudaSwiglu(CudaBackend backend) {
        this.backend = backend;
    }

    /** A [rows, n] operand with unit column stride at its row stride; null: an unused slot. */
    private static Launch operand(Launch l, Tensor t) {
        if (t == null) return l.operand(0, new long[] {0, 0}, 2, DType.F32.code);
        long[] s = TensorAccess.strides(t);
        if (t.size(1) > 1 && s[1] != 1)
            throw new IllegalArgumentException("CUDA swiglu: a [rows, I] operand needs unit column stride, got strides "
                    + java.util.Arrays.toString(s) + " for shape " + java.util.Arrays.toString(t.shape()));
        return l.operand(CudaBackend.address(t), new long[] {s[0], 1}, 2, t.dtype().code);
    }

    @Override
    public void forward(Tensor gate, Tensor up, Tensor out) {
        launch("swiglu_fwd", gate, up, out, null, null);
    }

    @Override
    public void backward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        if (dgate == null && dup == null) return;
        launch("swiglu_bwd", gate, up, dout, dgate, dup);
    }

    /** SwigluArgs {rows, n, gate, up, out | dout, dgate, dup, hasDgate, hasDup}. */
    private void launch(String name, Tensor gate, Tensor up, Tensor c, Tensor dgate, Tensor dup) {
        long rows = gate.size(0), n = gate.size(1), total = rows * n;
        if (total == 0) return;
        CudaDevice d = backend.on(gate.device());
        Launch l = Launch.begin().struct().i64(rows).i64(n);                               // swiglu.cu's SwigluArgs
        operand(operand(operand(operand(operand(l, gate), up), c), dgate), dup).i32(dgate != null ? 1 : 0).i32(dup != null ? 1 : 0);
        int grid = (int) Math.min(Dim3.blocks(total, CudaBackend.THREADS), d.maxBlocks);
        l.launch(d.kernel("swiglu", name), d.stream, grid, CudaBackend.THREADS);
    }
}

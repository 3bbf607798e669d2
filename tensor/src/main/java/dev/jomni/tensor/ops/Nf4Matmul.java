package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;

/**
 * y = x · Wᵀ for a frozen NF4 weight W [N, K] ({@link Nf4Weight}), without materializing W in the
 * backend's memory: x [..., K] → y [..., N] of x's dtype. W's elements are those of
 * {@code W.dequantize().to(x.dtype())} (bitsandbytes' matmul_4bit: dequantize to the quant dtype, then to
 * the input's), products summed in at least f32 (CUDA's decode GEMV, M ≤ 16 in bf16/f16, scales f32 partial sums
 * over 16-bit codes instead: its weights are absmax·round(CODE[q]), within 2^-9 relative as these are, not
 * bit-identical). The base is frozen (QLoRA): the only gradient is
 * dx = dy · W; the tape keeps the weight (already resident) and nothing of x.
 */
public final class Nf4Matmul {
    private Nf4Matmul() {}

    /**
     * What a backend implements. M rows, N = w.rows(), K = w.cols() (a multiple of 64); x, dy, y, dx
     * contiguous, one floating dtype (x's); w's parts contiguous on the same device. Outputs allocated by
     * the op. No host reads: sizes come from shapes and w's int fields, the offset is w's float field.
     */
    public interface Kernels {
        /** out [N, K] of out's dtype ← round(f32(CODE[q] · absmax)) (see {@link Nf4Weight}). */
        void dequantize(Nf4Weight w, Tensor out);

        /** y [M, N] ← x [M, K] · Wᵀ. */
        void forward(Tensor x, Nf4Weight w, Tensor y);

        /** dx [M, K] ← dy [M, N] · W. */
        void backwardInput(Tensor dy, Nf4Weight w, Tensor dx);
    }

    /** x [..., K] · Wᵀ → [..., N]. */
    public static Tensor nf4Matmul(Tensor x, Nf4Weight w) {
        Check.floating("nf4Matmul", x);
        if (x.rank() == 0 || x.size(-1) != w.cols())
            throw Check.fail("nf4Matmul", "x %s does not end in K of the weight [%d, %d]", Check.str(x.shape()), w.rows(), w.cols());
        if (!x.device().equals(w.device()))
            throw Check.fail("nf4Matmul", "x %s on %s, weight [%d, %d] on %s", Check.str(x.shape()), x.device(), w.rows(), w.cols(), w.device());
        int k = w.cols(), m = Math.toIntExact(x.numel() / k);
        int[] shape = x.shape();
        shape[shape.length - 1] = w.rows();
        Tensor y;
        try (var none = Autograd.noGrad()) {
            Tensor x2 = x.contiguous().reshape(m, k);
            y = Tensor.empty(x.device(), x.dtype(), m, w.rows());
            if (m > 0) kernels(x).forward(x2, w, y);
        }
        return Autograd.record("nf4Matmul", y.reshape(shape), new Saved(w, x.shape(), x.dtype()), x);
    }

    /** W [N, K] of w.dtype(), on w's device. */
    static Tensor dequantize(Nf4Weight w) {
        Tensor out = Tensor.empty(w.device(), w.dtype(), w.rows(), w.cols());
        kernels(w.packed()).dequantize(w, out);
        return out;
    }

    /** The frozen weight, x's shape and dtype: dx = dy · W needs nothing else. */
    record Saved(Nf4Weight w, int[] inputShape, DType inputType) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dy, boolean[] needs) {
            if (!needs[0]) return new Tensor[] {null};
            int n = w.rows(), m = Math.toIntExact(dy.numel() / n);
            Tensor d = dy.to(inputType).contiguous().reshape(m, n);
            Tensor dx = Tensor.empty(dy.device(), inputType, m, w.cols());
            if (m > 0) kernels(dy).backwardInput(d, w, dx);
            return new Tensor[] {dx.reshape(inputShape)};
        }
    }

    private static Kernels kernels(Tensor t) { return Backend.of(t).kernels(Kernels.class); }
}

package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;

/**
 * Rotary position embedding, half-split (transformers' {@code rotate_half}), applied with precomputed
 * tables: {@code x' = x·cos + rotate_half(x)·sin}, {@code rotate_half(x) = concat(−x[d/2:], x[:d/2])},
 * computed in x's dtype with each product and the sum rounded to it (no upcast), as transformers does.
 * The tables hold one angle per position and frequency slot, so M-RoPE's sections are the table
 * builder's business (qwen-omni's Rope), not this op's. Backward is the transposed rotation (for
 * tables of {@code concat(φ, φ)}, the rotation by −φ); the tape keeps the tables only.
 *
 * <p>Shapes: x [B, h, T, d] (d even), cos and sin [B, T, d] or [1, T, d] (shared by the batch).
 */
public final class Rope {
    private Rope() {}

    /** What a backend implements. All tensors contiguous, of one floating dtype; outputs allocated by the op. */
    public interface Kernels {
        /**
         * x, out [B, h, T, d]; cos, sin [Bt, T, d] with Bt = B or 1. With p = d/2:
         * out[j] = x[j]·cos[j] − x[j+p]·sin[j] for j &lt; p, x[j]·cos[j] + x[j−p]·sin[j] for j ≥ p.
         */
        void forward(Tensor x, Tensor cos, Tensor sin, Tensor out);

        /**
         * dy, dx [B, h, T, d]; the transpose of forward:
         * dx[j] = dy[j]·cos[j] + dy[j+p]·sin[j+p] for j &lt; p, dy[j]·cos[j] − dy[j−p]·sin[j−p] for j ≥ p.
         */
        void backward(Tensor dy, Tensor cos, Tensor sin, Tensor dx);
    }

    /** x [B, h, T, d] rotated by the angles whose cos and sin [B or 1, T, d] are given; like x, dtype promote(x, cos, sin). */
    public static Tensor rope(Tensor x, Tensor cos, Tensor sin) {
        Check.floating("rope", x);
        Check.sameDevice("rope", x, cos);
        Check.sameDevice("rope", x, sin);
        if (x.rank() != 4 || x.size(3) % 2 != 0)
            throw Check.fail("rope", "x %s must be [B, h, T, d] with d even", Check.str(x.shape()));
        int b = x.size(0), t = x.size(2), d = x.size(3);
        for (Tensor table : new Tensor[] {cos, sin})
            if (table.rank() != 3 || (table.size(0) != b && table.size(0) != 1) || table.size(1) != t || table.size(2) != d)
                throw Check.fail("rope", "tables cos %s, sin %s do not match x %s: expected [%d or 1, %d, %d]",
                        Check.str(cos.shape()), Check.str(sin.shape()), Check.str(x.shape()), b, t, d);
        if (cos.size(0) != sin.size(0)) throw Check.fail("rope", "cos %s and sin %s differ", Check.str(cos.shape()), Check.str(sin.shape()));
        DType type = DType.promote(x.dtype(), DType.promote(cos.dtype(), sin.dtype()));
        Tensor c, s, out;
        try (var g = Autograd.noGrad()) {
            Tensor xc = x.to(type).contiguous();
            c = cos.to(type).contiguous();
            s = sin.to(type).contiguous();
            out = Tensor.empty(x.device(), type, x.shape());
            kernels(x).forward(xc, c, s, out);
        }
        return Autograd.record("rope", out, new Saved(c, s, x.dtype()), x);
    }

    /** The tables as the kernels read them (shared by every layer's q and k), and x's dtype for its gradient. */
    record Saved(Tensor cos, Tensor sin, DType xType) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor g = (dy.dtype() == cos.dtype() ? dy : dy.to(cos.dtype())).contiguous();
            Tensor dx = Tensor.empty(dy.device(), cos.dtype(), dy.shape());
            kernels(dy).backward(g, cos, sin, dx);
            return new Tensor[] {dx.dtype() == xType ? dx : dx.to(xType)};
        }
    }

    private static Kernels kernels(Tensor x) { return Fallback.kernels(Backend.of(x), Kernels.class, COMPOSED); }

    /**
     * The op composed of primitive tensor ops, as jomni computed it before this op existed: the fallback
     * for a backend without its own kernels, and the composition the tests compare the kernels with.
     */
    public static final Kernels COMPOSED = new Kernels() {
        @Override
        public void forward(Tensor x, Tensor cos, Tensor sin, Tensor out) {
            try (var g = Autograd.noGrad()) {
                int p = x.size(-1) / 2;
                Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);         // [Bt, 1, T, d]
                Tensor rotated = Tensor.cat(java.util.List.of(x.narrow(-1, p, p).neg(), x.narrow(-1, 0, p)), -1);
                Backend.of(x).copy(x.mul(c).add(rotated.mul(s)), out);
            }
        }

        @Override
        public void backward(Tensor dy, Tensor cos, Tensor sin, Tensor dx) {
            try (var g = Autograd.noGrad()) {
                int p = dy.size(-1) / 2;
                Tensor c = cos.unsqueeze(1), ds = dy.mul(sin.unsqueeze(1));
                Tensor back = Tensor.cat(java.util.List.of(ds.narrow(-1, p, p), ds.narrow(-1, 0, p).neg()), -1);
                Backend.of(dy).copy(dy.mul(c).add(back), dx);
            }
        }
    };
}

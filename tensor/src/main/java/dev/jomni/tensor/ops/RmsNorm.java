package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;

/**
 * RMSNorm over the last axis (arXiv:1910.07467), as transformers' Qwen3 RMSNorm computes it:
 * {@code y = w · cast_x(x · rstd)}, {@code rstd = 1/√(mean(x²) + eps)}. The statistics are computed in
 * f32 (f64 for f64 x), the normalised value is rounded to x's dtype and then multiplied by the weight,
 * rounding to {@code promote(x, w)}. One kernel forward, one backward; the tape keeps x, w and rstd.
 *
 * <p>Shapes: x [..., n] viewed as [rows, n]; w [n]; rstd [rows] in x's compute dtype.
 */
public final class RmsNorm {
    private RmsNorm() {}

    /** What a backend implements. All tensors contiguous; outputs are allocated by the op. */
    public interface Kernels {
        /**
         * x [rows, n] (any floating dtype), w [n] (any floating dtype); writes y [rows, n] of
         * {@code promote(x, w)} and rstd [rows] of {@code x.dtype().atLeastF32()} (f32, f64 for f64 x).
         */
        void forward(Tensor x, Tensor w, double eps, Tensor y, Tensor rstd);

        /**
         * dy [rows, n] of y's dtype; x, w, rstd as given to and written by forward. Writes, where not null,
         * dx [rows, n] of x's dtype: {@code rstd·g − x·rstd³·mean(g·x)} with {@code g = dy·w}, and
         * dw [n] of w's dtype: {@code Σ_rows dy·cast_x(x·rstd)}. Sums in at least f32.
         */
        void backward(Tensor dy, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw);
    }

    /** y = x·rstd·w over the last axis of x [..., n], w [n]; y has x's shape and dtype promote(x, w). */
    public static Tensor rmsNorm(Tensor x, Tensor w, double eps) {
        Check.floating("rmsNorm", x);
        Check.floating("rmsNorm", w);
        Check.sameDevice("rmsNorm", x, w);
        if (x.rank() == 0) throw Check.fail("rmsNorm", "needs a last axis, got a scalar");
        int n = x.size(-1);
        if (w.rank() != 1 || w.size(0) != n)
            throw Check.fail("rmsNorm", "weight %s does not match the last axis of %s", Check.str(w.shape()), Check.str(x.shape()));
        if (!(eps >= 0)) throw Check.fail("rmsNorm", "eps=%s must be >= 0", eps);
        int rows = Math.toIntExact(x.numel() / Math.max(1, n));
        Tensor x2, wc, y, rstd;
        try (var g = Autograd.noGrad()) {
            x2 = x.contiguous().reshape(rows, n);                 // [rows, n]
            wc = w.contiguous();
            y = Tensor.empty(x.device(), DType.promote(x.dtype(), w.dtype()), rows, n);
            rstd = Tensor.empty(x.device(), x.dtype().atLeastF32(), rows);
            kernels(x).forward(x2, wc, eps, y, rstd);
        }
        return Autograd.record("rmsNorm", y.reshape(x.shape()), new Saved(x2, wc, rstd), x, w);
    }

    /** x [rows, n] and w [n] as the kernels read them, rstd [rows]: exactly what backward needs. */
    record Saved(Tensor x, Tensor w, Tensor rstd) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dy, boolean[] needs) {
            int rows = x.size(0), n = x.size(1);
            DType yType = DType.promote(x.dtype(), w.dtype());
            Tensor g = (dy.dtype() == yType ? dy : dy.to(yType)).contiguous().reshape(rows, n);
            Tensor dx = needs[0] ? Tensor.empty(x.device(), x.dtype(), rows, n) : null;
            Tensor dw = needs[1] ? Tensor.empty(w.device(), w.dtype(), n) : null;
            kernels(x).backward(g, x, w, rstd, dx, dw);
            return new Tensor[] {dx == null ? null : dx.reshape(dy.shape()), dw};
        }
    }

    private static Kernels kernels(Tensor x) { return Fallback.kernels(Backend.of(x), Kernels.class, COMPOSED); }

    /**
     * The op composed of primitive tensor ops, as jomni computed it before this op existed: the fallback
     * for a backend without its own kernels, and the composition the tests compare the kernels with.
     */
    public static final Kernels COMPOSED = new Kernels() {
        @Override
        public void forward(Tensor x, Tensor w, double eps, Tensor y, Tensor rstd) {
            try (var g = Autograd.noGrad()) {
                Tensor h = x.to(x.dtype().atLeastF32());
                Tensor r = h.square().mean(-1, true).add(eps).rsqrt();          // [rows, 1]
                Tensor out = w.mul(h.mul(r).to(x.dtype()));
                Backend.of(x).copy(out.to(y.dtype()), y);
                Backend.of(x).copy(r.reshape(-1).to(rstd.dtype()), rstd);
            }
        }

        @Override
        public void backward(Tensor dy, Tensor x, Tensor w, Tensor rstd, Tensor dx, Tensor dw) {
            try (var g = Autograd.noGrad()) {
                DType c = rstd.dtype();
                Tensor h = x.to(c), r = rstd.reshape(-1, 1);
                if (dx != null) {
                    Tensor gw = dy.to(c).mul(w.to(c));                            // [rows, n]
                    Tensor dot = gw.mul(h).mean(-1, true);                          // [rows, 1]
                    Tensor d = gw.mul(r).sub(h.mul(r.mul(r).mul(r)).mul(dot));
                    Backend.of(x).copy(d.to(dx.dtype()), dx);
                }
                if (dw != null) {
                    Tensor normed = h.mul(r).to(x.dtype()).to(c);
                    Backend.of(x).copy(dy.to(c).mul(normed).sum(0, false).to(dw.dtype()), dw);
                }
            }
        }
    };
}

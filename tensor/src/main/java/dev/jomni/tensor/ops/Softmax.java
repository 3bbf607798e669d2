package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;

/**
 * softmax and log-softmax along an axis, shifted by the row maximum: {@code y = exp(x − m) / Σ exp(x − m)},
 * {@code log y = (x − m) − log Σ exp(x − m)}. exp is computed once; the tape keeps the output only
 * (softmax: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy). Computed in f32 (f64 for f64),
 * rounded to x's dtype; callers that want f32 statistics for bf16 activations upcast first, as
 * transformers does.
 *
 * <p>Shapes: x [..., n, ...] with the axis moved last and viewed as [rows, n]; y like x.
 */
public final class Softmax {
    private Softmax() {}

    /** What a backend implements. All tensors contiguous [rows, n], one floating dtype; outputs allocated by the op. */
    public interface Kernels {
        /** y ← softmax(x) over each row, or log-softmax when {@code log}. */
        void forward(Tensor x, Tensor y, boolean log);

        /** dx ← y·(dy − Σ dy·y) per row (softmax), or dy − exp(y)·Σ dy (log: y is log-softmax); sums in at least f32. */
        void backward(Tensor dy, Tensor y, Tensor dx, boolean log);
    }

    public static Tensor softmax(Tensor x, int dim) { return forward("softmax", x, dim, false); }

    public static Tensor logSoftmax(Tensor x, int dim) { return forward("logSoftmax", x, dim, true); }

    private static Tensor forward(String op, Tensor x, int dim, boolean log) {
        Check.floating(op, x);
        int last = x.rank() - 1, d = Check.dim(op, dim, x.rank());
        Tensor y2, out;
        try (var g = Autograd.noGrad()) {
            Tensor moved = d == last ? x : x.transpose(d, last);   // the axis last: [..., n]
            int n = moved.size(-1), rows = n == 0 ? 0 : Math.toIntExact(x.numel() / n);
            Tensor x2 = moved.contiguous().reshape(rows, n);
            y2 = Tensor.empty(x.device(), x.dtype(), rows, n);
            if (rows > 0) kernels(x).forward(x2, y2, log);
            out = y2.reshape(moved.shape());
            if (d != last) out = out.transpose(d, last);
        }
        return Autograd.record(op, out, new Saved(y2, d, log), x);
    }

    /** y [rows, n]: the output, with the reduced axis last; dim: where that axis is in x. */
    record Saved(Tensor y, int dim, boolean log) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dy, boolean[] needs) {
            int last = dy.rank() - 1;
            Tensor moved = dim == last ? dy : dy.transpose(dim, last);
            Tensor g = (dy.dtype() == y.dtype() ? moved : moved.to(y.dtype())).contiguous().reshape(y.shape());
            Tensor dx = Tensor.empty(y.device(), y.dtype(), y.shape());
            if (y.size(0) > 0) kernels(y).backward(g, y, dx, log);
            Tensor out = dx.reshape(moved.shape());
            return new Tensor[] {dim == last ? out : out.transpose(dim, last)};
        }
    }

    private static Kernels kernels(Tensor x) { return Fallback.kernels(Backend.of(x), Kernels.class, COMPOSED); }

    /**
     * The op composed of primitive tensor ops, as jomni computed it before this op existed (exp twice,
     * every step rounded to x's dtype): the fallback for a backend without its own kernels, and the
     * composition the tests compare the kernels with.
     */
    public static final Kernels COMPOSED = new Kernels() {
        @Override
        public void forward(Tensor x, Tensor y, boolean log) {
            try (var g = Autograd.noGrad()) {
                Tensor shifted = x.sub(x.max(-1, true));
                Tensor out = log ? shifted.sub(shifted.exp().sum(-1, true).log()) : shifted.exp().div(shifted.exp().sum(-1, true));
                Backend.of(x).copy(out, y);
            }
        }

        @Override
        public void backward(Tensor dy, Tensor y, Tensor dx, boolean log) {
            try (var g = Autograd.noGrad()) {
                Tensor out = log ? dy.sub(y.exp().mul(dy.sum(-1, true))) : y.mul(dy.sub(dy.mul(y).sum(-1, true)));
                Backend.of(y).copy(out, dx);
            }
        }
    };
}

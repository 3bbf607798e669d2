package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import java.util.Arrays;

/**
 * Cross-entropy, PyTorch's {@code F.cross_entropy(logits, targets, ignore_index=…)} with mean
 * reduction: loss = Σ_{i valid} (lse_i − x_{i,t_i}) / #valid, lse_i = log Σ_j exp x_ij, where a row is
 * valid when its target is not ignore_index. With no valid row the loss is 0/0 = NaN, as in PyTorch,
 * and the gradient is zero.
 *
 * <p>Shapes: logits [N, C] (or [..., C] with targets [...]), any float dtype; targets [N] I64 (I32 is
 * widened). Statistics (lse, loss) are f32, f64 for f64 logits. Saved for backward: the logits, the
 * per-row lse [N] and the valid count []; backward recomputes softmax = exp(x − lse) from them
 * (one exp per element) rather than keeping an [N, C] softmax.
 *
 * <p>The target range is checked by the kernel as it reads the targets (no host read in the op): the
 * CPU kernel throws naming the position and the value; a device kernel raises it at the next sync.
 */
public final class CrossEntropy {
    private CrossEntropy() {}

    /** The kernels a backend provides. Inputs contiguous; outputs allocated by the op. */
    public interface Kernels {
        /**
         * logits [N, C] float, targets [N] I64 → lse [N] and rowLoss [N] (stat dtype: f32, f64 for f64
         * logits): lse_i = log Σ_j exp logits_ij, rowLoss_i = lse_i − logits_{i,t_i}; both 0 where
         * t_i = ignoreIndex. A target outside [0, C) that is not ignoreIndex is an error naming
         * "crossEntropy", its position and its value.
         */
        void forward(Tensor logits, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss);

        /**
         * dLogits [N, C] (logits' dtype) = (exp(logits − lse) − onehot(t))·scale on valid rows, 0 on
         * rows whose target is ignoreIndex. scale [] (stat dtype) = dLoss / #valid, read on the device.
         */
        void backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex, Tensor dLogits);
    }

    /** Mean over valid targets of −log softmax(logits)[target]; logits [..., C], targets [...] I64 or I32. */
    public static Tensor crossEntropy(Tensor logits, Tensor targets, long ignoreIndex) {
        if (!logits.dtype().floating)
            throw fail("needs floating logits, got %s %s", logits.dtype().lower(), Arrays.toString(logits.shape()));
        if (targets.dtype() != DType.I64 && targets.dtype() != DType.I32)
            throw fail("targets must be i64 or i32, got %s %s", targets.dtype().lower(), Arrays.toString(targets.shape()));
        if (!logits.device().equals(targets.device()))
            throw fail("logits on %s, targets on %s", logits.device(), targets.device());
        int[] ls = logits.shape(), ts = targets.shape();
        if (ls.length != ts.length + 1 || !Arrays.equals(Arrays.copyOf(ls, ts.length), ts))
            throw fail("logits %s (classes last) do not match targets %s", Arrays.toString(ls), Arrays.toString(ts));
        int classes = ls[ls.length - 1];
        DType stat = logits.dtype().atLeastF32();
        Tensor x, t, lse, rowLoss, count, loss;
        try (var g = Autograd.noGrad()) {
            x = logits.reshape(-1, classes).contiguous();                                 // [N, C]
            t = targets.reshape(-1).to(DType.I64).contiguous();                           // [N]
            int n = t.size(0);
            lse = Tensor.empty(x.device(), stat, n);
            rowLoss = Tensor.empty(x.device(), stat, n);
            Backend.of(x).kernels(Kernels.class).forward(x, t, ignoreIndex, lse, rowLoss);
            count = t.ne(ignoreIndex).to(stat).sum();                                      // [] on the device: no host read
            loss = rowLoss.sum().div(count);
        }
        return Autograd.record("crossEntropy", loss, new Saved(x, t, lse, count, ignoreIndex, ls), logits);
    }

    /** What backward needs: x [N, C], t [N], lse [N], count []; the logits' original shape. */
    record Saved(Tensor x, Tensor t, Tensor lse, Tensor count, long ignoreIndex, int[] shape) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dLoss, boolean[] needs) {
            if (!needs[0]) return new Tensor[] {null};
            Tensor scale = dLoss.to(lse.dtype()).div(count);
            Tensor dx = Tensor.empty(x.device(), x.dtype(), x.shape());
            Backend.of(x).kernels(Kernels.class).backward(x, t, lse, scale, ignoreIndex, dx);
            return new Tensor[] {dx.reshape(shape)};
        }
    }

    /**
     * The kernels composed from a backend's primitives (log-sum-exp, gather, where), for a backend
     * that has no native ones yet: the CUDA backend until its cross_entropy kernels land. It builds
     * [N, C] temporaries, and its target range check is gather's (a host read of the targets).
     */
    public static final class Composed implements Kernels {
        @Override
        public void forward(Tensor logits, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
            Tensor x = logits.to(lse.dtype()), valid = targets.ne(ignoreIndex), zero = Tensor.zeros(x.device(), lse.dtype());
            Tensor safe = Tensor.where(valid, targets, Tensor.zeros(x.device(), DType.I64));
            Tensor l = x.logsumexp(-1, false);
            Tensor picked = x.gather(1, safe.unsqueeze(1)).squeeze(1);
            lse.assign(Tensor.where(valid, l, zero));
            rowLoss.assign(Tensor.where(valid, l.sub(picked), zero));
        }

        @Override
        public void backward(Tensor logits, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex, Tensor dLogits) {
            DType stat = lse.dtype();
            Tensor valid = targets.ne(ignoreIndex);
            Tensor safe = Tensor.where(valid, targets, Tensor.zeros(logits.device(), DType.I64));
            Tensor p = logits.to(stat).sub(lse.unsqueeze(1)).exp();
            Tensor g = p.sub(safe.oneHot(logits.size(1)).to(stat)).mul(scale).mul(valid.unsqueeze(1).to(stat));
            dLogits.assign(g);
        }
    }

    static IllegalArgumentException fail(String format, Object... args) {
        return new IllegalArgumentException("crossEntropy: " + String.format(format, args));
    }
}

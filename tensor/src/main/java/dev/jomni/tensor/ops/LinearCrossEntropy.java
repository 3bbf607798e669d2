package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import java.util.Arrays;

/**
 * Fused linear cross-entropy: the mean cross-entropy of logits = hidden · weightᵀ against targets,
 * without ever materialising the [N, V] logits (at 4096 tokens × 152064 that is 2.5 GB of f32).
 * Cut Cross-Entropy (arXiv:2411.09009) and Liger's fused linear CE: the kernels work on chunks of
 * tokens × vocabulary. Forward keeps, per token, an online log-sum-exp over the vocabulary chunks
 * (m ← max(m, max chunk), s ← s·e^(m_old − m) + Σ e^(x − m)) and picks the target's logit from its
 * chunk. Backward recomputes each logit chunk, forms g = (softmax − onehot)·dLoss/#valid and
 * accumulates dHidden += g·W_chunk and dWeight_chunk += gᵀ·hidden chunk by chunk; dWeight is skipped
 * when the weight needs no gradient (a frozen lm_head under LoRA).
 *
 * <p>Shapes: hidden [N, H], weight [V, H] (lm_head's [out, in]), same float dtype; targets [N] I64
 * (I32 widened). Logits are accumulated in f32 (bf16 inputs give f32 logit chunks, as transformers
 * casts the logits to f32 for its loss; f64 stays f64); the loss and the lse are f32 (f64 for f64).
 * ignore_index rows count neither in the sum nor in #valid; with no valid row the loss is NaN
 * (0/0, as PyTorch's mean) and the gradients are zero.
 *
 * <p>Saved for backward: hidden, weight (both already alive: the activation and the parameter), the
 * targets, the per-token lse [N] and #valid []: no [N, V] state.
 */
public final class LinearCrossEntropy {
    private LinearCrossEntropy() {}

    /**
     * The kernels a backend provides. Inputs contiguous; outputs allocated by the op. Scratch is a
     * kernel's own business but must stay O(chunk), never O(N·V).
     */
    public interface Kernels {
        /**
         * hidden [N, H], weight [V, H] (same float dtype), targets [N] I64 → lse [N], rowLoss [N] (stat
         * dtype: f32, f64 for f64 inputs): with x_i = hidden_i · weightᵀ accumulated in f32 (f64),
         * lse_i = log Σ_v exp x_iv and rowLoss_i = lse_i − x_{i,t_i}; both 0 where t_i = ignoreIndex.
         * A target outside [0, V) that is not ignoreIndex is an error naming "linearCrossEntropy",
         * its position and its value.
         */
        void forward(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss);

        /**
         * With g_i = (exp(x_i − lse_i) − onehot(t_i))·scale on valid rows and 0 on ignored ones
         * (scale [] stat dtype = dLoss / #valid, read on the device): dHidden [N, H] = g·weight and
         * dWeight [V, H] = gᵀ·hidden, in the inputs' dtype, accumulated in f32 (f64). Either output may
         * be null: that gradient is not computed.
         */
        void backward(Tensor hidden, Tensor weight, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex,
                Tensor dHidden, Tensor dWeight);
    }

    /** mean over valid targets of −log softmax(hidden · weightᵀ)[target]; hidden [N, H], weight [V, H], targets [N]. */
    public static Tensor linearCrossEntropy(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex) {
        check(hidden, weight, targets);
        return linearCrossEntropy(hidden, weight, targets, ignoreIndex, Backend.of(hidden).kernels(Kernels.class));
    }

    /** The same with given kernels (tests run the CPU kernels with small chunks). */
    static Tensor linearCrossEntropy(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex, Kernels kernels) {
        check(hidden, weight, targets);
        DType stat = hidden.dtype().atLeastF32();
        Tensor h, w, t, lse, rowLoss, count, loss;
        try (var g = Autograd.noGrad()) {
            h = hidden.contiguous();
            w = weight.contiguous();
            t = targets.to(DType.I64).contiguous();
            int n = h.size(0);
            lse = Tensor.empty(h.device(), stat, n);
            rowLoss = Tensor.empty(h.device(), stat, n);
            kernels.forward(h, w, t, ignoreIndex, lse, rowLoss);
            count = t.ne(ignoreIndex).to(stat).sum();                                      // [] on the device: no host read
            loss = rowLoss.sum().div(count);
        }
        return Autograd.record("linearCrossEntropy", loss, new Saved(h, w, t, lse, count, ignoreIndex, kernels), hidden, weight);
    }

    private static void check(Tensor hidden, Tensor weight, Tensor targets) {
        int[] hs = hidden.shape(), ws = weight.shape(), ts = targets.shape();
        if (!hidden.dtype().floating || hidden.dtype() != weight.dtype())
            throw fail("hidden %s %s and weight %s %s must be of one float dtype",
                    hidden.dtype().lower(), Arrays.toString(hs), weight.dtype().lower(), Arrays.toString(ws));
        if (targets.dtype() != DType.I64 && targets.dtype() != DType.I32)
            throw fail("targets must be i64 or i32, got %s %s", targets.dtype().lower(), Arrays.toString(ts));
        if (!hidden.device().equals(weight.device()) || !hidden.device().equals(targets.device()))
            throw fail("hidden on %s, weight on %s, targets on %s", hidden.device(), weight.device(), targets.device());
        if (hs.length != 2 || ws.length != 2 || ts.length != 1 || hs[1] != ws[1] || hs[0] != ts[0])
            throw fail("hidden %s, weight %s, targets %s: expected [N, H], [V, H], [N]",
                    Arrays.toString(hs), Arrays.toString(ws), Arrays.toString(ts));
    }

    /** What backward needs: h [N, H], w [V, H], t [N], lse [N], count []. */
    record Saved(Tensor h, Tensor w, Tensor t, Tensor lse, Tensor count, long ignoreIndex, Kernels kernels)
            implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dLoss, boolean[] needs) {
            if (!needs[0] && !needs[1]) return new Tensor[] {null, null};
            Tensor scale = dLoss.to(lse.dtype()).div(count);
            Tensor dh = needs[0] ? Tensor.empty(h.device(), h.dtype(), h.shape()) : null;
            Tensor dw = needs[1] ? Tensor.empty(w.device(), w.dtype(), w.shape()) : null;
            kernels.backward(h, w, t, lse, scale, ignoreIndex, dh, dw);
            return new Tensor[] {dh, dw};
        }
    }

    private static IllegalArgumentException fail(String format, Object... args) {
        return new IllegalArgumentException("linearCrossEntropy: " + String.format(format, args));
    }
}

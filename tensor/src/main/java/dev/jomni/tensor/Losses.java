package dev.jomni.tensor;

import java.util.Arrays;

/** Losses. */
final class Losses {
    private Losses() {}

    /** Mean over valid targets of −log softmax(logits)[target]; logits [..., C], targets [...] I64. */
    static Tensor crossEntropy(Tensor logits, Tensor targets, long ignoreIndex) {
        Check.floating("crossEntropy", logits);
        Check.index("crossEntropy", targets);
        int[] ls = logits.shape(), ts = targets.shape();
        if (ls.length != ts.length + 1 || !Arrays.equals(Arrays.copyOf(ls, ts.length), ts))
            throw Check.fail("crossEntropy", "logits %s (classes last) do not match targets %s", Check.str(ls), Check.str(ts));
        int classes = ls[ls.length - 1];
        Tensor flatT = targets.reshape(-1).to(DType.I64);
        Tensor valid = flatT.ne(ignoreIndex);
        Tensor safe = Tensor.where(valid, flatT, Elementwise.constant(flatT, 0));
        long[] t = safe.toLongArray();
        for (int i = 0; i < t.length; i++)
            if (t[i] < 0 || t[i] >= classes)
                throw Check.fail("crossEntropy", "target %d at position %d is outside [0, %d) and is not ignore_index %d", t[i], i, classes, ignoreIndex);
        DType compute = logits.dtype() == DType.F64 ? DType.F64 : DType.F32;   // loss statistics in f32 at least
        Tensor logp = logits.reshape(-1, classes).to(compute).logSoftmax(-1);
        Tensor picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1);
        Tensor weights = valid.to(compute);
        return picked.mul(weights).sum().neg().div(weights.sum());
    }
}

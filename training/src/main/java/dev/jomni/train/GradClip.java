package dev.jomni.train;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.List;

/** Clipping by global norm, as torch.nn.utils.clip_grad_norm_ (what HF's max_grad_norm calls). */
public final class GradClip {
    private GradClip() {}

    /** {@link #clipOnDevice}, with the norm read back (a device synchronisation); 0 when no parameter has a gradient. */
    public static double clip(List<Tensor> params, double maxNorm) {
        Tensor norm = clipOnDevice(params, maxNorm);
        if (norm == null) return 0;
        double v = norm.item();
        norm.close();
        return v;
    }

    /**
     * The L2 norm over all gradients together (squares summed in f64, tensor by tensor in list order, so the
     * bits do not depend on threads); with {@code maxNorm} &gt; 0 every gradient is multiplied by
     * min(1, maxNorm / (norm + 1e-6)), torch's clamped coefficient (a factor of 1 leaves it unchanged). All on
     * the gradients' device, the coefficient too: nothing is read back. Returns the norm before clipping, an
     * f64 scalar tensor on that device (outside any scope); null when no parameter has a gradient.
     */
    public static Tensor clipOnDevice(List<Tensor> params, double maxNorm) {
        try (var g = Autograd.noGrad(); var scope = Scope.open()) {
            Tensor sq = null;
            for (Tensor p : params) {
                if (p.grad() == null) continue;
                Tensor s = p.grad().to(DType.F64).square().sum();
                sq = sq == null ? s : sq.add(s);
            }
            if (sq == null) return null;
            Tensor norm = sq.sqrt();
            if (maxNorm > 0) {
                Tensor coef = Tensor.full(norm.device(), DType.F64, maxNorm).div(norm.add(1e-6)).clamp(0, 1);
                for (Tensor p : params) {
                    Tensor grad = p.grad();
                    if (grad != null) grad.assign(grad.to(DType.F64).mul(coef));
                }
            }
            return Scope.unscoped(norm);
        }
    }
}

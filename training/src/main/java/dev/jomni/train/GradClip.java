package dev.jomni.train;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Tensor;
import java.util.List;

/** Clipping by global norm, as torch.nn.utils.clip_grad_norm_ (what HF's max_grad_norm calls). */
public final class GradClip {
    private GradClip() {}

    /**
     * The L2 norm over all gradients together (summed in f64, tensor by tensor in list order, so the bits
     * do not depend on threads); when it exceeds {@code maxNorm} (&gt; 0) every gradient is scaled by
     * maxNorm / (norm + 1e-6), torch's coefficient. Returns the norm before clipping.
     */
    public static double clip(List<Tensor> params, double maxNorm) {
        double sq = 0;
        for (Tensor p : params) {
            if (p.grad() == null) continue;
            for (float g : p.grad().toFloatArray()) sq += (double) g * g;
        }
        double norm = Math.sqrt(sq);
        if (maxNorm > 0) {
            double coef = maxNorm / (norm + 1e-6);
            if (coef < 1)
                try (var g = Autograd.noGrad()) {
                    for (Tensor p : params) if (p.grad() != null) p.grad().assign(p.grad().mul(coef));
                }
        }
        return norm;
    }
}

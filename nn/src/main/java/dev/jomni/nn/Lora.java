package dev.jomni.nn;

import dev.jomni.tensor.Tensor;
import java.util.Arrays;

/**
 * A low-rank update of a frozen {@link Linear} (LoRA, arXiv:2106.09685): y += scaling · (x·Aᵀ)·Bᵀ,
 * a [r, in], b [out, r], scaling = alpha / r. A and B are the trainable tensors; the base weight is not touched.
 */
public record Lora(Tensor a, Tensor b, double scaling) {
    public Lora {
        if (a.rank() != 2 || b.rank() != 2 || a.size(0) != b.size(1))
            throw new IllegalArgumentException("lora: A " + Arrays.toString(a.shape()) + " and B " + Arrays.toString(b.shape())
                    + " are not [r, in] and [out, r]");
    }

    public int rank() { return a.size(0); }

    /** x: [..., in] → [..., out], the update alone. */
    Tensor forward(Tensor x) {
        return x.matmul(a.mT()).matmul(b.mT()).mul(scaling);
    }
}

package dev.jomni.nn;

import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;

/**
 * A low-rank update of a frozen {@link Linear} (LoRA, arXiv:2106.09685): y += scaling · (dropout(x)·Aᵀ)·Bᵀ,
 * a [r, in], b [out, r], scaling = alpha / r (rsLoRA: alpha / √r). A and B are the trainable tensors (kept in
 * their own dtype, f32 master weights when training, cast to x's dtype for the product); the base weight is not
 * touched. {@code dropout} is null for none; {@code site} tells this update's dropout masks from the others'.
 */
public record Lora(Tensor a, Tensor b, double scaling, Dropout dropout, int site) {
    public Lora {
        if (a.rank() != 2 || b.rank() != 2 || a.size(0) != b.size(1))
            throw new IllegalArgumentException("lora: A " + Arrays.toString(a.shape()) + " and B " + Arrays.toString(b.shape())
                    + " are not [r, in] and [out, r]");
    }

    public Lora(Tensor a, Tensor b, double scaling) { this(a, b, scaling, null, 0); }

    public int rank() { return a.size(0); }

    /** x: [..., in] → [..., out], the update alone. */
    Tensor forward(Tensor x) {
        Tensor in = dropout == null ? x : dropout.apply(x, site);
        Tensor a = this.a.dtype() == x.dtype() ? this.a : this.a.to(x.dtype());
        Tensor b = this.b.dtype() == x.dtype() ? this.b : this.b.to(x.dtype());
        return in.matmul(a.mT()).matmul(b.mT()).mul(scaling);
    }

    /**
     * PEFT's lora_dropout on the update's input, shared by the updates of one adapter. Masks are drawn from a
     * generator seeded by (step seed, site), not from one running stream, so a forward pass recomputed for
     * activation checkpointing draws the same masks, and a resumed run the same as an uninterrupted one.
     */
    public static final class Dropout {
        private final double p;
        private long seed;
        private boolean training;

        public Dropout(double p) {
            if (p < 0 || p >= 1) throw new IllegalArgumentException("lora_dropout " + p + " must be in [0, 1)");
            this.p = p;
        }

        public double p() { return p; }

        /** Dropout on (with masks keyed by {@code seed}) or off (identity, for evaluation). */
        public void set(boolean training, long seed) {
            this.training = training;
            this.seed = seed;
        }

        Tensor apply(Tensor x, int site) {
            if (!training || p == 0) return x;
            return x.dropout(p, new Generator(mix(seed, site)), true);
        }

        /** SplitMix64's finaliser over seed and site: distinct, well-spread generator seeds. */
        static long mix(long seed, long site) {
            long z = seed + 0x9E3779B97F4A7C15L * (site + 1);
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }
    }
}

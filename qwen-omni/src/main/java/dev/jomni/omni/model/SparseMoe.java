package dev.jomni.omni.model;

import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.nn.Parameter;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import java.util.List;

/**
 * Sparse mixture of experts (thinker.model.layers.N.mlp): a softmax router picks K experts per token;
 * y = Σ_k w_k · expert_{e_k}(x), w renormalised to sum 1 when norm_topk_prob. No shared expert, no
 * capacity limit. Routing stays on the device (softmax, top-k); the experts are one {@link MoeExperts} op.
 */
final class SparseMoe extends Module {
    final Linear gate;                                          // router: [E, H]
    final Experts experts;
    private final int topK;
    private final boolean normTopkProb;

    SparseMoe(TextConfig c) {
        gate = child("gate", new Linear(c.hiddenSize(), c.numExperts(), false));
        experts = child("experts", new Experts(c.numExperts(), c.hiddenSize(), c.moeIntermediateSize()));
        topK = c.numExpertsPerTok();
        normTopkProb = c.normTopkProb();
    }

    /** x: [B, T, H] → [B, T, H]; router logits [B·T, E] are handed to {@code routerLogits} when not null. */
    Tensor forward(Tensor x, List<Tensor> routerLogits) {
        int[] shape = x.shape();
        Tensor flat = x.reshape(-1, shape[shape.length - 1]);   // [N, H]
        Tensor logits = gate.forward(flat);                     // [N, E]
        if (routerLogits != null) routerLogits.add(logits);
        var top = logits.to(x.dtype().atLeastF32()).softmax(-1).topk(topK, -1, true);
        Tensor w = top.values();                                // [N, K], f32
        if (normTopkProb) w = w.div(w.sum(-1, true));
        return experts.forward(flat, top.indices(), w.to(x.dtype())).reshape(shape);
    }

    /**
     * thinker.model.layers.N.mlp.experts, stacked as transformers 5 keeps them: gate_up_proj [E, 2I, H] (each
     * expert's gate rows, then its up rows) and down_proj [E, H, I]. The release stores one tensor per expert;
     * {@link StackedExperts} stacks them while loading.
     */
    static final class Experts extends Module {
        final Parameter gateUpProj, downProj;
        // Not parameters: an adapter is loaded, trained and saved on its own (LoraAdapter), the checkpoint stays as it is.
        MoeExperts.Lora gateUpLora, downLora;

        Experts(int experts, int hidden, int intermediate) {
            gateUpProj = parameter("gate_up_proj", experts, 2 * intermediate, hidden);
            downProj = parameter("down_proj", experts, hidden, intermediate);
        }

        int count() { return gateUpProj.shape()[0]; }

        /** x [N, H], ids [N, K] i64, w [N, K] in x's dtype → [N, H]; NF4 experts (both, Nf4Plan) go to the op's NF4 form. */
        Tensor forward(Tensor x, Tensor ids, Tensor w) {
            if (gateUpProj.isNf4())
                return MoeExperts.moeExperts(x, ids, w, gateUpProj.nf4(), downProj.nf4(), count(), in(gateUpLora, x.dtype()), in(downLora, x.dtype()));
            return MoeExperts.moeExperts(x, ids, w, gateUpProj.value(), downProj.value(), in(gateUpLora, x.dtype()), in(downLora, x.dtype()));
        }

        /**
         * The update in the compute dtype: the op takes every floating input in x's dtype, and a trained adapter keeps
         * f32 master A and B beside a bf16 base; the cast is recorded, so their gradients come back in f32.
         */
        private static MoeExperts.Lora in(MoeExperts.Lora l, DType dtype) {
            if (l == null || l.a().dtype() == dtype && l.b().dtype() == dtype) return l;
            return new MoeExperts.Lora(l.a().to(dtype), l.b().to(dtype), l.scaling());
        }
    }
}

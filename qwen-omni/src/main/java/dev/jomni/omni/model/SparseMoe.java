package dev.jomni.omni.model;

import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.nn.ModuleList;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Sparse mixture of experts (thinker.model.layers.N.mlp): a softmax router picks K experts per token;
 * y = Σ_k w_k · expert_{e_k}(x), w renormalised to sum 1 when norm_topk_prob. No shared expert, no
 * capacity limit. Experts run in increasing index and accumulate with index_add, as transformers' eager path.
 */
final class SparseMoe extends Module {
    final Linear gate;                                          // router: [E, H]
    final ModuleList<SwiGlu> experts;
    private final int topK;
    private final boolean normTopkProb;

    SparseMoe(TextConfig c) {
        gate = child("gate", new Linear(c.hiddenSize(), c.numExperts(), false));
        experts = child("experts", new ModuleList<>(c.numExperts(), e -> new SwiGlu(c.hiddenSize(), c.moeIntermediateSize())));
        topK = c.numExpertsPerTok();
        normTopkProb = c.normTopkProb();
    }

    /** x: [B, T, H] → [B, T, H]; router logits [B·T, E] are handed to {@code routerLogits} when not null. */
    Tensor forward(Tensor x, List<Tensor> routerLogits) {
        int[] shape = x.shape();
        int hidden = shape[shape.length - 1];
        Tensor flat = x.reshape(-1, hidden);                    // [N, H]
        int n = flat.size(0);
        Tensor logits = gate.forward(flat);                     // [N, E]
        if (routerLogits != null) routerLogits.add(logits);
        var top = logits.to(DType.F32).softmax(-1).topk(topK, -1, true);
        Tensor w = top.values();                                // [N, K]
        if (normTopkProb) w = w.div(w.sum(-1, true));
        Tensor weights = w.to(x.dtype()).reshape(-1);           // [N·K]
        long[] chosen = top.indices().toLongArray();
        List<List<Long>> tokens = new ArrayList<>(), slots = new ArrayList<>();
        for (int e = 0; e < experts.size(); e++) {
            tokens.add(new ArrayList<>());
            slots.add(new ArrayList<>());
        }
        for (int i = 0; i < chosen.length; i++) {
            tokens.get((int) chosen[i]).add((long) (i / topK));
            slots.get((int) chosen[i]).add((long) i);
        }
        Tensor out = Tensor.zeros(x.device(), x.dtype(), n, hidden);
        for (int e = 0; e < experts.size(); e++) {
            if (tokens.get(e).isEmpty()) continue;
            Tensor rows = index(tokens.get(e)).to(x.device()), slot = index(slots.get(e)).to(x.device());
            Tensor y = experts.get(e).forward(flat.indexSelect(0, rows)).mul(weights.indexSelect(0, slot).unsqueeze(1));
            out = out.indexAdd(0, rows, y);
        }
        return out.reshape(shape);
    }

    private static Tensor index(List<Long> values) {
        long[] v = new long[values.size()];
        for (int i = 0; i < v.length; i++) v[i] = values.get(i);
        return Tensor.of(v, v.length);
    }
}

package dev.jomni.omni.model;

import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.nn.RmsNorm;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;

/**
 * thinker.model.layers.N.self_attn: GQA with per-head RMSNorm on q and k before RoPE, then
 * softmax(q·kᵀ/√d) v under the causal and padding mask (one coarse op, scaledDotProductAttention:
 * no expanded K/V, no [T, S] scores), no biases.
 */
final class Attention extends Module {
    final Linear qProj, kProj, vProj, oProj;
    final RmsNorm qNorm, kNorm;
    private final int heads, kvHeads, headDim;

    Attention(TextConfig c) {
        heads = c.numAttentionHeads();
        kvHeads = c.numKeyValueHeads();
        headDim = c.headDim();
        qProj = child("q_proj", new Linear(c.hiddenSize(), heads * headDim, false));
        kProj = child("k_proj", new Linear(c.hiddenSize(), kvHeads * headDim, false));
        vProj = child("v_proj", new Linear(c.hiddenSize(), kvHeads * headDim, false));
        oProj = child("o_proj", new Linear(heads * headDim, c.hiddenSize(), false));
        qNorm = child("q_norm", new RmsNorm(headDim, c.rmsNormEps()));
        kNorm = child("k_norm", new RmsNorm(headDim, c.rmsNormEps()));
    }

    /**
     * @param x    [B, T, H]
     * @param mask  causal after the cached tokens, hiding the padding keys of each batch row (unused, may be null,
     *              when the cache {@link KvCache#decodes} this step)
     * @param cache null, or the layer's cache (this step's k, v are appended)
     */
    Tensor forward(Tensor x, Rope rope, AttentionMask mask, KvCache cache, int layer) {
        int b = x.size(0), t = x.size(1);
        Tensor q = rope.apply(qNorm.forward(qProj.forward(x).reshape(b, t, heads, headDim)).transpose(1, 2));     // [B, nh, T, d]
        Tensor k = rope.apply(kNorm.forward(kProj.forward(x).reshape(b, t, kvHeads, headDim)).transpose(1, 2));   // [B, nkv, T, d]
        Tensor v = vProj.forward(x).reshape(b, t, kvHeads, headDim).transpose(1, 2);
        if (cache != null && cache.decodes(t))                 // one token per row over the paged cache: no mask, no gather
            return oProj.forward(cache.attend(layer, q, k, v).transpose(1, 2).reshape(b, t, heads * headDim));
        if (cache != null) {
            Tensor[] kv = cache.append(layer, k, v);
            k = kv[0];
            v = kv[1];
        }
        // GQA inside the op: query head h reads kv head ⌊h / (nh / nkv)⌋ of the cached [B, nkv, S, d].
        Tensor o = q.scaledDotProductAttention(k, v, mask).transpose(1, 2).reshape(b, t, heads * headDim);   // [B, T, nh·d]
        return oProj.forward(o);
    }
}

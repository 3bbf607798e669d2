package dev.jomni.omni.model;

import dev.jomni.nn.Module;
import dev.jomni.nn.RmsNorm;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import java.util.List;

/** thinker.model.layers.N:  h ← h + Attn(RMSNorm(h));  h ← h + MLP(RMSNorm(h)), MLP sparse or dense. */
final class DecoderLayer extends Module {
    final RmsNorm inputLayernorm, postAttentionLayernorm;
    final Attention selfAttn;
    private final SparseMoe moe;                               // mlp.gate; mlp.experts.gate_up_proj [E, 2I, H], down_proj [E, H, I]
    private final SwiGlu dense;                                // mlp.{gate,up,down}_proj in mlp_only_layers
    private final int index;

    DecoderLayer(TextConfig c, int index) {
        this.index = index;
        inputLayernorm = child("input_layernorm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
        selfAttn = child("self_attn", new Attention(c));
        postAttentionLayernorm = child("post_attention_layernorm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
        if (c.isMoeLayer(index)) {
            moe = child("mlp", new SparseMoe(c));
            dense = null;
        } else {
            dense = child("mlp", new SwiGlu(c.hiddenSize(), c.intermediateSize()));
            moe = null;
        }
    }

    Tensor forward(Tensor h, Rope rope, AttentionMask mask, KvCache cache, List<Tensor> routerLogits) {   // h: [B, T, H]
        h = h.add(selfAttn.forward(inputLayernorm.forward(h), rope, mask, cache, index));
        Tensor x = postAttentionLayernorm.forward(h);
        return h.add(moe != null ? moe.forward(x, routerLogits) : dense.forward(x));
    }
}

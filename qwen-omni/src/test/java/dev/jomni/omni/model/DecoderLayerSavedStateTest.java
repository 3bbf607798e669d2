package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jomni.nn.Parameter;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * What a training-mode forward of one decoder layer keeps for backward, against a hand count: each coarse
 * op's declared saved state and nothing else (no scores, no expert intermediates, no f32 copies of norms).
 */
class DecoderLayerSavedStateTest {
    // B batch, T tokens, H hidden, nh/nkv heads, d head_dim, E experts, K top-k, I expert width
    static final int B = 2, T = 5, H = 48, NH = 4, NKV = 2, D = 16, E = 8, K = 2, I = 24;

    @Test
    void aDecoderLayerKeepsWhatItsOpsDeclare() {
        var c = new TextConfig(H, 1, NH, NKV, D, 64, 1e-6, E, K, I, true, 1, List.of(), 0, 0, false, 1e6, List.of(2, 3, 3));
        var layer = new DecoderLayer(c, 0);
        var gen = new Generator(5);
        for (Parameter p : layer.parameters().values()) p.set(Tensor.randn(gen, DType.F32, p.shape()).mul(0.1).requiresGrad(true));
        long[] mask = new long[B * T];
        java.util.Arrays.fill(mask, 1);
        Rope rope = Rope.of(c, Thinker.positions(mask, B, T, T), DType.F32, Device.cpu());
        AttentionMask attend = AttentionMask.causal(0).withKeyMask(Tensor.of(mask, B, T));
        try (var scope = Scope.open()) {
            // h0 is an intermediate (not a parameter), as a layer's input is in a model
            Tensor h0 = Tensor.randn(gen, DType.F32, B, T, H).requiresGrad(true).mul(1.0);
            Tensor out = layer.forward(h0, rope, attend, null, null);
            long n = B * T, f = 4;
            long expected = 0;
            expected += f * n * H + f * n;                   // input_layernorm: x = h0, rstd [N]
            expected += f * n * H;                           // q/k/v_proj: their common input (the norm's output)
            expected += f * n * NH * D + f * n * NH;         // q_norm: q_proj's output, rstd [N·nh]
            expected += f * n * NKV * D + f * n * NKV;       // k_norm: k_proj's output, rstd [N·nkv]
            expected += 2 * f * n * D;                       // rope: the cos and sin tables [B, T, d], shared by q and k
            expected += f * n * NH * D + f * n * NKV * D;    // attention: q and k after rope
            expected += f * n * NKV * D;                     //            v (v_proj's output)
            expected += f * n * NH * D + f * n * NH;         //            out (also o_proj's input) and lse [B, nh, T]
            expected += n;                                   //            the key-padding mask, bool [B, S]
            expected += f * n * H + f * n;                   // post_attention_layernorm: x = h1, rstd
            expected += f * n * H;                           // mlp.gate and the experts: their common input
            expected += f * n * E;                           // router softmax: its output [N, E]
            expected += 8 * n * K;                           // top-k ids [N, K] i64 (gather's index, the experts' ids)
            expected += f * n + f * n * K;                   // renormalisation w / Σw: the sum [N, 1] and the quotient
            assertEquals(expected, Autograd.savedBytes(out, false), "bytes the tape holds beyond the parameters");
        }
    }
}

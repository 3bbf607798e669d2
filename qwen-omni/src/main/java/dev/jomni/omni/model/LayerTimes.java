package dev.jomni.omni.model;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;

/**
 * Where a training step's time goes, measured part by part on one decoder layer (all layers have the same
 * shapes) and on lm_head with the loss: each part runs on its own graph from a leaf input, the device
 * synchronised around its forward and its backward, so the times are the parts' own (the whole step, measured
 * without synchronisation, is the reference they are compared with). Whatever adapter is attached is included.
 */
public final class LayerTimes {
    private LayerTimes() {}

    /** Milliseconds of one forward and one backward (into the parts' inputs and their LoRA tensors). */
    public record Part(double forwardMs, double backwardMs) {}

    /** Self-attention with its input norm, the MoE block with its norm, and lm_head + cross-entropy (forward and backward together in head). */
    public record Times(Part attention, Part moe, Part head) {}

    /**
     * Times layer {@code layer}'s parts and the head at {@code tokens} tokens (B = 1), the median of {@code reps}
     * after one warm-up run of each.
     */
    public static Times measure(Thinker thinker, int layer, int tokens, int reps, long seed) {
        Device device = thinker.device();
        DType dtype = thinker.lmHead.weight.value().dtype();
        DecoderLayer l = thinker.model.layers.items().get(layer);
        SparseMoe moe = thinker.modules().get("model.layers." + layer + ".mlp") instanceof SparseMoe m ? m : null;
        var text = thinker.config.text();
        long[] ones = new long[tokens];
        java.util.Arrays.fill(ones, 1);
        Rope rope = Rope.of(text, Thinker.positions(ones, 1, tokens, tokens), dtype, device);
        AttentionMask mask = AttentionMask.causal(0);
        var gen = new Generator(seed);
        Tensor x = Tensor.randn(gen, DType.F32, 1, tokens, text.hiddenSize()).to(dtype).to(device);
        Tensor dy = Tensor.randn(gen, DType.F32, 1, tokens, text.hiddenSize()).mul(1e-3).to(dtype).to(device);
        Tensor labels = Tensor.rand(gen, DType.F32, 1, tokens).mul(text.vocabSize() - 1).to(DType.I64).to(device);
        Part attention = part(device, reps, x, dy, in -> l.selfAttn.forward(l.inputLayernorm.forward(in), rope, mask, null, layer));
        Part experts = moe == null ? new Part(Double.NaN, Double.NaN)
                : part(device, reps, x, dy, in -> moe.forward(l.postAttentionLayernorm.forward(in), null));
        Part head = part(device, reps, x, null, in -> thinker.hiddenLoss(in, labels));
        return new Times(attention, experts, head);
    }

    private static Part part(Device device, int reps, Tensor x, Tensor dy, java.util.function.UnaryOperator<Tensor> f) {
        double[] fwd = new double[reps], bwd = new double[reps];
        for (int r = -1; r < reps; r++) {
            try (var scope = Scope.open()) {
                Tensor in = x.detach().requiresGrad(true);
                sync(device);
                long t0 = System.nanoTime();
                Tensor y = f.apply(in);
                sync(device);
                long t1 = System.nanoTime();
                if (dy == null) y.backward();
                else y.backward(dy);
                sync(device);
                long t2 = System.nanoTime();
                if (r >= 0) {
                    fwd[r] = (t1 - t0) / 1e6;
                    bwd[r] = (t2 - t1) / 1e6;
                }
            }
        }
        java.util.Arrays.sort(fwd);
        java.util.Arrays.sort(bwd);
        return new Part(fwd[reps / 2], bwd[reps / 2]);
    }

    private static void sync(Device device) {
        device.synchronize();
    }
}

package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** LayerNorm over the last axis with weight and bias. */
public final class LayerNorm extends Module {
    public final Parameter weight, bias;
    private final double eps;

    public LayerNorm(int n, double eps) {
        weight = parameter("weight", n);
        bias = parameter("bias", n);
        this.eps = eps;
    }

    public Tensor forward(Tensor x) { return x.layerNorm(weight.value(), bias.value(), eps); }
}

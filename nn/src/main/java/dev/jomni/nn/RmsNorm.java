package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** RMSNorm over the last axis (arXiv:1910.07467), statistics in f32. */
public final class RmsNorm extends Module {
    public final Parameter weight;
    private final double eps;

    public RmsNorm(int n, double eps) {
        weight = parameter("weight", n);
        this.eps = eps;
    }

    public Tensor forward(Tensor x) { return x.rmsNorm(weight.value(), eps); }
}

package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** RMSNorm over the last axis (arXiv:1910.07467), statistics in f32: the coarse op {@link dev.jomni.tensor.ops.RmsNorm}. */
public final class RmsNorm extends Module {
    public final Parameter weight;
    private final double eps;

    public RmsNorm(int n, double eps) {
        weight = parameter("weight", n);
        this.eps = eps;
    }

    public Tensor forward(Tensor x) { return dev.jomni.tensor.ops.RmsNorm.rmsNorm(x, weight.value(), eps); }
}

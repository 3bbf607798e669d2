package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** y = x·Wᵀ + b, W stored [out, in] as in the checkpoints. */
public final class Linear extends Module {
    public final Parameter weight, bias;

    public Linear(int in, int out, boolean bias) {
        weight = parameter("weight", out, in);
        this.bias = bias ? parameter("bias", out) : null;
    }

    public Tensor forward(Tensor x) {                       // x: [..., in] → [..., out]
        Tensor y = x.matmul(weight.value().mT());
        return bias == null ? y : y.add(bias.value());
    }
}

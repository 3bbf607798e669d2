package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** 2-D convolution, weight [out, in, k, k], bias [out]. */
public final class Conv2d extends Module {
    public final Parameter weight, bias;
    private final int stride, padding;

    public Conv2d(int in, int out, int kernel, int stride, int padding) {
        weight = parameter("weight", out, in, kernel, kernel);
        bias = parameter("bias", out);
        this.stride = stride;
        this.padding = padding;
    }

    public Tensor forward(Tensor x) { return x.conv2d(weight.value(), bias.value(), stride, padding); }   // [B,C,H,W]
}

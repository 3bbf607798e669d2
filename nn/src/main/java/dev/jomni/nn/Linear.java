package dev.jomni.nn;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import java.util.Arrays;

/**
 * y = x·Wᵀ + b (+ an optional {@link Lora} update), W stored [out, in] as in the checkpoints. W may be held frozen in
 * NF4 ({@link Parameter#set(dev.jomni.tensor.ops.Nf4Weight)}, QLoRA): the product is then nf4Matmul, which never
 * writes the dense W, and a LoRA update attaches the same way.
 */
public final class Linear extends Module {
    public final Parameter weight, bias;
    // Not a parameter: an adapter is loaded, trained and saved on its own, the checkpoint stays as it is.
    private Lora lora;

    public Linear(int in, int out, boolean bias) {
        weight = parameter("weight", out, in);
        this.bias = bias ? parameter("bias", out) : null;
    }

    public Tensor forward(Tensor x) {                       // x: [..., in] → [..., out]
        Tensor y = weight.isNf4() ? Nf4Matmul.nf4Matmul(x, weight.nf4()) : x.matmul(weight.value().mT());
        if (bias != null) y = y.add(bias.value());
        return lora == null ? y : y.add(lora.forward(x));
    }

    public Lora lora() { return lora; }

    /** Attaches a LoRA update (null removes it); its A must be [r, in] and its B [out, r] for this layer. */
    public void lora(Lora l) {
        int[] w = weight.shape();
        if (l != null && (l.a().size(1) != w[1] || l.b().size(0) != w[0]))
            throw new IllegalArgumentException(weight.name() + " " + Arrays.toString(w) + ": LoRA A " + Arrays.toString(l.a().shape())
                    + ", B " + Arrays.toString(l.b().shape()) + " do not fit [r, " + w[1] + "] and [" + w[0] + ", r]");
        lora = l;
    }
}

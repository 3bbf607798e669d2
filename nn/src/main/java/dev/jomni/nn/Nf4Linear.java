package dev.jomni.nn;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.Arrays;

/**
 * y = x·Wᵀ + b (+ an optional {@link Lora} update) with W frozen in NF4 (QLoRA): the weight is no
 * parameter (it gets no gradient and no optimizer state), the bias is one. LoRA attaches as on {@link Linear}.
 */
public final class Nf4Linear extends Module {
    private final int in, out;
    private Nf4Weight weight;
    public final Parameter bias;
    private Lora lora;

    public Nf4Linear(int in, int out, boolean bias) {
        this.in = in;
        this.out = out;
        this.bias = bias ? parameter("bias", out) : null;
    }

    public Nf4Weight weight() { return weight; }

    /** Sets the frozen weight; it must be [out, in]. */
    public void weight(Nf4Weight w) {
        if (w.rows() != out || w.cols() != in)
            throw new IllegalArgumentException("nf4 linear [" + out + ", " + in + "]: weight " + Arrays.toString(w.shape()) + " does not fit");
        weight = w;
    }

    public Tensor forward(Tensor x) {                       // x: [..., in] → [..., out]
        if (weight == null) throw new IllegalStateException("nf4 linear [" + out + ", " + in + "]: weight not set");
        Tensor y = Nf4Matmul.nf4Matmul(x, weight);
        if (bias != null) y = y.add(bias.value());
        return lora == null ? y : y.add(lora.forward(x));
    }

    public Lora lora() { return lora; }

    /** Attaches a LoRA update (null removes it); its A must be [r, in] and its B [out, r]. */
    public void lora(Lora l) {
        if (l != null && (l.a().size(1) != in || l.b().size(0) != out))
            throw new IllegalArgumentException("nf4 linear [" + out + ", " + in + "]: LoRA A " + Arrays.toString(l.a().shape())
                    + ", B " + Arrays.toString(l.b().shape()) + " do not fit [r, " + in + "] and [" + out + ", r]");
        lora = l;
    }
}

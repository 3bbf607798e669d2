package dev.jomni.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Test;

class LinearLoraTest {
    @Test
    void loraAddsScaledLowRankProductToTheFrozenLayer() {
        int in = 5, out = 3, r = 2;
        var gen = new Generator(11);
        var linear = new Linear(in, out, true);
        float[] w = Tensor.randn(gen, DType.F32, out, in).toFloatArray(), b = Tensor.randn(gen, DType.F32, out).toFloatArray();
        float[] a = Tensor.randn(gen, DType.F32, r, in).toFloatArray(), bb = Tensor.randn(gen, DType.F32, out, r).toFloatArray();
        float[] x = Tensor.randn(gen, DType.F32, 4, in).toFloatArray();
        linear.weight.set(Tensor.of(w, out, in));
        linear.bias.set(Tensor.of(b, out));
        Tensor la = Tensor.of(a, r, in).requiresGrad(true), lb = Tensor.of(bb, out, r).requiresGrad(true);
        linear.lora(new Lora(la, lb, 0.5));
        Tensor y = linear.forward(Tensor.of(x, 4, in));
        float[] want = new float[4 * out];                      // y = x·(W + 0.5·B·A)ᵀ + b, by hand
        for (int n = 0; n < 4; n++)
            for (int o = 0; o < out; o++) {
                double s = b[o];
                for (int i = 0; i < in; i++) {
                    double merged = w[o * in + i];
                    for (int k = 0; k < r; k++) merged += 0.5 * bb[o * r + k] * a[k * in + i];
                    s += x[n * in + i] * merged;
                }
                want[n * out + o] = (float) s;
            }
        assertArrayEquals(want, y.toFloatArray(), 1e-5f);
        y.sum().backward();
        assertTrue(la.grad() != null && lb.grad() != null, "A and B get gradients");
        assertNull(linear.weight.value().grad(), "the base weight stays frozen");
        linear.lora(null);
        assertArrayEquals(Tensor.of(x, 4, in).matmul(Tensor.of(w, out, in).mT()).add(Tensor.of(b, out)).toFloatArray(),
                linear.forward(Tensor.of(x, 4, in)).toFloatArray(), 1e-6f);
    }

    @Test
    void loraOfTheWrongShapeIsRefusedNamingTheWeight() {
        var linear = new Linear(5, 3, false);
        var e = assertThrows(IllegalArgumentException.class, () -> linear.lora(new Lora(Tensor.zeros(DType.F32, 2, 4), Tensor.zeros(DType.F32, 3, 2), 1)));
        assertTrue(e.getMessage().startsWith("weight [3, 5]: LoRA A [2, 4], B [3, 2] do not fit [r, 5] and [3, r]"), e.getMessage());
    }
}

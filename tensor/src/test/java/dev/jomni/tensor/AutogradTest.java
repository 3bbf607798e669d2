package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class AutogradTest {
    @Test
    void leafGradientsAccumulateAcrossBackwardCalls() {
        Tensor w = Tensor.of(new double[] {1, 2, 3}, 3).requiresGrad(true);
        w.mul(w).sum().backward();                         // d/dw Σw² = 2w
        assertArrayEquals(new double[] {2, 4, 6}, w.grad().toDoubleArray());
        w.mul(3).sum().backward();
        assertArrayEquals(new double[] {5, 7, 9}, w.grad().toDoubleArray());
        w.zeroGrad();
        assertNull(w.grad());
    }

    @Test
    void aTensorUsedTwiceGetsBothContributions() {
        Tensor x = Tensor.of(new double[] {2}, 1).requiresGrad(true);
        Tensor y = x.mul(x).add(x.exp());                  // dy/dx = 2x + e^x
        y.backward(Tensor.of(new double[] {1}, 1));
        assertEquals(4 + Math.exp(2), x.grad().item(), 1e-12);
    }

    @Test
    void graphIsFreedAfterBackward() {
        Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
        Tensor loss = x.square().sum();
        loss.backward();
        var e = assertThrows(IllegalStateException.class, loss::backward);
        assertTrue(e.getMessage().contains("freed"), e.getMessage());
    }

    @Test
    void noGradAndDetachRecordNothing() {
        Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
        try (var g = Autograd.noGrad()) {
            assertFalse(x.mul(2).requiresGrad());
        }
        assertTrue(x.mul(2).requiresGrad());
        assertFalse(x.detach().mul(2).requiresGrad());
        assertThrows(IllegalStateException.class, () -> x.detach().sum().backward());
    }

    @Test
    void backwardNeedsAScalarOrAGradient() {
        Tensor x = Tensor.of(new double[] {1, 2}, 2).requiresGrad(true);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> x.mul(2).backward()).getMessage().startsWith("backward: needs a one-element tensor"));
        assertThrows(IllegalArgumentException.class, () -> x.mul(2).backward(Tensor.ones(DType.F64, 3)));
    }

    @Test
    void integerTensorsCannotRequireGrad() {
        assertThrows(IllegalArgumentException.class, () -> Tensor.of(new long[] {1}, 1).requiresGrad(true));
    }

    @Test
    void checkpointRecomputesForwardDuringBackwardAndGivesTheSameGradients() {
        Generator g = new Generator(4);
        Tensor w1 = Tensor.randn(g, DType.F64, 4, 4).requiresGrad(true), x = Tensor.randn(g, DType.F64, 3, 4).requiresGrad(true);
        AtomicInteger calls = new AtomicInteger();
        java.util.function.Function<Tensor[], Tensor> block = in -> {
            calls.incrementAndGet();
            return in[0].matmul(w1).tanh().matmul(w1).silu();
        };
        block.apply(new Tensor[] {x}).sum().backward();
        double[] gw = w1.grad().toDoubleArray(), gx = x.grad().toDoubleArray();
        w1.zeroGrad();
        x.zeroGrad();
        calls.set(0);
        Tensor y = Autograd.checkpoint(block, x);
        assertEquals(1, calls.get());
        y.sum().backward();
        assertEquals(2, calls.get());                      // forward ran again during backward
        assertArrayEquals(gw, w1.grad().toDoubleArray(), 1e-12);
        assertArrayEquals(gx, x.grad().toDoubleArray(), 1e-12);
    }
}

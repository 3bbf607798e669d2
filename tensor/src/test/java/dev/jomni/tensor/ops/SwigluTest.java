package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.OpAsserts.assertBitEqual;
import static dev.jomni.tensor.ops.OpAsserts.assertClose;
import static dev.jomni.tensor.ops.OpAsserts.assertWithinVectorPaths;
import static dev.jomni.tensor.ops.OpAsserts.gradcheck;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SwigluTest {
    @Test
    void handComputedValues() {
        // silu(0) = 0, silu(2) = 2/(1+e^-2), silu(-1) = -1/(1+e)
        Tensor gate = Tensor.of(new double[] {0, 2, -1}, 3), up = Tensor.of(new double[] {5, 3, -2}, 3);
        double[] expected = {0, 3 * 2 / (1 + Math.exp(-2)), 2 / (1 + Math.E)};
        assertArrayEquals(expected, Swiglu.swiglu(gate, up).toDoubleArray(), 1e-15);
        assertArrayEquals(expected, Swiglu.swiglu(Tensor.cat(List.of(gate, up), 0)).toDoubleArray(), 1e-15);
    }

    @ParameterizedTest(name = "[{0}, {1}, I={2}]")
    @CsvSource({"1,1,1", "2,3,5", "1,1,31", "3,1,4097"})
    void gradientsMatchFiniteDifferences(int a, int b, int inner) {
        Generator gen = new Generator(a * 31 + inner);
        Tensor gate = Tensor.randn(gen, DType.F64, a, b, inner).mul(3), up = Tensor.randn(gen, DType.F64, a, b, inner);
        gradcheck("swiglu two tensors", in -> Swiglu.swiglu(in[0], in[1]), gate, up);
        gradcheck("swiglu halves", in -> Swiglu.swiglu(in[0]), Tensor.cat(List.of(gate, up), -1));
        gradcheck("swiglu of strided views", in -> Swiglu.swiglu(in[0].transpose(0, 1), in[1].transpose(0, 1)), gate, up);
    }

    /** Forward and backward round where gate.silu().mul(up) and its autograd rounded: the same bits in f64, within the vector silu's ulps otherwise. */
    @ParameterizedTest(name = "{0} I={1}")
    @CsvSource({"F32,1", "F32,31", "F32,4097", "BF16,33", "F16,17", "F64,9"})
    void matchesTheComposition(DType type, int inner) {
        Generator gen = new Generator(inner);
        Tensor g0 = Tensor.randn(gen, DType.F32, 5, inner).mul(4).to(type), u0 = Tensor.randn(gen, type, 5, inner);
        Tensor dout = Tensor.randn(gen, type, 5, inner);
        Tensor[] old = run(in -> in[0].silu().mul(in[1]), g0, u0, dout);
        assertWithinVectorPaths("two tensors: out", old[0], run(in -> Swiglu.swiglu(in[0], in[1]), g0, u0, dout)[0]);
        Tensor[] fused = run(in -> Swiglu.swiglu(in[0], in[1]), g0, u0, dout);
        assertWithinVectorPaths("two tensors: dgate", old[1], fused[1]);
        assertWithinVectorPaths("two tensors: dup", old[2], fused[2]);
        // halves of one [rows, 2I] tensor: the gradient is [rows, 2I] = concat(dgate, dup)
        Tensor gu = Tensor.cat(List.of(g0, u0), -1).requiresGrad(true);
        Tensor out = Swiglu.swiglu(gu);
        assertWithinVectorPaths("halves: out", old[0], out);
        out.backward(dout);
        assertWithinVectorPaths("halves: gradient", Tensor.cat(List.of(old[1], old[2]), -1), gu.grad());
    }

    /** {output, dgate, dup} of f on fresh leaves. */
    private static Tensor[] run(java.util.function.Function<Tensor[], Tensor> f, Tensor gate, Tensor up, Tensor dout) {
        Tensor g = gate.detach().requiresGrad(true), u = up.detach().requiresGrad(true);
        Tensor out = f.apply(new Tensor[] {g, u});
        out.backward(dout);
        return new Tensor[] {out.detach(), g.grad(), u.grad()};
    }

    @Test
    void aFrozenUpGetsNoGradientAndGateStillDoes() {
        Generator gen = new Generator(8);
        Tensor gate = Tensor.randn(gen, DType.F32, 4, 6).requiresGrad(true), up = Tensor.randn(gen, DType.F32, 4, 6);
        Swiglu.swiglu(gate, up).sum().backward();
        Tensor g = gate.detach().requiresGrad(true);
        g.silu().mul(up).sum().backward();
        assertClose("dgate", g.grad(), gate.grad(), 0);
    }

    @Test
    void theTapeHoldsOnlyTheOutput() {
        Generator gen = new Generator(2);
        Tensor gu = Tensor.randn(gen, DType.F32, 8, 2 * 24).requiresGrad(true);
        long mark = Memory.mark();
        Swiglu.swiglu(gu);
        assertArrayEquals(new long[] {1, 4L * 8 * 24}, Memory.liveSince(mark), "storages {count, bytes} made by a recorded forward");
    }

    @Test
    void errorsNameTheOpAndTheShapes() {
        var e = assertThrows(IllegalArgumentException.class, () -> Swiglu.swiglu(Tensor.zeros(DType.F32, 2, 3), Tensor.zeros(DType.F32, 2, 4)));
        assertEquals("swiglu: gate [2, 3] and up [2, 4] must have one shape [..., I]", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Swiglu.swiglu(Tensor.zeros(DType.F32, 2, 5)));
        assertEquals("swiglu: gateUp [2, 5] must be [..., 2I] (gate, then up)", e.getMessage());
    }
}

package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.OpAsserts.assertBitEqual;
import static dev.jomni.tensor.ops.OpAsserts.gradcheck;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuRope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RopeTest {
    private static final Rope.Kernels CPU = new CpuRope();

    /** Tables of concat(φ, φ) for angles φ [bt, t, d/2] drawn at random. */
    private static Tensor[] tables(Generator gen, DType type, int bt, int t, int d) {
        double[] c = new double[bt * t * d], s = new double[bt * t * d];
        for (int row = 0; row < bt * t; row++)
            for (int j = 0; j < d / 2; j++) {
                double phi = 3 * gen.nextGaussian();
                c[row * d + j] = c[row * d + j + d / 2] = Math.cos(phi);
                s[row * d + j] = s[row * d + j + d / 2] = Math.sin(phi);
            }
        return new Tensor[] {Tensor.fromDoubles(type, c, bt, t, d), Tensor.fromDoubles(type, s, bt, t, d)};
    }

    @Test
    void handComputedRotation() {
        // d = 4, p = 2: pairs (x0, x2) and (x1, x3) rotate by φ0 = π/2 and φ1 = π
        double[] phi = {Math.PI / 2, Math.PI};
        Tensor cos = Tensor.of(new double[] {Math.cos(phi[0]), Math.cos(phi[1]), Math.cos(phi[0]), Math.cos(phi[1])}, 1, 1, 4);
        Tensor sin = Tensor.of(new double[] {Math.sin(phi[0]), Math.sin(phi[1]), Math.sin(phi[0]), Math.sin(phi[1])}, 1, 1, 4);
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4}, 1, 1, 1, 4);
        // out0 = x0 cos − x2 sin = −3; out1 = −2; out2 = x2 cos + x0 sin = 1; out3 = −4
        assertArrayEquals(new double[] {-3, -2, 1, -4}, Rope.rope(x, cos, sin).toDoubleArray(), 1e-15);
    }

    @ParameterizedTest(name = "x [{0}, {1}, {2}, {3}], table batch {4}")
    @CsvSource({"1,1,1,2,1", "2,3,5,8,2", "2,3,5,8,1", "1,2,31,6,1"})
    void gradientMatchesFiniteDifferencesAndIsTheInverseRotation(int b, int h, int t, int d, int bt) {
        Generator gen = new Generator(b * 100 + d);
        Tensor[] cs = tables(gen, DType.F64, bt, t, d);
        Tensor x = Tensor.randn(gen, DType.F64, b, h, t, d);
        gradcheck("rope", in -> Rope.rope(in[0], cs[0], cs[1]), x);
        // backward of concat(φ, φ) tables rotates by −φ: it undoes the forward rotation
        Tensor dx = Tensor.empty(DType.F64, b, h, t, d), y = Tensor.empty(DType.F64, b, h, t, d);
        CPU.forward(x, cs[0], cs[1], y);
        CPU.backward(y, cs[0], cs[1], dx);
        OpAsserts.assertClose("inverse rotation", x, dx, 1e-14);
    }

    @Test
    void gradientOfAStridedQueryView() {
        // as attention calls it: q [B, T, h, d] transposed to [B, h, T, d]
        Generator gen = new Generator(9);
        Tensor[] cs = tables(gen, DType.F64, 2, 5, 6);
        gradcheck("rope of a transposed view", in -> Rope.rope(in[0].transpose(1, 2), cs[0], cs[1]), Tensor.randn(gen, DType.F64, 2, 5, 3, 6));
    }

    /** Each product and the sum round to the dtype where the composition rounded: the same bits, forward and backward. */
    @ParameterizedTest(name = "{0} d {1}")
    @CsvSource({"F32,2", "F32,64", "BF16,128", "F16,16", "F64,10"})
    void bitIdenticalToTheComposition(DType type, int d) {
        Generator gen = new Generator(d);
        int b = 2, h = 3, t = 7;
        Tensor[] cs = tables(gen, type, b, t, d);
        Tensor x = Tensor.randn(gen, type, b, h, t, d), dy = Tensor.randn(gen, type, b, h, t, d);
        Tensor y0 = Tensor.empty(type, b, h, t, d), y1 = Tensor.empty(type, b, h, t, d);
        Rope.COMPOSED.forward(x, cs[0], cs[1], y0);
        CPU.forward(x, cs[0], cs[1], y1);
        assertBitEqual("y", y0, y1);
        Tensor dx0 = Tensor.empty(type, b, h, t, d), dx1 = Tensor.empty(type, b, h, t, d);
        Rope.COMPOSED.backward(dy, cs[0], cs[1], dx0);
        CPU.backward(dy, cs[0], cs[1], dx1);
        assertBitEqual("dx", dx0, dx1);
    }

    @Test
    void theTapeHoldsNothingNewButTheOutput() {
        Generator gen = new Generator(3);
        Tensor[] cs = tables(gen, DType.F32, 1, 4, 8);
        Tensor x = Tensor.randn(gen, DType.F32, 1, 2, 4, 8).requiresGrad(true);
        long mark = Memory.mark();
        Tensor y = Rope.rope(x, cs[0], cs[1]);
        assertArrayEquals(new long[] {1, 4L * 2 * 4 * 8}, Memory.liveSince(mark), "storages {count, bytes}: the output; the tables are shared");
        assertTrue(y.requiresGrad());
    }

    @Test
    void errorsNameTheOpAndTheShapes() {
        Tensor x = Tensor.zeros(DType.F32, 1, 2, 3, 4);
        var e = assertThrows(IllegalArgumentException.class, () -> Rope.rope(x, Tensor.zeros(DType.F32, 1, 4, 4), Tensor.zeros(DType.F32, 1, 4, 4)));
        assertTrue(e.getMessage().startsWith("rope: tables cos [1, 4, 4], sin [1, 4, 4] do not match x [1, 2, 3, 4]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Rope.rope(Tensor.zeros(DType.F32, 1, 2, 3, 5), Tensor.zeros(DType.F32, 1, 3, 5), Tensor.zeros(DType.F32, 1, 3, 5)));
    }
}

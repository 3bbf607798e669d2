package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.OpAsserts.assertBitEqual;
import static dev.jomni.tensor.ops.OpAsserts.assertClose;
import static dev.jomni.tensor.ops.OpAsserts.gradcheck;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuRmsNorm;
import dev.jomni.tensor.cpu.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RmsNormTest {
    private static final RmsNorm.Kernels SCALAR = new CpuRmsNorm(false), VECTOR = new CpuRmsNorm(true);

    @Test
    void handComputedValuesAndRstd() {
        // row [3, 4]: mean(x²) = 12.5; row [1, -1]: 1. eps 0.5 → rstd 1/√13 and 1/√1.5
        Tensor x = Tensor.of(new double[] {3, 4, 1, -1}, 2, 2), w = Tensor.of(new double[] {1, 2}, 2);
        Tensor y = Tensor.empty(DType.F64, 2, 2), rstd = Tensor.empty(DType.F64, 2);
        SCALAR.forward(x, w, 0.5, y, rstd);
        double a = 1 / Math.sqrt(13), b = 1 / Math.sqrt(1.5);
        assertArrayEquals(new double[] {3 * a, 8 * a, b, -2 * b}, y.toDoubleArray(), 1e-15);
        assertArrayEquals(new double[] {a, b}, rstd.toDoubleArray(), 1e-15);
        assertArrayEquals(y.toDoubleArray(), x.rmsNorm(w, 0.5).toDoubleArray(), 0);
    }

    @Test
    void roundsTheNormalisedValueToXsDtypeBeforeTheWeight() {
        // bf16 x, f32 w: y is f32 = w · bf16(x·rstd); rounding after the weight would give another value
        Tensor x = Tensor.of(new float[] {1, 2, 3}, 3).to(DType.BF16), w = Tensor.of(new float[] {1.001f, 3.3f, 0.7f}, 3);
        Tensor y = x.rmsNorm(w, 1e-6);
        assertEquals(DType.F32, y.dtype());
        float r = (float) (1 / Math.sqrt((float) ((1 + 4 + 9) / 3f + 1e-6)));
        float[] xs = {1, 2, 3}, ws = {1.001f, 3.3f, 0.7f};
        float[] expected = new float[3];
        for (int j = 0; j < 3; j++) {
            float normed = dev.jomni.tensor.HalfPrecision.bf16ToFloat(dev.jomni.tensor.HalfPrecision.floatToBf16(xs[j] * r));
            expected[j] = ws[j] * normed;
        }
        assertArrayEquals(expected, y.toFloatArray(), 0);
    }

    @ParameterizedTest(name = "x {0}")
    @CsvSource({"'1,1'", "'3,5,7'", "'2,31'", "'1,4097'"})
    void gradientsMatchFiniteDifferences(String shape) {
        int[] s = java.util.Arrays.stream(shape.split(",")).mapToInt(Integer::parseInt).toArray();
        Generator gen = new Generator(11);
        Tensor x = Tensor.randn(gen, DType.F64, s), w = Tensor.randn(gen, DType.F64, s[s.length - 1]);
        gradcheck("rmsNorm " + shape, in -> in[0].rmsNorm(in[1], 1e-6), x, w);
    }

    @Test
    void gradientsOfANonContiguousInput() {
        Generator gen = new Generator(12);
        Tensor x = Tensor.randn(gen, DType.F64, 7, 3), w = Tensor.randn(gen, DType.F64, 3);
        gradcheck("rmsNorm transposed", in -> in[0].transpose(0, 1).rmsNorm(in[1], 1e-6).mul(in[0].transpose(0, 1)), x.transpose(0, 1).contiguous(), w.mul(1));
        gradcheck("rmsNorm of a transposed view", in -> in[0].mT().rmsNorm(in[1], 1e-6), x, Tensor.randn(gen, DType.F64, 7));
    }

    /** The scalar reference rounds exactly where the old composition rounded: the same bits. */
    @ParameterizedTest(name = "x {0}, w {1}, n {2}")
    @CsvSource({"F32,F32,1", "F32,F32,31", "F32,F32,4097", "BF16,BF16,31", "BF16,BF16,4097", "BF16,F32,31",
            "F16,F16,33", "F64,F64,31", "F32,BF16,7"})
    void scalarForwardIsBitIdenticalToTheComposition(DType xt, DType wt, int n) {
        Generator gen = new Generator(n);
        int rows = 5;
        Tensor x = Tensor.randn(gen, xt, rows, n).mul(3).to(xt), w = Tensor.randn(gen, wt, n);
        DType yt = DType.promote(xt, wt), c = xt.atLeastF32();
        Tensor y0 = Tensor.empty(yt, rows, n), r0 = Tensor.empty(c, rows), y1 = Tensor.empty(yt, rows, n), r1 = Tensor.empty(c, rows);
        RmsNorm.COMPOSED.forward(x, w, 1e-6, y0, r0);
        SCALAR.forward(x, w, 1e-6, y1, r1);
        assertBitEqual("y", y0, y1);
        assertBitEqual("rstd", r0, r1);
    }

    /** Backward computes in double and rounds once; the composition rounded at each of its steps. */
    @ParameterizedTest(name = "x {0}, w {1}, n {2}")
    @CsvSource({"F64,F64,31,1e-13", "F32,F32,1,1e-6", "F32,F32,31,1e-6", "F32,F32,4097,1e-5", "BF16,BF16,31,2e-2", "BF16,F32,33,1e-2"})
    void backwardMatchesTheComposition(DType xt, DType wt, int n, double tol) {
        Generator gen = new Generator(n + 1);
        int rows = 6;
        Tensor x = Tensor.randn(gen, xt, rows, n), w = Tensor.randn(gen, wt, n);
        DType yt = DType.promote(xt, wt), c = xt.atLeastF32();
        Tensor y = Tensor.empty(yt, rows, n), rstd = Tensor.empty(c, rows);
        SCALAR.forward(x, w, 1e-6, y, rstd);
        Tensor dy = Tensor.randn(gen, yt, rows, n);
        Tensor dx0 = Tensor.empty(xt, rows, n), dw0 = Tensor.empty(wt, n), dx1 = Tensor.empty(xt, rows, n), dw1 = Tensor.empty(wt, n);
        RmsNorm.COMPOSED.backward(dy, x, w, rstd, dx0, dw0);
        SCALAR.backward(dy, x, w, rstd, dx1, dw1);
        assertClose("dx", dx0, dx1, tol);
        assertClose("dw", dw0, dw1, tol);
    }

    @ParameterizedTest(name = "rows {0}, n {1}")
    @CsvSource({"1,1", "3,15", "7,31", "2,4097", "64,2048"})
    void vectorPathMatchesTheScalarReference(int rows, int n) {
        Generator gen = new Generator(rows * 31L + n);
        Tensor x = Tensor.randn(gen, DType.F32, rows, n).mul(2), w = Tensor.randn(gen, DType.F32, n);
        Tensor y0 = Tensor.empty(DType.F32, rows, n), r0 = Tensor.empty(DType.F32, rows), y1 = Tensor.empty(DType.F32, rows, n), r1 = Tensor.empty(DType.F32, rows);
        SCALAR.forward(x, w, 1e-6, y0, r0);
        VECTOR.forward(x, w, 1e-6, y1, r1);
        assertClose("rstd", r0, r1, 2e-6);
        assertClose("y", y0, y1, 2e-6);
        Tensor dy = Tensor.randn(gen, DType.F32, rows, n);
        Tensor dx0 = Tensor.empty(DType.F32, rows, n), dw0 = Tensor.empty(DType.F32, n), dx1 = Tensor.empty(DType.F32, rows, n), dw1 = Tensor.empty(DType.F32, n);
        SCALAR.backward(dy, x, w, r0, dx0, dw0);
        VECTOR.backward(dy, x, w, r0, dx1, dw1);
        assertClose("dx", dx0, dx1, 1e-5);
        assertClose("dw", dw0, dw1, 1e-5);
        // dx alone (a frozen weight) is the same as with dw
        Tensor dx2 = Tensor.empty(DType.F32, rows, n);
        VECTOR.backward(dy, x, w, r0, dx2, null);
        assertBitEqual("dx without dw", dx1, dx2);
    }

    @Test
    void resultsDoNotDependOnTheThreadCount() {
        Generator gen = new Generator(5);
        Tensor x0 = Tensor.randn(gen, DType.F32, 300, 129), w0 = Tensor.randn(gen, DType.F32, 129);
        Tensor dy = Tensor.randn(gen, DType.F32, 300, 129);
        Tensor[][] out = new Tensor[2][];
        for (int t = 0; t < 2; t++) {
            int threads = t == 0 ? 1 : 3, k = t;
            Parallel.withThreads(threads, () -> {
                Tensor x = x0.detach().requiresGrad(true), w = w0.detach().requiresGrad(true);
                Tensor y = x.rmsNorm(w, 1e-6);
                y.backward(dy);
                out[k] = new Tensor[] {y.detach(), x.grad(), w.grad()};
            });
        }
        for (int i = 0; i < 3; i++) assertBitEqual("output " + i, out[0][i], out[1][i]);
    }

    @Test
    void theTapeHoldsOnlyTheOutputAndRstd() {
        int rows = 16, n = 64;
        Generator gen = new Generator(6);
        Tensor x = Tensor.randn(gen, DType.F32, rows, n).requiresGrad(true), w = Tensor.randn(gen, DType.F32, n).requiresGrad(true);
        long mark = Memory.mark();
        Tensor y = x.rmsNorm(w, 1e-6);
        long[] live = Memory.liveSince(mark);                     // the old composition held five [rows, n] f32 intermediates
        assertArrayEquals(new long[] {2, 4L * rows * n + 4L * rows}, live, "storages {count, bytes} made by a recorded forward");
        assertTrue(y.requiresGrad());
    }

    @Test
    void errorsNameTheOpAndTheShapes() {
        Tensor x = Tensor.zeros(DType.F32, 2, 3);
        var e = assertThrows(IllegalArgumentException.class, () -> x.rmsNorm(Tensor.ones(DType.F32, 4), 1e-6));
        assertEquals("rmsNorm: weight [4] does not match the last axis of [2, 3]", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.I64, 3).rmsNorm(Tensor.ones(DType.F32, 3), 1e-6));
    }
}

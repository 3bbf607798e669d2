package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.OpAsserts.assertBitEqual;
import static dev.jomni.tensor.ops.OpAsserts.assertClose;
import static dev.jomni.tensor.ops.OpAsserts.assertWithinVectorPaths;
import static dev.jomni.tensor.ops.OpAsserts.gradcheck;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuSoftmax;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SoftmaxTest {
    private static final Softmax.Kernels SCALAR = new CpuSoftmax(false), VECTOR = new CpuSoftmax(true);

    @Test
    void handComputedValues() {
        // [0, ln 2, ln 5] → [1, 2, 5] / 8; a huge shift changes nothing
        double l2 = Math.log(2), l5 = Math.log(5);
        Tensor x = Tensor.of(new double[] {0, l2, l5, 1000, 1000 + l2, 1000 + l5}, 2, 3);
        // (1000 + ln 2 is itself rounded, by up to 1.1e-13)
        assertArrayEquals(new double[] {1 / 8., 2 / 8., 5 / 8., 1 / 8., 2 / 8., 5 / 8.}, x.softmax(-1).toDoubleArray(), 1e-13);
        double l8 = Math.log(8);
        assertArrayEquals(new double[] {-l8, l2 - l8, l5 - l8, -l8, l2 - l8, l5 - l8}, x.logSoftmax(1).toDoubleArray(), 3e-13);
        // along dim 0: columns [0, 1000] → [e^-1000 ≈ 0, 1]
        assertArrayEquals(new double[] {0, 0, 0, 1, 1, 1}, x.softmax(0).toDoubleArray(), 1e-300);
    }

    @ParameterizedTest(name = "{0} x {1} along {2}")
    @CsvSource({"false,'1,1',-1", "false,'3,5,7',1", "false,'2,31',-1", "true,'3,5,7',0", "true,'2,31',-1", "true,'1,4097',1",
            "false,'4,3,2',0"})
    void gradientsMatchFiniteDifferences(boolean log, String shape, int dim) {
        int[] s = java.util.Arrays.stream(shape.split(",")).mapToInt(Integer::parseInt).toArray();
        Tensor x = Tensor.randn(new Generator(13), DType.F64, s);
        gradcheck((log ? "logSoftmax " : "softmax ") + shape + " dim " + dim, in -> log ? in[0].logSoftmax(dim) : in[0].softmax(dim), x);
    }

    /** The scalar reference rounds where the composition rounded: the same bits in f64, within the vector exp's ulp in f32. */
    @ParameterizedTest(name = "{0} log {1} n {2}")
    @CsvSource({"F32,false,1", "F32,false,31", "F32,false,4097", "F32,true,31", "F32,true,4097", "F64,false,33", "F64,true,33"})
    void scalarForwardMatchesTheComposition(DType t, boolean log, int n) {
        Tensor x = Tensor.randn(new Generator(n), t, 5, n).mul(4).to(t);
        Tensor y0 = Tensor.empty(t, 5, n), y1 = Tensor.empty(t, 5, n);
        Softmax.COMPOSED.forward(x, y0, log);
        SCALAR.forward(x, y1, log);
        assertWithinVectorPaths("y", y0, y1);
    }

    /** 16-bit x: the reference rounds once, the composition rounded every step to 16 bits. */
    @ParameterizedTest(name = "{0} log {1}")
    @CsvSource({"BF16,false,2e-2", "BF16,true,2e-2", "F16,false,2e-3", "F16,true,4e-3"})
    void sixteenBitForwardIsWithinTheCompositionsRounding(DType t, boolean log, double tol) {
        Tensor x = Tensor.randn(new Generator(3), t, 4, 37);
        Tensor y0 = Tensor.empty(t, 4, 37), y1 = Tensor.empty(t, 4, 37);
        Softmax.COMPOSED.forward(x, y0, log);
        SCALAR.forward(x, y1, log);
        assertClose("y", y0, y1, tol);
        Tensor exact = Tensor.empty(DType.F64, 4, 37);
        SCALAR.forward(x.to(DType.F64), exact, log);
        assertClose("y against f64", exact, y1.to(DType.F64), tol / 2);
    }

    @ParameterizedTest(name = "{0} log {1} n {2}")
    @CsvSource({"F64,false,31,1e-14", "F64,true,31,1e-14", "F32,false,31,1e-6", "F32,true,4097,1e-6", "BF16,false,33,2e-2"})
    void backwardMatchesTheComposition(DType t, boolean log, int n, double tol) {
        Generator gen = new Generator(n + 2);
        Tensor x = Tensor.randn(gen, t, 6, n), y = Tensor.empty(t, 6, n), dy = Tensor.randn(gen, t, 6, n);
        SCALAR.forward(x, y, log);
        Tensor dx0 = Tensor.empty(t, 6, n), dx1 = Tensor.empty(t, 6, n);
        Softmax.COMPOSED.backward(dy, y, dx0, log);
        SCALAR.backward(dy, y, dx1, log);
        assertClose("dx", dx0, dx1, tol);
    }

    @ParameterizedTest(name = "log {0} rows {1} n {2}")
    @CsvSource({"false,1,1", "false,3,15", "false,7,31", "false,2,4097", "true,1,1", "true,7,31", "true,2,4097", "false,64,2048"})
    void vectorPathMatchesTheScalarReference(boolean log, int rows, int n) {
        Generator gen = new Generator(rows * 7L + n);
        Tensor x = Tensor.randn(gen, DType.F32, rows, n).mul(5), dy = Tensor.randn(gen, DType.F32, rows, n);
        Tensor y0 = Tensor.empty(DType.F32, rows, n), y1 = Tensor.empty(DType.F32, rows, n);
        SCALAR.forward(x, y0, log);
        VECTOR.forward(x, y1, log);
        assertClose("y", y0, y1, 1e-6);
        Tensor dx0 = Tensor.empty(DType.F32, rows, n), dx1 = Tensor.empty(DType.F32, rows, n);
        SCALAR.backward(dy, y0, dx0, log);
        VECTOR.backward(dy, y0, dx1, log);
        assertClose("dx", dx0, dx1, 2e-6);
    }

    @Test
    void rowsOfMinusInfinityAndNaNBehaveAsTheComposition() {
        float ninf = Float.NEGATIVE_INFINITY;
        Tensor x = Tensor.of(new float[] {ninf, 0, ninf, ninf, Float.NaN, 1}, 3, 2);
        for (Softmax.Kernels k : new Softmax.Kernels[] {SCALAR, VECTOR}) {
            Tensor y0 = Tensor.empty(DType.F32, 3, 2), y1 = Tensor.empty(DType.F32, 3, 2);
            Softmax.COMPOSED.forward(x, y0, false);
            k.forward(x, y1, false);
            assertBitEqual("softmax", y0, y1);
        }
    }

    @Test
    void theTapeHoldsOnlyTheOutput() {
        Tensor x = Tensor.randn(new Generator(4), DType.F32, 8, 100).requiresGrad(true);
        long mark = Memory.mark();
        Tensor y = x.softmax(-1);
        assertArrayEquals(new long[] {1, 4L * 8 * 100}, Memory.liveSince(mark), "storages {count, bytes} made by a recorded forward");
        assertTrue(y.requiresGrad());
    }

    @Test
    void errorsNameTheOp() {
        var e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.F32, 2, 3).logSoftmax(2));
        assertEquals("logSoftmax: dim 2 is out of range for a tensor of rank 2", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(DType.I64, 3).softmax(0));
    }
}

package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.BinaryOp;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The Vector API path gives the bits of the double-precision reference, broadcasts included. */
class F32ArithmeticTest {
    @ParameterizedTest
    @EnumSource(value = BinaryOp.class, names = {"ADD", "SUB", "MUL", "DIV"})
    void vectorPathEqualsTheReferenceBitForBit(BinaryOp op) {
        Generator g = new Generator(op.ordinal());
        int[][] yShapes = {{37, 131}, {131}, {1, 131}, {1}, {37, 1, 1}};
        for (int[] ys : yShapes) {
            Tensor x = Tensor.randn(g, DType.F32, 37, 131).mul(1e3);
            Tensor y = Tensor.randn(g, DType.F32, ys).add(0.5);
            Tensor xe = x;
            Tensor ye = ys.length == 3 ? y.reshape(37, 1).expand(37, 131)    // a column broadcast: the reference path
                    : y.expand(37, 131);
            Tensor fast = Tensor.empty(DType.F32, 37, 131), slow = Tensor.empty(DType.F32, 37, 131);
            boolean vector = F32Arithmetic.handles(op, xe, ye, fast);
            assertEquals(ys.length != 3, vector, "which path " + java.util.Arrays.toString(ys));
            if (vector) F32Arithmetic.apply(op, xe, ye, fast);
            else Backend.of(Device.cpu()).binary(op, xe, ye, fast);
            double[] u = CpuBackend.load(xe), v = CpuBackend.load(ye);
            for (int i = 0; i < u.length; i++) u[i] = op.apply(u[i], v[i]);
            CpuBackend.store(u, slow);
            assertArrayEquals(slow.toFloatArray(), fast.toFloatArray(), op + " with y " + java.util.Arrays.toString(ys));
        }
        assertTrue(F32Arithmetic.period(Tensor.zeros(DType.F32, 4, 5).transpose(0, 1)) < 0);
    }
}

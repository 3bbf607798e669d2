package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Rope;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * rope.cu against CpuRope on fresh random inputs and angles: forward and backward, tables per batch and
 * shared ([1, T, d]), odd sizes, f32/bf16/f64. Both round after each product and after the sum, so the
 * results are expected bit-identical.
 */
@Tag("gpu")
class CudaRopeTest {
    /** cos (or sin) of random angles in [−10, 10): one table draw per call, fresh each time. */
    static Tensor table(Generator g, int tb, int len, int d, boolean cos) {
        double[] v = new double[tb * len * d];
        for (int i = 0; i < v.length; i++) {
            double phi = 20 * g.nextDouble() - 10;
            v[i] = cos ? Math.cos(phi) : Math.sin(phi);
        }
        return Tensor.of(v, tb, len, d);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReferenceBitForBit(DType t) {
        Device gpu = BackendParity.gpu();
        Rope.Kernels cuda = Backend.of(gpu).kernels(Rope.Kernels.class), cpu = Backend.of(Device.cpu()).kernels(Rope.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        // {B, h, T, d, table batch}
        for (int[] s : new int[][] {{1, 1, 1, 2, 1}, {2, 3, 31, 64, 2}, {2, 3, 31, 64, 1}, {1, 2, 4097, 8, 1}, {3, 1, 5, 130, 3}}) {
            int b = s[0], h = s[1], len = s[2], d = s[3], tb = s[4];
            Tensor x = Tensor.randn(g, t, b, h, len, d), dy = Tensor.randn(g, t, b, h, len, d);
            Tensor cos = table(g, tb, len, d, true).to(t), sin = table(g, tb, len, d, false).to(t);
            Tensor out = Tensor.empty(Device.cpu(), t, b, h, len, d), dx = Tensor.empty(Device.cpu(), t, b, h, len, d);
            cpu.forward(x, cos, sin, out);
            cpu.backward(dy, cos, sin, dx);
            Tensor outg = Tensor.empty(gpu, t, b, h, len, d), dxg = Tensor.empty(gpu, t, b, h, len, d);
            Tensor cg = cos.to(gpu), sg = sin.to(gpu);
            cuda.forward(x.to(gpu), cg, sg, outg);
            cuda.backward(dy.to(gpu), cg, sg, dxg);
            String at = "rope " + t + " x [" + b + ", " + h + ", " + len + ", " + d + "], tables [" + tb + ", " + len + ", " + d + "] seed " + seed + ": ";
            double eo = Gpu.relativeError(outg.toDoubleArray(), out.toDoubleArray()), ed = Gpu.relativeError(dxg.toDoubleArray(), dx.toDoubleArray());
            System.out.printf("%sout error %.3g, dx error %.3g (expected 0)%n", at, eo, ed);
            assertTrue(eo < CudaSoftmaxTest.bound(t), at + "out relative error " + eo);
            assertTrue(ed < CudaSoftmaxTest.bound(t), at + "dx relative error " + ed);
            assertArrayEquals(out.toDoubleArray(), outg.toDoubleArray(), 0, at + "out not bit-identical");
            assertArrayEquals(dx.toDoubleArray(), dxg.toDoubleArray(), 0, at + "dx not bit-identical");
        }
    }
}

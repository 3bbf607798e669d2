package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Softmax;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * softmax.cu against CpuSoftmax on fresh random inputs: softmax and log-softmax, forward and backward,
 * odd sizes on both sides of the warp/block switch (n = 1024 / 1025), f32/bf16/f64.
 */
@Tag("gpu")
class CudaSoftmaxTest {
    /** Relative error bound of a result of this dtype (bf16: 8 mantissa bits; f32: sums in another order, expf). */
    static double bound(DType t) {
        return switch (t) {
            case F64 -> 1e-12;
            case F32 -> 1e-5;
            default -> 1e-2;
        };
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        Softmax.Kernels cuda = Backend.of(gpu).kernels(Softmax.Kernels.class), cpu = Backend.of(Device.cpu()).kernels(Softmax.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        for (int[] rn : new int[][] {{1, 1}, {31, 31}, {7, 4097}, {300, 1024}, {5, 1025}, {1, 31}, {4097, 3}}) {
            int rows = rn[0], n = rn[1];
            for (boolean log : new boolean[] {false, true}) {
                Tensor x = Tensor.randn(g, t, rows, n).mul(3), dy = Tensor.randn(g, t, rows, n);
                Tensor y = Tensor.empty(Device.cpu(), t, rows, n), dx = Tensor.empty(Device.cpu(), t, rows, n);
                cpu.forward(x, y, log);
                cpu.backward(dy, y, dx, log);
                Tensor yg = Tensor.empty(gpu, t, rows, n), dxg = Tensor.empty(gpu, t, rows, n);
                cuda.forward(x.to(gpu), yg, log);
                cuda.backward(dy.to(gpu), y.to(gpu), dxg, log);        // the same y on both sides: backward alone
                String at = (log ? "logSoftmax " : "softmax ") + t + " [" + rows + ", " + n + "] seed " + seed + ": ";
                double b = bound(t), ey = Gpu.relErr(yg, y), edx = Gpu.relErr(dxg, dx);
                System.out.printf("%sy error %.3g, dx error %.3g (bound %.3g)%n", at, ey, edx, b);
                assertTrue(ey < b, at + "y relative error " + ey + " >= " + b);
                assertTrue(edx < b, at + "dx relative error " + edx + " >= " + b);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theOpOnCudaUsesTheKernelsAndDifferentiatesAsOnTheCpu(DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        for (int dim : new int[] {-1, 1}) {
            Tensor x = Tensor.randn(g, t, 5, 3, 96), dy = Tensor.randn(g, t, 5, 3, 96);
            Tensor xg = x.to(gpu).requiresGrad(true), xc = x.requiresGrad(true);
            Tensor yc = xc.logSoftmax(dim), yg = xg.logSoftmax(dim);
            yc.backward(dy);
            yg.backward(dy.to(gpu));
            String at = t + " logSoftmax(dim " + dim + ") seed " + seed + ": ";
            double e = Gpu.relErr(yg, yc), eg = Gpu.relErr(xg.grad(), xc.grad());
            assertTrue(e < bound(t), at + "y relative error " + e);
            assertTrue(eg < bound(t), at + "grad relative error " + eg);
        }
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.RmsNorm;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** rms_norm.cu against CpuRmsNorm on fresh random inputs: y, rstd, dx, dw, odd sizes, f32/bf16/f64. */
@Tag("gpu")
class CudaRmsNormTest {
    /** Relative error bound of a result of this dtype (bf16: 8 mantissa bits, f32 sums in another order). */
    static double bound(DType t) {
        return switch (t) {
            case F64 -> 1e-12;
            case F32 -> 1e-5;
            default -> 1e-2;
        };
    }

    static double relErr(Tensor got, Tensor ref) {
        return Gpu.relativeError(got.toDoubleArray(), ref.toDoubleArray());
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        RmsNorm.Kernels cuda = Backend.of(gpu).kernels(RmsNorm.Kernels.class), cpu = Backend.of(Device.cpu()).kernels(RmsNorm.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        DType stat = t.atLeastF32();
        for (int[] rn : new int[][] {{1, 1}, {31, 31}, {7, 4097}, {300, 2048}}) {
            int rows = rn[0], n = rn[1];
            Tensor x = Tensor.randn(g, t, rows, n), w = Tensor.rand(g, t, n).add(0.5), dy = Tensor.randn(g, t, rows, n);
            Tensor y = Tensor.empty(Device.cpu(), t, rows, n), r = Tensor.empty(Device.cpu(), stat, rows);
            cpu.forward(x, w, 1e-6, y, r);
            Tensor dx = Tensor.empty(Device.cpu(), t, rows, n), dw = Tensor.empty(Device.cpu(), t, n);
            cpu.backward(dy, x, w, r, dx, dw);
            Tensor xg = x.to(gpu), wg = w.to(gpu), dyg = dy.to(gpu);
            Tensor yg = Tensor.empty(gpu, t, rows, n), rg = Tensor.empty(gpu, stat, rows);
            cuda.forward(xg, wg, 1e-6, yg, rg);
            Tensor dxg = Tensor.empty(gpu, t, rows, n), dwg = Tensor.empty(gpu, t, n);
            cuda.backward(dyg, xg, wg, rg, dxg, dwg);
            String at = t + " [" + rows + ", " + n + "] seed " + seed + ": ";
            double b = bound(t);
            double ey = relErr(yg, y), er = relErr(rg, r), edx = relErr(dxg, dx), edw = relErr(dwg, dw);
            assertTrue(ey < b, at + "y relative error " + ey);
            assertTrue(er < Math.max(b / 10, bound(stat)), at + "rstd relative error " + er);
            if (n == 1) {
                // one element per row: dx = w·r·dy·(1 − y²) with 1 − y² = eps/(x² + eps), a difference of nearly equal
                // terms, so a relative error mostly measures rounding; bound the difference by the size of those terms
                double scale = maxAbs(dy) * maxAbs(w) * maxAbs(r);
                double diff = maxAbs(dxg.to(Device.cpu()).sub(dx));
                assertTrue(diff <= 4 * b * scale, at + "dx differs by " + diff + ", more than rounding of its terms (" + scale + ")");
            } else assertTrue(edx < b, at + "dx relative error " + edx);
            assertTrue(edw < b * (t == DType.BF16 ? 2 : 1), at + "dw relative error " + edw);
            // only dw asked for: dx left alone (null)
            cuda.backward(dyg, xg, wg, rg, null, dwg);
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theOpOnCudaUsesTheKernelsAndDifferentiatesAsOnTheCpu(DType t) {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        Tensor x = Tensor.randn(g, t, 5, 3, 96), w = Tensor.rand(g, t, 96).add(0.5);
        double e = relErr(x.to(gpu).rmsNorm(w.to(gpu), 1e-6), x.rmsNorm(w, 1e-6));
        assertTrue(e < bound(t), t + " rmsNorm relative error " + e);
    }

    private static double maxAbs(Tensor t) {
        double m = 0;
        for (double v : t.toDoubleArray()) m = Math.max(m, Math.abs(v));
        return m;
    }
}

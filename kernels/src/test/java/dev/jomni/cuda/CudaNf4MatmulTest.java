package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.Nf4Weight;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** nf4.cu against CpuNf4Matmul on fresh random weights and inputs: dequantize, GEMV (M ≤ 16), GEMM and dx. */
@Tag("gpu")
class CudaNf4MatmulTest {
    /** Dequantize reproduces the CPU's bits (no FMA contraction, the same roundings). */
    @Test
    void dequantizeIsBitIdentical() {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        for (DType t : new DType[] {DType.BF16, DType.F32}) {
            Nf4Weight w = Nf4Weight.quantize("w", Tensor.randn(g, t, 300, 192));
            double[] ref = w.dequantize().toDoubleArray(), got = w.to(gpu).dequantize().toDoubleArray();
            for (int i = 0; i < ref.length; i++)
                assertTrue(Double.doubleToLongBits(ref[i]) == Double.doubleToLongBits(got[i]),
                        "nf4 dequantize " + t + " [300, 192]: element " + i + " is " + got[i] + ", CPU " + ref[i]);
        }
    }

    /**
     * y and dx against the CPU reference for every kernel variant (jomni.nf4.gemv for M ≤ 16, jomni.nf4.gemm above
     * and for dx): relative error (max |Δ| / max |ref|) within the dtype's bound; outputs poisoned with NaN first.
     */
    @ParameterizedTest(name = "M={0} K={1} N={2} {3}")
    @CsvSource({
        "1,64,1,BF16", "1,2048,4096,BF16", "7,2048,512,BF16", "16,768,2048,BF16", "3,2048,768,F16", "5,192,33,F32",
        "2,128,67,BF16", "17,128,65,BF16", "300,2048,512,BF16", "129,768,2048,F16", "64,2048,768,BF16", "4096,256,320,BF16",
        "40,192,50,F32", "9,64,31,F64", "1,4096,2048,BF16", "16,2048,4096,F16", "12,192,1000,BF16", "1,2048,152064,BF16",
        "4096,2048,512,BF16", "200,192,64,BF16", "130,4096,136,BF16"})
    void matchesTheCpuReference(int m, int k, int n, DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed + 31L * m + k + n);
        Nf4Weight w = Nf4Weight.quantize("w", Tensor.randn(g, DType.BF16, n, k).mul(0.05));
        Tensor x = Tensor.randn(g, DType.F32, m, k).to(t), dy = Tensor.randn(g, DType.F32, m, n).to(t);
        Nf4Matmul.Kernels cpu = Backend.of(Device.cpu()).kernels(Nf4Matmul.Kernels.class), cuda = Backend.of(gpu).kernels(Nf4Matmul.Kernels.class);
        Tensor y = Tensor.empty(Device.cpu(), t, m, n), dx = Tensor.empty(Device.cpu(), t, m, k);
        cpu.forward(x, w, y);
        cpu.backwardInput(dy, w, dx);
        Nf4Weight wg = w.to(gpu);
        Tensor xg = x.to(gpu), dyg = dy.to(gpu);
        double bound = switch (t) {
            case F64 -> 1e-12;
            case F32 -> 1e-5;
            default -> 1.6e-2;         // the output's rounding (2^-8 of bf16) plus the f32 sums' order
        };
        boolean gemv = m <= 16;
        String property = gemv ? "jomni.nf4.gemv" : "jomni.nf4.gemm";
        String[] variants = gemv ? new String[] {"tc", "tc8", "tc2", "tcs", "tcp", "tcp2", "tca", "simt"} : new String[] {"tc", "tcs", "tcw", "wmma"};
        for (String variant : variants) {
            String before = System.setProperty(property, variant);
            try {
                Tensor yg = Tensor.full(gpu, t, Double.NaN, m, n), dxg = Tensor.full(gpu, t, Double.NaN, m, k);
                cuda.forward(xg, wg, yg);
                for (String dxVariant : gemv ? new String[] {"tc", "wmma"} : new String[] {variant}) {
                    String dxBefore = System.setProperty("jomni.nf4.gemm", dxVariant);
                    try {
                        cuda.backwardInput(dyg, wg, dxg);
                        double ey = Gpu.relErr(yg, y), edx = Gpu.relErr(dxg, dx);
                        String at = String.format("nf4Matmul %s M=%d K=%d N=%d seed %d (%s %s, dx %s): ", t, m, k, n, seed, property, variant, dxVariant);
                        System.out.printf("%sy error %.3g, dx error %.3g, bound %.3g%n", at, ey, edx, bound);
                        assertTrue(ey < bound, at + "y relative error " + ey + " > " + bound);
                        assertTrue(edx < bound, at + "dx relative error " + edx + " > " + bound);
                    } finally {
                        restore("jomni.nf4.gemm", dxBefore);
                    }
                    dxg.close();
                    dxg = Tensor.full(gpu, t, Double.NaN, m, k);
                }
                yg.close();
                dxg.close();
            } finally {
                restore(property, before);
            }
        }
    }

    private static void restore(String property, String value) {
        if (value == null) System.clearProperty(property);
        else System.setProperty(property, value);
    }
}

package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** AdamWStep's CPU kernels against the formulas computed independently in f64, on fresh random inputs. */
class CpuAdamWStepTest {
    static final float B1 = 0.9f, B2 = 0.999f, EPS = 1e-8f;

    @Test
    void quantizeFindsTheNearestCode() {
        float[] code = AdamWStep.dynamicMap(true);
        var gen = new Generator(3);
        for (int t = 0; t < 2000; t++) {
            float x = (float) (gen.nextDouble() * 2 - 1) * (float) Math.pow(10, -gen.nextInt(6));
            int q = CpuAdamWStep.quantize(code, x);
            for (float c : code) assertTrue(Math.abs(code[q] - x) <= Math.abs(c - x), x + " coded " + code[q] + ", but " + c + " is nearer");
        }
        assertEquals(255, CpuAdamWStep.quantize(code, 1f));
        assertEquals(0, CpuAdamWStep.quantize(code, -1f));
        assertEquals(127, CpuAdamWStep.quantize(code, 0f));
        assertEquals(0, CpuAdamWStep.quantize(AdamWStep.dynamicMap(false), 0f));
    }

    @Test
    void torchsAdamWOverThreeSteps() {
        var gen = new Generator(5);
        int n = 37;
        float lr = 1e-2f, wd = 0.1f;
        Tensor p = Tensor.randn(gen, DType.F32, n), m = Tensor.zeros(DType.F32, n), v = Tensor.zeros(DType.F32, n);
        double[] pd = p.toDoubleArray(), md = new double[n], vd = new double[n];
        for (int step = 1; step <= 3; step++) {
            Tensor g = Tensor.randn(gen, DType.F32, n);
            double[] gd = g.toDoubleArray();
            double c1 = 1 - Math.pow(B1, step), c2 = 1 - Math.pow(B2, step);
            AdamWStep.torch(p, g, m, v, new AdamWStep.Hyper(B1, B2, EPS, lr, wd, (float) (lr / c1), (float) Math.sqrt(c2)));
            for (int i = 0; i < n; i++) {
                pd[i] *= 1 - (double) lr * wd;
                md[i] = B1 * md[i] + (1 - (double) B1) * gd[i];
                vd[i] = B2 * vd[i] + (1 - (double) B2) * gd[i] * gd[i];
                pd[i] -= lr / c1 * md[i] / (Math.sqrt(vd[i]) / Math.sqrt(c2) + EPS);
            }
        }
        assertClose(pd, p.toDoubleArray(), 1e-5, "parameter");
        assertClose(md, m.toDoubleArray(), 1e-5, "m");
        assertClose(vd, v.toDoubleArray(), 1e-5, "v");
    }

    @Test
    void bitsandbytes32BitDecaysAfterTheUpdate() {
        var gen = new Generator(6);
        int n = 41;
        float lr = 1e-2f, wd = 0.1f;
        Tensor p = Tensor.randn(gen, DType.F32, n), m = Tensor.zeros(DType.F32, n), v = Tensor.zeros(DType.F32, n);
        double[] pd = p.toDoubleArray(), md = new double[n], vd = new double[n];
        for (int step = 1; step <= 3; step++) {
            Tensor g = Tensor.randn(gen, DType.F32, n);
            double[] gd = g.toDoubleArray();
            double c1 = 1 - Math.pow(B1, step), c2 = Math.sqrt(1 - Math.pow(B2, step));
            AdamWStep.bnb32(p, g, m, v, new AdamWStep.Hyper(B1, B2, EPS, lr, wd, (float) (-lr * c2 / c1), (float) c2));
            for (int i = 0; i < n; i++) {
                md[i] = B1 * md[i] + (1 - (double) B1) * gd[i];
                vd[i] = B2 * vd[i] + (1 - (double) B2) * gd[i] * gd[i];
                pd[i] += -lr * c2 / c1 * md[i] / (Math.sqrt(vd[i]) + EPS * c2);
                pd[i] *= 1 - (double) lr * wd;
            }
        }
        assertClose(pd, p.toDoubleArray(), 1e-5, "parameter");
    }

    @Test
    void blockwise8BitFirstStepQuantizesTheNewMoments() {
        var gen = new Generator(7);
        int n = 256 * 2 + 17;                                     // a partial last block
        float lr = 1e-3f;
        float[] signed = AdamWStep.dynamicMap(true), unsigned = AdamWStep.dynamicMap(false);
        Tensor p = Tensor.randn(gen, DType.F32, n), g = Tensor.randn(gen, DType.F32, n).mul(Tensor.randn(gen, DType.F32, n).exp());
        float[] gv = g.toFloatArray();
        gv[3] = Float.NaN;                                        // zeroes its moments, leaves its parameter
        g = Tensor.of(gv, n);
        double[] p0 = p.toDoubleArray();
        Tensor c1 = Tensor.full(DType.U8, 127, n), c2 = Tensor.zeros(DType.U8, n), a1 = Tensor.zeros(DType.F32, 3), a2 = Tensor.zeros(DType.F32, 3);
        double c2s = Math.sqrt(1 - B2);
        AdamWStep.blockwise8bit(p, g, c1, c2, a1, a2, Tensor.of(signed, 256), Tensor.of(unsigned, 256),
                new AdamWStep.Hyper(B1, B2, EPS, lr, 0f, (float) (-lr * c2s / (1 - B1)), (float) c2s));
        byte[] q1 = c1.toHost(Arena.ofAuto()).toArray(ValueLayout.JAVA_BYTE), q2 = c2.toHost(Arena.ofAuto()).toArray(ValueLayout.JAVA_BYTE);
        float[] abs1 = a1.toFloatArray(), abs2 = a2.toFloatArray(), pv = p.toFloatArray();
        for (int b = 0; b < 3; b++) {
            double max1 = 0, max2 = 0;
            for (int i = b * 256; i < Math.min(n, (b + 1) * 256); i++) {
                if (i == 3) continue;
                max1 = Math.max(max1, Math.abs((1 - B1) * gv[i]));
                max2 = Math.max(max2, (1 - B2) * gv[i] * gv[i]);
            }
            assertEquals(max1, abs1[b], 1e-6 * max1, "absmax1 of block " + b);
            assertEquals(max2, abs2[b], 1e-6 * max2, "absmax2 of block " + b);
            for (int i = b * 256; i < Math.min(n, (b + 1) * 256); i++) {
                double m = i == 3 ? 0 : (1 - B1) * gv[i], v = i == 3 ? 0 : (1 - B2) * gv[i] * gv[i];
                int k1 = Byte.toUnsignedInt(q1[i]), k2 = Byte.toUnsignedInt(q2[i]);
                assertTrue(nearest(signed, m / abs1[b], k1, 1), "codes1[" + i + "] = " + k1 + " for " + m / abs1[b]);
                assertTrue(nearest(unsigned, v / abs2[b], k2, 0), "codes2[" + i + "] = " + k2 + " for " + v / abs2[b]);
                assertTrue(m == 0 || Math.signum(signed[k1]) == Math.signum(m), "codes1[" + i + "] keeps the sign");
                // step 1: m̂/√v̂ = g/|g|, so every parameter moves by lr (times 1/(1 + ε√(1−β₂)/√v))
                double expect = i == 3 ? p0[i] : p0[i] - lr * m / (1 - B1) / (Math.sqrt(v) / c2s + EPS);
                assertEquals(expect, pv[i], 1e-6, "parameter " + i);
            }
        }
    }

    /** code[k] is (one of) the nearest to x, or, for the signed map, its sign-fixing neighbour. */
    private static boolean nearest(float[] code, double x, int k, int slack) {
        double best = Double.MAX_VALUE;
        for (float c : code) best = Math.min(best, Math.abs(c - x));
        if (Math.abs(code[k] - x) <= best + 1e-7) return true;
        return slack > 0 && k > 0 && k < 255 && (Math.abs(code[k - 1] - x) <= best + 1e-7 || Math.abs(code[k + 1] - x) <= best + 1e-7);
    }

    @Test
    void bf16ParametersRoundOnce() {
        var gen = new Generator(8);
        int n = 300;
        Tensor g = Tensor.randn(gen, DType.F32, n), p32 = Tensor.randn(gen, DType.F32, n).to(DType.BF16).to(DType.F32), p16 = p32.to(DType.BF16);
        var h = new AdamWStep.Hyper(B1, B2, EPS, 1e-2f, 0.01f, 1e-1f, (float) Math.sqrt(1 - B2));
        AdamWStep.torch(p32, g, Tensor.zeros(DType.F32, n), Tensor.zeros(DType.F32, n), h);
        AdamWStep.torch(p16, g, Tensor.zeros(DType.F32, n), Tensor.zeros(DType.F32, n), h);
        float[] want = p32.to(DType.BF16).toFloatArray(), got = p16.toFloatArray();
        for (int i = 0; i < n; i++) assertEquals(want[i], got[i], "element " + i);
    }

    @Test
    void badStateIsRefusedNamingTheOpAndTheTensor() {
        Tensor p = Tensor.zeros(DType.F32, 10), g = Tensor.zeros(DType.F32, 10);
        var h = new AdamWStep.Hyper(B1, B2, EPS, 1f, 0f, 1f, 1f);
        var e = assertThrows(IllegalArgumentException.class, () -> AdamWStep.torch(p, g, Tensor.zeros(DType.F32, 9), Tensor.zeros(DType.F32, 10), h));
        assertTrue(e.getMessage().contains("adamWStep.torch") && e.getMessage().contains("m must be"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AdamWStep.blockwise8bit(p, g, Tensor.zeros(DType.F32, 10), Tensor.zeros(DType.U8, 10),
                Tensor.zeros(DType.F32, 1), Tensor.zeros(DType.F32, 1), Tensor.zeros(DType.F32, 256), Tensor.zeros(DType.F32, 256), h));
        assertTrue(e.getMessage().contains("codes1 must be contiguous u8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AdamWStep.torch(Tensor.zeros(DType.F64, 10), Tensor.zeros(DType.F64, 10),
                Tensor.zeros(DType.F32, 10), Tensor.zeros(DType.F32, 10), h));
        assertTrue(e.getMessage().contains("f32 or bf16"), e.getMessage());
    }

    private static void assertClose(double[] want, double[] got, double rel, String what) {
        for (int i = 0; i < want.length; i++)
            assertEquals(want[i], got[i], rel * Math.max(1, Math.abs(want[i])), what + " " + i);
    }
}

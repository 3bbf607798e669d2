package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class FillKernelTest {
    @Test
    void uniformFillsMatchTheHashOnTheCpuAndStayInRange() {
        CudaContext ctx = Gpu.context();
        int n = 100_003;
        long seed = Gpu.seed();
        float[] f = new float[n];
        short[] h = new short[n];
        try (Stream s = ctx.createStream(); DeviceBuffer df = ctx.allocate(4L * n); DeviceBuffer dh = ctx.allocate(2L * n)) {
            FillKernel.uniformF32(s, df, n, seed, -2f, 3f);
            FillKernel.uniformBf16(s, dh, n, seed, -2f, 3f);
            s.synchronize();
            df.copyTo(f);
            dh.copyTo(h);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float u = FillKernel.uniform01(seed, i);
            float separate = -2f + 5f * u, fused = Math.fma(5f, u, -2f);  // nvcc may contract lo + (hi - lo) * u into an fma
            assertTrue(f[i] == separate || f[i] == fused, "f32 element " + i + " is " + f[i] + ", want " + separate
                    + " (or " + fused + " fused), seed " + seed);
            assertTrue(f[i] >= -2f && f[i] < 3f, "f32 element " + i + " = " + f[i]);
            assertEquals(Gpu.bf16(f[i]), h[i], "bf16 element " + i + " is the f32 value rounded, seed " + seed);
            sum += f[i];
        }
        assertEquals(0.5, sum / n, 0.05, "mean of uniform(-2, 3)");
    }

    @Test
    void constantFillsAndConversionsRoundToNearestEven() {
        CudaContext ctx = Gpu.context();
        int n = 4097;
        long seed = Gpu.seed();
        float[] x = Gpu.uniform(new SplittableRandom(seed), n, -1000f, 1000f);
        short[] toBf16 = new short[n];
        float[] back = new float[n], constant = new float[n];
        short[] constantBf16 = new short[n];
        try (Stream s = ctx.createStream(); DeviceBuffer in = ctx.allocate(4L * n); DeviceBuffer mid = ctx.allocate(2L * n);
             DeviceBuffer out = ctx.allocate(4L * n); DeviceBuffer c = ctx.allocate(4L * n); DeviceBuffer cb = ctx.allocate(2L * n)) {
            in.copyFrom(x);
            ConvertKernel.f32ToBf16(s, mid, in, n);
            ConvertKernel.bf16ToF32(s, out, mid, n);
            FillKernel.f32(s, c, n, 1.7f);
            FillKernel.bf16(s, cb, n, 1.7f);
            s.synchronize();
            mid.copyTo(toBf16);
            out.copyTo(back);
            c.copyTo(constant);
            cb.copyTo(constantBf16);
        }
        for (int i = 0; i < n; i++) {
            assertEquals(Gpu.bf16(x[i]), toBf16[i], "convert_f32_bf16 element " + i + " of " + x[i] + ", seed " + seed);
            assertEquals(Gpu.bf16ToFloat(toBf16[i]), back[i], "convert_bf16_f32 element " + i);
            assertEquals(1.7f, constant[i]);
            assertEquals(Gpu.bf16(1.7f), constantBf16[i]);
        }
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * adamw_step.cu against CpuAdamWStep over several steps on fresh random parameters and gradients (a new
 * gradient each step, some non-finite for the 8-bit kernel, one all-zero block), at sizes with a partial last
 * block. Both sides run the same f32 operations in the same order with IEEE rounding, so the expectation is
 * bit equality; the assertions allow what the issue states (codes equal in all but 1e-4 of the entries, and
 * then by one level; parameters and f32 moments within 1e-6 relative) and the exact mismatch counts are printed.
 * The default kernels and the first ones (-Djomni.adamw.kernel=v1) run the same operations: on the same inputs
 * they must give the same bits, which is asserted exactly.
 */
@Tag("gpu")
class CudaAdamWStepTest {
    static final int STEPS = 5;

    enum Variant { TORCH, BNB32, BLOCKWISE_8BIT }

    private static AdamWStep.Hyper hyper(Variant v, int step) {
        float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 1e-3f * (1 + step), wd = 0.01f;
        float c1 = 1f - (float) Math.pow(b1, step), c2 = (float) Math.sqrt(1f - (float) Math.pow(b2, step));
        return v == Variant.TORCH ? new AdamWStep.Hyper(b1, b2, eps, lr, wd, (float) (lr / (1 - Math.pow(b1, step))), (float) Math.sqrt(1 - Math.pow(b2, step)))
                : new AdamWStep.Hyper(b1, b2, eps, lr, wd, -lr * c2 / c1, c2);
    }

    /** The parameter's state on one device: f32 moments, or codes + absmax (+ the maps). */
    private record State(Tensor m, Tensor v, Tensor absmax1, Tensor absmax2, Tensor qmap1, Tensor qmap2) {
        static State of(Variant variant, Device d, long n, boolean paged) {
            int ni = Math.toIntExact(n), blocks = Math.toIntExact((n + AdamWStep.BLOCK - 1) / AdamWStep.BLOCK);
            if (variant != Variant.BLOCKWISE_8BIT)
                return new State(zeros(d, DType.F32, ni, paged), zeros(d, DType.F32, ni, paged), null, null, null, null);
            float[] s = AdamWStep.dynamicMap(true), u = AdamWStep.dynamicMap(false);
            Tensor c1 = zeros(d, DType.U8, ni, paged), c2 = zeros(d, DType.U8, ni, paged);
            c1.assign(Tensor.full(d, DType.U8, 127, 1));                   // the signed map's zero
            return new State(c1, c2, zeros(d, DType.F32, blocks, paged), zeros(d, DType.F32, blocks, paged),
                    Tensor.of(s, 256).to(d), Tensor.of(u, 256).to(d));
        }

        private static Tensor zeros(Device d, DType t, int n, boolean paged) {
            Tensor z = paged ? Tensor.emptyPaged(d, t, n) : Tensor.empty(d, t, n);
            z.assign(Tensor.zeros(d, t, 1));
            return z;
        }

        void step(Variant variant, Tensor p, Tensor g, AdamWStep.Hyper h) {
            switch (variant) {
                case TORCH -> AdamWStep.torch(p, g, m, v, h);
                case BNB32 -> AdamWStep.bnb32(p, g, m, v, h);
                case BLOCKWISE_8BIT -> AdamWStep.blockwise8bit(p, g, m, v, absmax1, absmax2, qmap1, qmap2, h);
            }
        }
    }

    /** A gradient with a spread of magnitudes (so codes across the map are used); for 8-bit, block 1 all zero and some NaN/inf. */
    private static Tensor gradient(Generator gen, DType t, int n, boolean special) {
        float[] g = Tensor.randn(gen, DType.F32, n).mul(Tensor.randn(gen, DType.F32, n).exp()).toFloatArray();
        if (special) {
            for (int i = AdamWStep.BLOCK; i < Math.min(n, 2 * AdamWStep.BLOCK); i++) g[i] = 0f;
            for (int i = 7; i < n; i += 997) g[i] = i % 2 == 0 ? Float.NaN : Float.POSITIVE_INFINITY;
        }
        return Tensor.of(g, n).to(t);
    }

    /** Runs body with -Djomni.adamw.kernel=kernel, restoring the property after. */
    private static void withKernel(String kernel, Runnable body) {
        String before = System.getProperty(CudaAdamWStep.KERNEL_PROPERTY);
        System.setProperty(CudaAdamWStep.KERNEL_PROPERTY, kernel);
        try {
            body.run();
        } finally {
            if (before == null) System.clearProperty(CudaAdamWStep.KERNEL_PROPERTY);
            else System.setProperty(CudaAdamWStep.KERNEL_PROPERTY, before);
        }
    }

    private static void compare(DType t, Variant variant, int n, boolean paged) {
        for (String kernel : new String[] {"v2", "v1"}) withKernel(kernel, () -> compare(kernel, t, variant, n, paged));
    }

    private static void compare(String kernel, DType t, Variant variant, int n, boolean paged) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        var gen = new Generator(seed);
        String at = "adamWStep " + variant + " (" + kernel + ") " + t + " n=" + n + (paged ? " (managed state)" : "") + " seed " + seed + ": ";
        try (var ng = Autograd.noGrad()) {
            Tensor pc = Tensor.randn(gen, DType.F32, n).to(t), pg = pc.to(gpu);
            State sc = State.of(variant, Device.cpu(), n, false), sg = State.of(variant, gpu, n, paged);
            for (int step = 1; step <= STEPS; step++) {
                Tensor g = gradient(gen, t, n, variant == Variant.BLOCKWISE_8BIT && step > 1);
                AdamWStep.Hyper h = hyper(variant, step);
                sc.step(variant, pc, g, h);
                sg.step(variant, pg, g.to(gpu), h);
            }
            float[] p1 = pc.toFloatArray(), p2 = pg.toFloatArray();
            int pDiff = 0;
            double worst = 0;
            for (int i = 0; i < n; i++) {
                if (Float.floatToRawIntBits(p1[i]) != Float.floatToRawIntBits(p2[i])) pDiff++;
                worst = Math.max(worst, Math.abs(p1[i] - p2[i]) / Math.max(1e-6, Math.abs(p1[i])));
            }
            String report = at + "parameters differing in bits " + pDiff + " of " + n + ", worst relative " + worst;
            if (variant == Variant.BLOCKWISE_8BIT) {
                int[] d1 = codeDiff(sc.m, sg.m), d2 = codeDiff(sc.v, sg.v);
                float[] a1 = sc.absmax1.toFloatArray(), a1g = sg.absmax1.toFloatArray(), a2 = sc.absmax2.toFloatArray(), a2g = sg.absmax2.toFloatArray();
                double aw = Math.max(relWorst(a1, a1g), relWorst(a2, a2g));
                System.out.println(report + "; codes1 differing " + d1[0] + " (max levels " + d1[1] + "), codes2 " + d2[0] + " (max " + d2[1]
                        + "), absmax worst relative " + aw);
                long allowed = (long) Math.floor(1e-4 * n);
                assertTrue(d1[0] <= allowed && d1[1] <= 1, at + "codes1 differ in " + d1[0] + " entries, by up to " + d1[1] + " levels");
                assertTrue(d2[0] <= allowed && d2[1] <= 1, at + "codes2 differ in " + d2[0] + " entries, by up to " + d2[1] + " levels");
                assertTrue(aw <= 1e-6, at + "absmax relative difference " + aw);
                boolean anyCodeUsed = false;
                for (byte b : sc.m.toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)) anyCodeUsed |= b != 127;
                assertTrue(anyCodeUsed, at + "the first moment moved off zero");
            } else {
                double mw = relWorst(sc.m.toFloatArray(), sg.m.toFloatArray()), vw = relWorst(sc.v.toFloatArray(), sg.v.toFloatArray());
                System.out.println(report + "; moments worst relative " + mw + ", " + vw);
                assertTrue(mw <= 1e-6 && vw <= 1e-6, at + "moments differ: " + mw + ", " + vw);
            }
            double bound = t == DType.BF16 ? 1e-2 : 1e-6;       // bf16: an ulp of the stored parameter at most
            assertTrue(worst <= bound, report);
            assertTrue(Double.isFinite(p2[0]) || !Double.isFinite(p1[0]), at + "parameter 0 " + p2[0]);
        }
    }

    /** {entries whose codes differ, the largest difference in levels}. */
    private static int[] codeDiff(Tensor cpu, Tensor gpu) {
        byte[] a = cpu.toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        byte[] b = gpu.toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        assertEquals(a.length, b.length);
        int count = 0, max = 0;
        for (int i = 0; i < a.length; i++) {
            int d = Math.abs(Byte.toUnsignedInt(a[i]) - Byte.toUnsignedInt(b[i]));
            if (d != 0) count++;
            max = Math.max(max, d);
        }
        return new int[] {count, max};
    }

    private static double relWorst(float[] a, float[] b) {
        double w = 0;
        for (int i = 0; i < a.length; i++) {
            if (Float.floatToRawIntBits(a[i]) == Float.floatToRawIntBits(b[i])) continue;
            w = Math.max(w, Math.abs(a[i] - b[i]) / Math.max(1e-30, Math.abs(a[i])));
        }
        return w;
    }

    /** The state of a parameter after STEPS steps by one kernel version: p, then the moments (or codes and absmax). */
    private static byte[][] stepped(String kernel, Variant variant, DType t, int n, long seed) {
        Device gpu = BackendParity.gpu();
        var gen = new Generator(seed);
        byte[][] out = new byte[5][];
        withKernel(kernel, () -> {
            try (var ng = Autograd.noGrad()) {
                Tensor p = Tensor.randn(gen, DType.F32, n).to(t).to(gpu);
                State s = State.of(variant, gpu, n, false);
                for (int step = 1; step <= STEPS; step++)
                    s.step(variant, p, gradient(gen, t, n, variant == Variant.BLOCKWISE_8BIT && step > 1).to(gpu), hyper(variant, step));
                Tensor[] all = {p, s.m, s.v, s.absmax1, s.absmax2};
                for (int i = 0; i < all.length; i++)
                    out[i] = all[i] == null ? new byte[0] : all[i].toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            }
        });
        return out;
    }

    @ParameterizedTest
    @EnumSource(Variant.class)
    void defaultKernelsGiveTheFirstKernelsBits(Variant variant) {
        long seed = Gpu.seed();
        for (DType t : new DType[] {DType.F32, DType.BF16}) {
            int n = 256 * 301 + 77;
            byte[][] v2 = stepped("v2", variant, t, n, seed), v1 = stepped("v1", variant, t, n, seed);
            String[] names = {"p", "m (codes1)", "v (codes2)", "absmax1", "absmax2"};
            for (int i = 0; i < names.length; i++)
                assertTrue(java.util.Arrays.equals(v2[i], v1[i]), "adamWStep " + variant + " " + t + " n=" + n + " seed " + seed + ": " + names[i] + " differ");
        }
    }

    @ParameterizedTest
    @EnumSource(Variant.class)
    void matchesTheCpuReferenceOverSeveralSteps(Variant variant) {
        for (int n : variant == Variant.BLOCKWISE_8BIT ? new int[] {4096, 256 * 37 + 13, 100_003} : new int[] {1, 4095, 100_003})
            compare(DType.F32, variant, n, false);
    }

    @Test
    void bf16ParametersRoundOnceAsOnTheCpu() {
        compare(DType.BF16, Variant.BLOCKWISE_8BIT, 256 * 9 + 1, false);
        compare(DType.BF16, Variant.TORCH, 1000, false);
    }

    @Test
    void stateInManagedMemoryComputesTheSame() {
        compare(DType.F32, Variant.BLOCKWISE_8BIT, 256 * 64 + 5, true);
        compare(DType.F32, Variant.BNB32, 777, true);
    }
}

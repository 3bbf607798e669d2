package dev.jomni.tensor.ops;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;

/**
 * One fused AdamW update of a parameter in place, in f32 arithmetic, on the parameter's device: the
 * optimizers' kernels (the training module's AdamW and AdamW8bit own the state and its layout; this op
 * owns the arithmetic). Not differentiable and not recorded: it runs outside autograd.
 *
 * <ul>
 * <li>{@link #torch}: torch's single-tensor AdamW ({@code adamw_torch}) with f32 moments m, v:
 *     p ← p·(1 − lr·λ) (when λ ≠ 0); m ← m + (1−β₁)(g − m) (torch's lerp); v ← v·β₂ + ((1−β₂)·g)·g;
 *     p ← p − stepSize·m/(√v / c₂ + ε), with stepSize = lr/(1−β₁ᵗ) and c₂ = √(1−β₂ᵗ) from the host.
 * <li>{@link #bnb32}: bitsandbytes' 32-bit two-state kernel ({@code kOptimizer32bit2State}, ADAM), what
 *     its 8-bit optimizers use for tensors under min_8bit_size: m ← m·β₁ + (1−β₁)·g;
 *     v ← v·β₂ + (1−β₂)·(g·g); p ← p + stepSize·m/(√v + ε·c₂) with stepSize = −lr·c₂/(1−β₁ᵗ);
 *     then p ← p·(1 − lr·λ) when λ &gt; 0.
 * <li>{@link #blockwise8bit}: bitsandbytes' {@code kOptimizerStatic8bit2StateBlockwise} (ADAM): m and v as
 *     U8 codes into qmap1 (signed) / qmap2 (unsigned), one f32 absmax per block of {@value #BLOCK}; per
 *     element m = qmap1[c₁]·absmax₁, v = qmap2[c₂]·absmax₂; v ← v·β₂ + ((1−β₂)·g)·g; m ← m·β₁ + (1−β₁)·g; the
 *     block's new absmax is max|m|, max|v|; p as in bnb32 with the unquantized new moments; then m/absmax₁,
 *     v/absmax₂ are re-coded to the nearest code (ties to the lower; an all-zero block codes 0), and an m
 *     whose code has the other sign moves one code towards its own. A non-finite g zeroes the element's
 *     moments and leaves its parameter.
 * </ul>
 * Every product and sum is one f32 operation in the order written (no fused multiply-add), divisions and
 * square roots IEEE-rounded, so the CPU and CUDA kernels give the same bits (one exception: a NaN moment, only
 * possible once a finite g² overflows, makes Java's block absmax NaN where CUDA's fmaxf skips it). p is f32 or bf16 (computed in
 * f32, rounded once when stored), g f32 or bf16; every tensor contiguous, on one device.
 */
public final class AdamWStep {
    private AdamWStep() {}

    /** bitsandbytes' quantization block. */
    public static final int BLOCK = 256;

    /**
     * The scalars of one step, in f32 as the kernels use them; {@code stepSize} and {@code correction} are
     * the variant's (see the class comment), computed on the host from the step count.
     */
    public record Hyper(float beta1, float beta2, float eps, float lr, float weightDecay, float stepSize, float correction) {}

    /** What every backend implements; the tensors are checked by the entry points. */
    public interface Kernels {
        /** torch's AdamW: p, g [n]; m, v f32 [n], updated in place with p. */
        void torch(Tensor p, Tensor g, Tensor m, Tensor v, Hyper h);

        /** bitsandbytes' 32-bit update: as {@link #torch}, the other arithmetic. */
        void bnb32(Tensor p, Tensor g, Tensor m, Tensor v, Hyper h);

        /**
         * bitsandbytes' blockwise 8-bit update: p, g [n]; codes1, codes2 U8 [n]; absmax1, absmax2 f32
         * [ceil(n/256)]; qmap1, qmap2 f32 [256] ascending. Codes and absmax updated in place with p.
         */
        void blockwise8bit(Tensor p, Tensor g, Tensor codes1, Tensor codes2, Tensor absmax1, Tensor absmax2, Tensor qmap1, Tensor qmap2, Hyper h);
    }

    /** torch's AdamW step of p (see the class comment). */
    public static void torch(Tensor p, Tensor g, Tensor m, Tensor v, Hyper h) {
        check32("adamWStep.torch", p, g, m, v);
        if (p.numel() > 0) kernels(p).torch(p, g, m, v, h);
    }

    /** bitsandbytes' 32-bit AdamW step of p (see the class comment). */
    public static void bnb32(Tensor p, Tensor g, Tensor m, Tensor v, Hyper h) {
        check32("adamWStep.bnb32", p, g, m, v);
        if (p.numel() > 0) kernels(p).bnb32(p, g, m, v, h);
    }

    /** bitsandbytes' blockwise 8-bit AdamW step of p (see the class comment). */
    public static void blockwise8bit(Tensor p, Tensor g, Tensor codes1, Tensor codes2, Tensor absmax1, Tensor absmax2,
                                     Tensor qmap1, Tensor qmap2, Hyper h) {
        String op = "adamWStep.blockwise8bit";
        checkParam(op, p, g);
        long n = p.numel(), blocks = (n + BLOCK - 1) / BLOCK;
        state(op, "codes1", codes1, DType.U8, n, p);
        state(op, "codes2", codes2, DType.U8, n, p);
        state(op, "absmax1", absmax1, DType.F32, blocks, p);
        state(op, "absmax2", absmax2, DType.F32, blocks, p);
        state(op, "qmap1", qmap1, DType.F32, 256, p);
        state(op, "qmap2", qmap2, DType.F32, 256, p);
        if (n > 0) kernels(p).blockwise8bit(p, g, codes1, codes2, absmax1, absmax2, qmap1, qmap2, h);
    }

    private static void check32(String op, Tensor p, Tensor g, Tensor m, Tensor v) {
        checkParam(op, p, g);
        state(op, "m", m, DType.F32, p.numel(), p);
        state(op, "v", v, DType.F32, p.numel(), p);
    }

    private static void checkParam(String op, Tensor p, Tensor g) {
        if (p.dtype() != DType.F32 && p.dtype() != DType.BF16)
            throw Check.fail(op, "parameter of %s: f32 or bf16 only", p.dtype().lower());
        if (g.dtype() != DType.F32 && g.dtype() != DType.BF16)
            throw Check.fail(op, "gradient of %s: f32 or bf16 only", g.dtype().lower());
        if (!Arrays.equals(p.shape(), g.shape()))
            throw Check.fail(op, "gradient %s for a parameter %s", Check.str(g.shape()), Check.str(p.shape()));
        Check.sameDevice(op, p, g);
        if (!p.isContiguous() || !g.isContiguous()) throw Check.fail(op, "parameter and gradient must be contiguous");
    }

    private static void state(String op, String name, Tensor t, DType dtype, long n, Tensor p) {
        if (t.dtype() != dtype || t.numel() != n || !t.isContiguous())
            throw Check.fail(op, "%s must be contiguous %s of %d elements, got %s %s", name, dtype.lower(), n, t.dtype().lower(), Check.str(t.shape()));
        Check.sameDevice(op, p, t);
    }

    /**
     * bitsandbytes' {@code create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)}: for i = 0…6, the means of
     * consecutive points of linspace(0.1, 1, 2^i + 1) (signed; 2^(i+1) + 1 unsigned) times 10^(i−6), mirrored negative
     * when signed; then 0 and 1; sorted. 256 values in [−1, 1] (signed) or [0, 1], dense near zero.
     */
    public static float[] dynamicMap(boolean signed) {
        float[] data = new float[256];
        int k = 0;
        for (int i = 0; i < 7; i++) {
            int items = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] boundaries = linspace(0.1f, 1f, items);
            float scale = (float) Math.pow(10, -6 + i);
            for (int j = 0; j + 1 < items; j++) {
                float mean = (boundaries[j] + boundaries[j + 1]) / 2f;
                data[k++] = scale * mean;
                if (signed) data[k++] = -scale * mean;
            }
        }
        data[k++] = 0f;
        data[k++] = 1f;
        if (k != 256) throw new AssertionError("dynamic map has " + k + " values");
        Arrays.sort(data);
        return data;
    }

    /** torch.linspace in f32: start + i·step for the first half, end − (n−1−i)·step for the rest. */
    private static float[] linspace(float start, float end, int n) {
        float[] out = new float[n];
        float step = (end - start) / (n - 1);
        int half = n / 2;
        for (int i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
        return out;
    }

    private static Kernels kernels(Tensor p) { return Backend.of(p).kernels(Kernels.class); }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.SplittableRandom;

/** Test helpers: the GPU (or a skip that says why not), random data, and f16/bf16 conversions on the CPU. */
final class Gpu {
    private Gpu() {}

    /** Device 0's context; skips the test where there is no CUDA driver or GPU. */
    static CudaContext context() {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        return Cuda.context(0);
    }

    /** A fresh seed per run, printed by failing assertions so that a failure can be replayed. */
    static long seed() {
        return System.nanoTime() ^ 0x5DEECE66DL;
    }

    /** Uniform in [lo, hi), never exactly 0 (0 would hide an unwritten output). */
    static float[] uniform(SplittableRandom r, int n, float lo, float hi) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            float v;
            do v = lo + (hi - lo) * (float) r.nextDouble(); while (v == 0f);
            x[i] = v;
        }
        return x;
    }

    /** f32 -> bf16 bits, round to nearest even (what __float2bfloat16_rn does). */
    static short bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) 0x7FC0;
        bits += 0x7FFF + ((bits >>> 16) & 1);
        return (short) (bits >>> 16);
    }

    static float bf16ToFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    static short[] bf16(float[] x) {
        short[] h = new short[x.length];
        for (int i = 0; i < x.length; i++) h[i] = bf16(x[i]);
        return h;
    }

    static float[] bf16ToFloat(short[] h) {
        float[] x = new float[h.length];
        for (int i = 0; i < h.length; i++) x[i] = bf16ToFloat(h[i]);
        return x;
    }

    /** ‖got − ref‖ / ‖ref‖ in f64; NaN anywhere gives NaN (which fails every bound). */
    static double relativeError(double[] got, double[] ref) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = got[i] - ref[i];
            num += d * d;
            den += ref[i] * ref[i];
        }
        return Math.sqrt(num / den);
    }

    /**
     * ‖got − ref‖ / ‖ref‖ of two tensors, or ‖got‖ where ref is all zero (a softmax over one element has a
     * zero gradient, a one-class loss is 0): NaN anywhere gives NaN.
     */
    static double relErr(dev.jomni.tensor.Tensor got, dev.jomni.tensor.Tensor ref) {
        double[] gv = got.toDoubleArray(), rv = ref.toDoubleArray();
        double den = 0;
        for (double r : rv) den += r * r;
        if (den > 0) return relativeError(gv, rv);
        double num = 0;
        for (double x : gv) num += x * x;
        return Math.sqrt(num);
    }
}

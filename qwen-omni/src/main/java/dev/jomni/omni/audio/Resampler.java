package dev.jomni.omni.audio;

/**
 * Band-limited sample-rate conversion by a Kaiser-windowed sinc (polyphase form): output sample n
 * sits at input time t = n·from/to and is Σ_j x[j]·h(t − j), with
 * h(τ) = 2f_c·sinc(2f_c·τ)·kaiser(τ / halfWidth, β), f_c = 0.955 × the lower Nyquist (in cycles per
 * input sample), 64 zero crossings of the sinc on each side and β = 8.96. Measured for 22.05/44.1/48
 * kHz → 16 kHz: gain within 4e−5 of 1 up to 7.3 kHz (0.91 × the new Nyquist), transition 7.3–7.95 kHz,
 * at most 1e−5 (−100 dB) from 8 kHz up, so nothing aliases; 8 kHz → 16 kHz passes up to 3.65 kHz.
 * Each phase's taps are scaled to sum to 1 (exact DC gain). Samples beyond the ends count as zero.
 * Cost: about 400 multiply-adds per output sample (30 s of 44.1 kHz audio: ~130 ms on one core).
 *
 * <p>With from/to reduced to D/U, the taps of the U possible phases are precomputed when U ≤ 4096
 * (every common rate: 44.1k → 16k is 441/160); otherwise each output computes its own taps (slower,
 * same result). The output has round(L·to/from) samples. Resampling is outside the front end's parity
 * with transformers: the processor itself requires 16 kHz input.
 */
public final class Resampler {
    public static final int TARGET_RATE = 16000;
    private static final int ZERO_CROSSINGS = 64;
    private static final double ROLLOFF = 0.955, BETA = 8.96;
    private static final int MAX_TABLE_PHASES = 4096;

    private Resampler() {}

    /** The audio at 16 kHz (the same samples if it already is). */
    public static float[] to16k(Wav.Audio audio) {
        return resample(audio.samples(), audio.sampleRate(), TARGET_RATE);
    }

    public static float[] resample(float[] x, int fromRate, int toRate) {
        if (fromRate <= 0 || toRate <= 0)
            throw new IllegalArgumentException("resample: rates must be positive, got " + fromRate + " → " + toRate);
        if (fromRate == toRate) return x.clone();
        int g = gcd(fromRate, toRate), down = fromRate / g, up = toRate / g;
        int outLength = (int) ((2L * x.length * up + down) / (2L * down));      // round(L·up/down), halves up
        double fc = 0.5 * ROLLOFF * Math.min(1.0, (double) up / down);          // cycles per input sample
        double halfWidth = ZERO_CROSSINGS / (2 * fc);                           // input samples
        int k = (int) Math.ceil(halfWidth);                                     // taps j = i0 − k + 1 … i0 + k
        double[][] table = null;
        if (up <= MAX_TABLE_PHASES) {
            table = new double[up][];
            for (int p = 0; p < up; p++) table[p] = taps((double) p / up, k, fc, halfWidth);
        }
        var out = new float[outLength];
        for (int n = 0; n < outLength; n++) {
            long pos = (long) n * down;
            int i0 = (int) (pos / up), phase = (int) (pos % up);
            double[] h = table != null ? table[phase] : taps((double) phase / up, k, fc, halfWidth);
            int j0 = i0 - k + 1;
            int lo = Math.max(0, -j0), hi = Math.min(2 * k, x.length - j0);
            double s = 0;
            for (int o = lo; o < hi; o++) s += h[o] * x[j0 + o];
            out[n] = (float) s;
        }
        return out;
    }

    /** Taps h(φ − (o − k + 1)) for o = 0 … 2k − 1: the weights of x[i0 − k + 1 …] at fractional offset φ. */
    private static double[] taps(double phi, int k, double fc, double halfWidth) {
        var h = new double[2 * k];
        double sum = 0, i0Beta = besselI0(BETA);
        for (int o = 0; o < 2 * k; o++) {
            double tau = phi + (k - 1 - o);
            double r = tau / halfWidth;
            if (Math.abs(r) >= 1) continue;
            double arg = 2 * fc * tau;
            double sinc = arg == 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
            h[o] = 2 * fc * sinc * besselI0(BETA * Math.sqrt(1 - r * r)) / i0Beta;
            sum += h[o];
        }
        for (int o = 0; o < 2 * k; o++) h[o] /= sum;
        return h;
    }

    /** Modified Bessel function of the first kind, order 0, by its power series. */
    static double besselI0(double x) {
        double sum = 1, term = 1, q = x * x / 4;
        for (int m = 1; m < 200; m++) {
            term *= q / ((double) m * m);
            sum += term;
            if (term < 1e-17 * sum) break;
        }
        return sum;
    }

    private static int gcd(int a, int b) {
        while (b != 0) { int t = a % b; a = b; b = t; }
        return a;
    }
}

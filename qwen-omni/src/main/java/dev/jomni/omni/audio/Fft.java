package dev.jomni.omni.audio;

/**
 * Complex DFT of one fixed size n, mixed radix, decimation in time:
 * X[k] = Σ_j x[j]·exp(−2πi·jk/n). Each stage of prime-or-4 factor p splits the input into p
 * interleaved sub-sequences, transforms them recursively, and combines them with a size-p DFT per
 * output column, O(n·Σp) in all (400 = 4·4·5·5: 18 complex multiply-adds per point, against 400 for a
 * direct DFT). Every twiddle comes from one table of exp(−2πi·j/n), computed in double. An instance
 * keeps scratch space: one per thread.
 */
final class Fft {
    private final int n;
    private final int[] factors;
    private final double[] cos, sin;             // W_n^j = cos[j] − i·sin[j]
    private final double[] yRe, yIm;             // one column of a stage's butterfly

    Fft(int n) {
        if (n < 1) throw new IllegalArgumentException("FFT size " + n);
        this.n = n;
        var f = new java.util.ArrayList<Integer>();
        int r = n;
        while (r % 4 == 0) { f.add(4); r /= 4; }
        for (int p = 2; r > 1; p++)
            while (r % p == 0) { f.add(p); r /= p; }
        factors = f.stream().mapToInt(Integer::intValue).toArray();
        cos = new double[n];
        sin = new double[n];
        for (int j = 0; j < n; j++) {
            double a = 2 * Math.PI * j / n;
            cos[j] = Math.cos(a);
            sin[j] = Math.sin(a);
        }
        int maxP = 1;
        for (int p : factors) maxP = Math.max(maxP, p);
        yRe = new double[maxP];
        yIm = new double[maxP];
    }

    int size() { return n; }

    /** out = DFT(in); in and out must be distinct arrays of length n. */
    void transform(double[] inRe, double[] inIm, double[] outRe, double[] outIm) {
        stage(inRe, inIm, 0, 1, outRe, outIm, 0, n, 0);
    }

    /** DFT of the len inputs in[inOff + stride·j] into out[outOff … outOff + len). */
    private void stage(double[] inRe, double[] inIm, int inOff, int stride,
                       double[] outRe, double[] outIm, int outOff, int len, int level) {
        if (len == 1) {
            outRe[outOff] = inRe[inOff];
            outIm[outOff] = inIm[inOff];
            return;
        }
        int p = factors[level], m = len / p;
        for (int q = 0; q < p; q++)
            stage(inRe, inIm, inOff + q * stride, stride * p, outRe, outIm, outOff + q * m, m, level + 1);
        int step = n / len, pStep = n / p;       // W_len^x = W_n^(x·step), W_p^x = W_n^(x·pStep)
        for (int k = 0; k < m; k++) {
            // y_q = W_len^(qk) · Y_q[k]; sub-transform q sits at out[outOff + q·m …]
            for (int q = 0; q < p; q++) {
                int at = outOff + q * m + k, w = (int) ((long) q * k * step % n);
                double a = outRe[at], b = outIm[at], c = cos[w], s = sin[w];
                yRe[q] = a * c + b * s;
                yIm[q] = b * c - a * s;
            }
            // X[k + r·m] = Σ_q y_q · W_p^(qr)
            for (int rr = 0; rr < p; rr++) {
                double sr = 0, si = 0;
                for (int q = 0; q < p; q++) {
                    int w = (q * rr % p) * pStep;
                    double c = cos[w], s = sin[w];
                    sr += yRe[q] * c + yIm[q] * s;
                    si += yIm[q] * c - yRe[q] * s;
                }
                outRe[outOff + k + rr * m] = sr;
                outIm[outOff + k + rr * m] = si;
            }
        }
    }
}

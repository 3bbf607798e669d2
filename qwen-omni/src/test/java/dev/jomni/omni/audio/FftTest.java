package dev.jomni.omni.audio;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class FftTest {
    @Test
    void matchesTheDirectDftForMixedRadixAndPrimeSizes() {
        var rnd = new Random(5);
        for (int n : new int[] {1, 2, 3, 4, 7, 12, 63, 97, 128, 400, 512}) {
            double[] re = new double[n], im = new double[n];
            for (int i = 0; i < n; i++) { re[i] = rnd.nextGaussian(); im[i] = rnd.nextGaussian(); }
            double[] oRe = new double[n], oIm = new double[n];
            new Fft(n).transform(re, im, oRe, oIm);
            double maxErr = 0, maxRef = 0;
            for (int k = 0; k < n; k++) {
                double sr = 0, si = 0;
                for (int j = 0; j < n; j++) {
                    double a = -2 * Math.PI * ((long) j * k % n) / n;
                    sr += re[j] * Math.cos(a) - im[j] * Math.sin(a);
                    si += re[j] * Math.sin(a) + im[j] * Math.cos(a);
                }
                maxErr = Math.max(maxErr, Math.hypot(sr - oRe[k], si - oIm[k]));
                maxRef = Math.max(maxRef, Math.hypot(sr, si));
            }
            assertTrue(maxErr <= 1e-12 * Math.max(1, maxRef), "n=" + n + " max error " + maxErr);
        }
    }
}

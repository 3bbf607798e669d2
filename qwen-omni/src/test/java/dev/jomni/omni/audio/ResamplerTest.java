package dev.jomni.omni.audio;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class ResamplerTest {
    private static float[] tone(double hz, int rate, int n, double amplitude) {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (amplitude * Math.sin(2 * Math.PI * hz * i / rate));
        return x;
    }

    @Test
    void outputLengthIsTheRoundedRatio() {
        for (int rate : new int[] {8000, 11025, 22050, 24000, 44100, 48000, 96000, 44101})
            for (int len : new int[] {1, 2, 441, 1000, 12345}) {
                long expected = Math.round(len * 16000.0 / rate);
                assertEquals(expected, Resampler.resample(new float[len], rate, 16000).length, rate + " Hz, " + len + " samples");
            }
        assertArrayEquals(new float[] {1, 2, 3}, Resampler.resample(new float[] {1, 2, 3}, 16000, 16000));
    }

    @Test
    void tonesBelowTheNewNyquistSurvive() {
        for (int rate : new int[] {8000, 22050, 44100, 48000, 44101}) {
            for (double hz : new double[] {440, 1000, 3500, 7000}) {
                if (hz >= 0.45 * Math.min(rate, 16000)) continue;
                int n = rate / 2;                                    // 0.5 s
                float[] y = Resampler.resample(tone(hz, rate, n, 0.5), rate, 16000);
                float[] want = tone(hz, 16000, y.length, 0.5);
                double maxErr = 0;
                for (int i = 800; i < y.length - 800; i++) maxErr = Math.max(maxErr, Math.abs(y[i] - want[i]));
                // passband: 1e-3 of full scale at and below 3.5 kHz, 0.5% near the band edge
                double bound = hz <= 3500 ? 1e-3 : 5e-3;
                assertTrue(maxErr < bound * 0.5, rate + " Hz → 16 kHz, " + hz + " Hz tone: max error " + maxErr);
            }
        }
    }

    @Test
    void contentAboveTheNewNyquistIsRemoved() {
        for (int rate : new int[] {44100, 48000, 96000}) {
            for (double hz : new double[] {8200, 10000, 15000}) {
                float[] y = Resampler.resample(tone(hz, rate, rate / 2, 1.0), rate, 16000);
                double energy = 0;
                for (int i = 800; i < y.length - 800; i++) energy += y[i] * y[i];
                double rms = Math.sqrt(energy / (y.length - 1600));
                assertTrue(rms < 1e-3, rate + " Hz, " + hz + " Hz tone (would alias to " + (16000 - hz) + " Hz): rms " + rms);
            }
        }
    }

    @Test
    void keepsDcAndSilence() {
        var dc = new float[4410];
        java.util.Arrays.fill(dc, 0.3f);
        float[] y = Resampler.resample(dc, 44100, 16000);
        for (int i = 400; i < y.length - 400; i++) assertEquals(0.3f, y[i], 1e-6f, "sample " + i);
        for (float v : Resampler.resample(new float[1000], 22050, 16000)) assertEquals(0f, v);
    }

    @Test
    void wavAtAnotherRateComesOutAt16k(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        var file = dir.resolve("a.wav");
        Wav.write(file, tone(1000, 44100, 44100, 0.5), 44100);
        float[] y = Resampler.to16k(Wav.read(file));
        assertEquals(16000, y.length);
        float[] want = tone(1000, 16000, 16000, 0.5);
        for (int i = 800; i < 15200; i++) assertEquals(want[i], y[i], 2e-3f, "sample " + i);   // 16-bit quantisation
    }
}

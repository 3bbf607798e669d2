package dev.jomni.omni.audio;

import static org.junit.jupiter.api.Assertions.*;

import dev.jomni.nn.io.Npy;
import dev.jomni.omni.config.AudioConfig;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.config.ThinkerConfig;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LogMelTest {
    private static LogMel whisper128() {
        AudioConfig audio = ThinkerConfig.load(Fixtures.tiny("model/config.json")).audio();
        return LogMel.of(PreprocessorConfig.load(Fixtures.tiny("model/preprocessor_config.json"), audio));
    }

    @Test
    void batchOfFixtureWavsMatchesTransformersFeaturesAndMask() {
        var a0 = Wav.read(Fixtures.tiny("audio0.wav"));
        var a1 = Wav.read(Fixtures.tiny("audio1.wav"));
        assertEquals(16000, a0.sampleRate());
        var mel = whisper128();
        var batch = mel.batch(List.of(a0.samples(), a1.samples()));

        var expected = Npy.read(Fixtures.tiny("input_features.npy"));
        assertArrayEquals(expected.shape(), new long[] {batch.batch(), batch.melBins(), batch.frames()});
        float[] want = expected.toFloats(), got = batch.values();
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < want.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
            maxRef = Math.max(maxRef, Math.abs(want[i]));
        }
        System.out.printf("log-mel vs input_features.npy: max|a-b| = %.3g, max|b| = %.3g, relative %.3g%n",
                maxDiff, maxRef, maxDiff / maxRef);
        assertTrue(maxDiff / maxRef < 1e-4, "relative error " + maxDiff / maxRef);

        var mask = Npy.read(Fixtures.tiny("feature_attention_mask.npy"));
        assertArrayEquals(mask.shape(), new long[] {2, batch.frames()});
        assertArrayEquals(mask.toLongs(), batch.attentionMask());
        assertArrayEquals(new int[] {130, 260}, batch.validFrames());
        assertArrayEquals(new int[] {17, 34}, batch.audioTokenCounts(), "reference.json audio_tokens");
        var fromFiles = mel.batchOfWavs(List.of(Fixtures.tiny("audio0.wav"), Fixtures.tiny("audio1.wav")));
        assertArrayEquals(batch.values(), fromFiles.values());
        assertArrayEquals(batch.attentionMask(), fromFiles.attentionMask());
    }

    @Test
    void audioTokenCountMatchesTransformersNestedFloorFormula() {
        for (int n = 0; n <= 1000; n++) {
            // _get_feat_extract_output_lengths, written as transformers does with floor division
            int leave = n % 100;
            int feat = Math.floorDiv(leave - 1, 2) + 1;
            int out = Math.floorDiv(Math.floorDiv(feat - 1, 2) + 1 - 1, 2) + 1 + (n / 100) * 13;
            assertEquals(out, LogMel.audioTokenCount(n), n + " frames");
        }
    }

    @Test
    void maskFollowsTheProcessorsRulesForUnevenLengths() {
        var mel = whisper128();
        var rnd = new Random(1);
        // Lmax = 16080 is not a multiple of 160: T = 100, the longest clip gets ⌊16080/160⌋ = 100 frames,
        // shorter ones ⌈L/160⌉.
        int[] lengths = {16080, 8000, 8001, 201};
        var clips = new java.util.ArrayList<float[]>();
        for (int len : lengths) {
            var c = new float[len];
            for (int i = 0; i < len; i++) c[i] = (float) (0.1 * rnd.nextGaussian());
            clips.add(c);
        }
        var batch = mel.batch(clips);
        assertEquals(100, batch.frames());
        assertArrayEquals(new int[] {100, 50, 51, 2}, batch.validFrames());
        for (int b = 0; b < lengths.length; b++)
            for (int t = 0; t < batch.frames(); t++)
                assertEquals(t < batch.validFrames()[b] ? 1L : 0L, batch.attentionMask()[b * 100 + t], "clip " + b + " frame " + t);
        assertEquals(160 * 100 / 160, mel.batch(List.of(new float[16000])).frames(), "an exact multiple of the hop");
    }

    @Test
    void clampsEachClipEightDecadesBelowItsOwnMaximum() {
        var mel = whisper128();
        var loud = new float[4000];
        for (int i = 0; i < loud.length; i++) loud[i] = (float) Math.sin(2 * Math.PI * 440 * i / 16000.0);
        float[] features = mel.clip(loud);
        float max = Float.NEGATIVE_INFINITY, min = Float.POSITIVE_INFINITY;
        for (float v : features) { max = Math.max(max, v); min = Math.min(min, v); }
        assertEquals(max - 2.0f, min, 1e-5f, "(G + 4)/4 maps a floor 8 decades down to max − 2");
        // 440 Hz lands in the filter whose peak is nearest 440 Hz
        int frames = features.length / 128, best = -1;
        float bestValue = Float.NEGATIVE_INFINITY;
        for (int m = 0; m < 128; m++)
            if (features[m * frames + 10] > bestValue) { bestValue = features[m * frames + 10]; best = m; }
        double peak = LogMel.melToHertz((best + 1) * LogMel.hertzToMel(8000) / 129);
        assertEquals(440, peak, 40, "mel bin " + best);
    }

    @Test
    void slaneyFiltersHaveUnitAreaWhereWiderThanABin() {
        float[][] w = LogMel.melFilterBank(128, 201, 16000);
        for (int j = 105; j < 128; j++) {    // 5+ bins wide: the sampled triangle's sum is near its area
            double area = 0;
            for (float v : w[j]) area += v * 40.0;     // bins are 40 Hz apart
            assertEquals(1.0, area, 0.025, "filter " + j);
        }
        assertEquals(1000, LogMel.melToHertz(LogMel.hertzToMel(1000)), 1e-9);
        assertEquals(15.0, LogMel.hertzToMel(1000), 1e-12);
        assertEquals(6400, LogMel.melToHertz(42), 1e-6, "27 mels per factor 6.4 above 1 kHz");
    }

    @Test
    void refusesClipsTooShortForReflectPadding() {
        var e = assertThrows(IllegalArgumentException.class, () -> whisper128().batch(List.of(new float[200])));
        assertTrue(e.getMessage().contains("200 samples"), e.getMessage());
    }

    @Test
    void speedOfTheFixtureBatch() {
        var mel = whisper128();
        var a0 = Wav.read(Fixtures.tiny("audio0.wav")).samples();
        var a1 = Wav.read(Fixtures.tiny("audio1.wav")).samples();
        for (int i = 0; i < 20; i++) mel.batch(List.of(a0, a1));
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 20; i++) {
            long t0 = System.nanoTime();
            var b = mel.batch(List.of(a0, a1));
            best = Math.min(best, System.nanoTime() - t0);
            assertEquals(260, b.frames());
        }
        System.out.printf("log-mel of 1.3 s + 2.6 s (batch padded to 2 × 2.6 s): best %.2f ms%n", best / 1e6);
    }
}

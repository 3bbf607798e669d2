package dev.jomni.omni.audio;

import dev.jomni.omni.config.PreprocessorConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The log-mel spectrogram exactly as transformers' WhisperFeatureExtractor computes it for the
 * Qwen3-Omni processor (padding to the longest clip, no truncation, attention mask on):
 * <ol>
 *   <li>clips (mono, 16 kHz, float) are right-padded with 0.0 to the longest length Lmax;</li>
 *   <li>STFT of each padded clip: reflect padding of n_fft/2 on both sides (edge sample not repeated),
 *       periodic Hann window, hop 160, power |X|², one-sided (n_fft/2 + 1 bins); of the
 *       1 + ⌊Lmax/hop⌋ frames the last is dropped, T = ⌊Lmax/hop⌋;</li>
 *   <li>M = Wmelᵀ·P with the Slaney-scale, Slaney-normalised filter bank over 0–8000 Hz (built in
 *       float64, stored as float32 as transformers does);</li>
 *   <li>G = log10(max(M, 1e−10)); G = max(G, max(G) − 8) with the maximum over the whole clip (padding
 *       included); features = (G + 4)/4.</li>
 * </ol>
 * The feature attention mask marks frame t of clip b valid iff 160·t &lt; L_b, so a clip gets
 * min(⌈L_b/160⌉, T) valid frames. The STFT and filter bank run in double precision, the output is
 * float32 [B, mel, T]. Whisper's 30 s cap does not apply (the processor passes truncation=False).
 */
public final class LogMel {
    /** Whisper's filter bank always spans 0–8000 Hz (transformers passes max_frequency=8000). */
    private static final double MAX_FREQUENCY = 8000.0;

    private final int melBins, nFft, hop, bins;
    private final double[] window;
    private final float[][] filters;            // [mel][bins]
    private final int[] filterStart, filterEnd; // nonzero bins of each filter: [start, end)

    /** The front end a validated preprocessor config describes. */
    public static LogMel of(PreprocessorConfig c) {
        return new LogMel(c.featureSize(), c.samplingRate(), c.nFft(), c.hopLength());
    }

    public LogMel(int melBins, int sampleRate, int nFft, int hopLength) {
        if (melBins < 1 || nFft < 2 || hopLength < 1 || sampleRate < 1)
            throw new IllegalArgumentException("LogMel: mel=" + melBins + " rate=" + sampleRate + " n_fft=" + nFft + " hop=" + hopLength);
        this.melBins = melBins;
        this.nFft = nFft;
        this.hop = hopLength;
        this.bins = nFft / 2 + 1;
        window = new double[nFft];
        for (int i = 0; i < nFft; i++) window[i] = (float) (0.5 - 0.5 * Math.cos(2 * Math.PI * i / nFft));
        filters = melFilterBank(melBins, bins, sampleRate);
        filterStart = new int[melBins];
        filterEnd = new int[melBins];
        for (int j = 0; j < melBins; j++) {
            int s = 0, e = bins;
            while (s < bins && filters[j][s] == 0) s++;
            while (e > s && filters[j][e - 1] == 0) e--;
            filterStart[j] = s;
            filterEnd[j] = e;
        }
    }

    public int melBins() { return melBins; }

    /**
     * Features of a batch as the processor returns them.
     *
     * @param values        [B, mel, T] row-major
     * @param attentionMask [B, T] 0/1, as int64 like {@code feature_attention_mask}
     * @param validFrames   [B] the number of ones in each mask row
     */
    public record Batch(float[] values, long[] attentionMask, int[] validFrames, int batch, int melBins, int frames) {
        /** Audio tokens each clip becomes ({@link #audioTokenCount} of its valid frames). */
        public int[] audioTokenCounts() {
            var n = new int[batch];
            for (int b = 0; b < batch; b++) n[b] = audioTokenCount(validFrames[b]);
            return n;
        }

        /** Clip b's features [mel, T] (a copy). */
        public float[] clip(int b) {
            return Arrays.copyOfRange(values, b * melBins * frames, (b + 1) * melBins * frames);
        }
    }

    /**
     * Rows the audio encoder outputs, and so {@code <|audio_pad|>} tokens the prompt needs, for a clip
     * of n valid mel frames: 13·⌊n/100⌋ + ⌈(n mod 100)/8⌉ (transformers'
     * {@code _get_feat_extract_output_lengths}: 100-frame chunks, three stride-2 convolutions, 13 rows
     * per full chunk; its constants are fixed, not read from n_window). About 13 per second.
     */
    public static int audioTokenCount(int validFrames) {
        if (validFrames < 0) throw new IllegalArgumentException("audioTokenCount: " + validFrames + " frames");
        return 13 * (validFrames / 100) + (validFrames % 100 + 7) / 8;
    }

    /** Features of clips that are already 16 kHz mono, padded to the longest. */
    public Batch batch(List<float[]> clips) {
        if (clips.isEmpty()) throw new IllegalArgumentException("LogMel.batch: no clips");
        int lmax = 0;
        for (float[] c : clips) lmax = Math.max(lmax, c.length);
        if (lmax <= nFft / 2)
            throw new IllegalArgumentException("LogMel.batch: the longest clip has " + lmax + " samples; reflect padding needs more than "
                    + nFft / 2 + " (" + 1000L * (nFft / 2 + 1) / 16000.0 + " ms at 16 kHz)");
        int b = clips.size(), t = lmax / hop;
        var values = new float[b * melBins * t];
        var mask = new long[b * t];
        var valid = new int[b];
        var fft = new Fft(nFft);
        var padded = new float[lmax];
        for (int i = 0; i < b; i++) {
            float[] c = clips.get(i);
            System.arraycopy(c, 0, padded, 0, c.length);
            Arrays.fill(padded, c.length, lmax, 0f);
            logMel(padded, t, fft, values, i * melBins * t);
            // frame f is valid iff its first sample 160·f lies in the clip
            valid[i] = (int) Math.min((c.length + (long) hop - 1) / hop, t);
            Arrays.fill(mask, i * t, i * t + valid[i], 1L);
        }
        return new Batch(values, mask, valid, b, melBins, t);
    }

    /**
     * Features of WAV files as {@code omni forward} takes them (audio0.wav, audio1.wav, …): each read
     * and mixed to mono by {@link Wav}, resampled to 16 kHz by {@link Resampler} where it is not, then
     * batched as {@link #batch}.
     */
    public Batch batchOfWavs(List<Path> files) {
        var clips = new ArrayList<float[]>();
        for (Path f : files) clips.add(Resampler.to16k(Wav.read(f)));
        return batch(clips);
    }

    /** Features [mel, ⌊L/160⌋] of a single clip processed alone. */
    public float[] clip(float[] samples) {
        return batch(List.of(samples)).values();
    }

    /** Writes clip x's [mel, frames] features at out[outOff …]. */
    private void logMel(float[] x, int frames, Fft fft, float[] out, int outOff) {
        int len = x.length, half = nFft / 2;
        double[] re = new double[nFft], im = new double[nFft], fre = new double[nFft], fim = new double[nFft];
        double[] power = new double[bins];
        double[] g = new double[melBins * frames];
        double max = Double.NEGATIVE_INFINITY;
        for (int f = 0; f < frames; f++) {
            int start = f * hop - half;          // in unpadded coordinates
            for (int i = 0; i < nFft; i++) {
                int j = start + i;
                if (j < 0) j = -j;               // reflect, edge sample excluded: xp[half − i] = x[i]
                else if (j >= len) j = 2 * (len - 1) - j;
                re[i] = x[j] * window[i];
            }
            Arrays.fill(im, 0);
            fft.transform(re, im, fre, fim);
            for (int k = 0; k < bins; k++) power[k] = fre[k] * fre[k] + fim[k] * fim[k];
            for (int m = 0; m < melBins; m++) {
                double s = 0;
                float[] w = filters[m];
                for (int k = filterStart[m]; k < filterEnd[m]; k++) s += w[k] * power[k];
                double v = Math.log10(Math.max(s, 1e-10));
                g[m * frames + f] = v;
                max = Math.max(max, v);
            }
        }
        double floor = max - 8.0;
        for (int i = 0; i < g.length; i++) out[outOff + i] = (float) ((Math.max(g[i], floor) + 4.0) / 4.0);
    }

    /**
     * Slaney mel filters [mel][bins] (transformers' {@code mel_filter_bank} with norm and mel_scale
     * "slaney"): triangles between mel-spaced edges f_0 … f_{mel+1} over bins at k·rate/n_fft,
     * each scaled by 2/(f_{j+2} − f_j) so its area is 1.
     */
    static float[][] melFilterBank(int melBins, int bins, int sampleRate) {
        double melMax = hertzToMel(MAX_FREQUENCY);
        var edges = new double[melBins + 2];
        for (int i = 0; i < edges.length; i++)
            edges[i] = melToHertz(i == edges.length - 1 ? melMax : i * (melMax / (melBins + 1)));
        double binStep = (sampleRate / 2) / (double) (bins - 1);    // np.linspace(0, rate // 2, bins)
        var w = new float[melBins][bins];
        for (int k = 0; k < bins; k++) {
            double f = k * binStep;
            for (int j = 0; j < melBins; j++) {
                double down = (f - edges[j]) / (edges[j + 1] - edges[j]);
                double up = (edges[j + 2] - f) / (edges[j + 2] - edges[j + 1]);
                double tri = Math.max(0, Math.min(down, up));
                w[j][k] = (float) (tri * 2.0 / (edges[j + 2] - edges[j]));
            }
        }
        return w;
    }

    private static final double MIN_LOG_HERTZ = 1000.0, MIN_LOG_MEL = 15.0, LOG_STEP = 27.0 / Math.log(6.4);

    static double hertzToMel(double f) {
        return f < MIN_LOG_HERTZ ? 3.0 * f / 200.0 : MIN_LOG_MEL + Math.log(f / MIN_LOG_HERTZ) * LOG_STEP;
    }

    static double melToHertz(double m) {
        return m < MIN_LOG_MEL ? 200.0 * m / 3.0 : MIN_LOG_HERTZ * Math.exp((m - MIN_LOG_MEL) / LOG_STEP);
    }
}

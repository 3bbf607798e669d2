package dev.jomni.omni.model;

import dev.jomni.nn.Conv2d;
import dev.jomni.nn.LayerNorm;
import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.nn.ModuleList;
import dev.jomni.omni.config.AudioConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import java.util.ArrayList;
import java.util.List;

/**
 * thinker.audio_tower: valid mel frames of each clip, cut into chunks of 2·n_window frames, through a
 * stride-2 conv stem (×3, GELU), conv_out, sinusoidal positions restarting per chunk, then pre-norm
 * transformer layers with bidirectional attention inside fixed windows, and ln_post → proj1 → GELU →
 * proj2. No batch axis: all clips' rows are concatenated, [R, O].
 */
public final class AudioEncoder extends Module {
    final Conv2d conv2d1, conv2d2, conv2d3;
    final Linear convOut;
    final ModuleList<EncoderLayer> layers;
    final LayerNorm lnPost;
    final Linear proj1, proj2;
    private final AudioConfig c;
    /** Chunks through the conv stem at once (8 s of audio at n_window 50). */
    static final int STEM_GROUP = 8;

    AudioEncoder(AudioConfig c) {
        this.c = c;
        int s = c.downsampleHiddenSize();
        conv2d1 = child("conv2d1", new Conv2d(1, s, 3, 2, 1));
        conv2d2 = child("conv2d2", new Conv2d(s, s, 3, 2, 1));
        conv2d3 = child("conv2d3", new Conv2d(s, s, 3, 2, 1));
        convOut = child("conv_out", new Linear(s * c.melAfterConv(), c.dModel(), false));
        layers = child("layers", new ModuleList<>(c.encoderLayers(), i -> new EncoderLayer(c)));
        lnPost = child("ln_post", new LayerNorm(c.dModel(), 1e-5));
        proj1 = child("proj1", new Linear(c.dModel(), c.dModel(), true));
        proj2 = child("proj2", new Linear(c.dModel(), c.outputDim(), true));
    }

    /**
     * Rows this encoder outputs, and so audio pad tokens a prompt needs, for a clip of {@code frames}
     * valid mel frames: every chunk of 2·n_window frames shrinks by three stride-2 convolutions to
     * ceil(len/8) rows; for n_window 50, 13·⌊n/100⌋ + ceil((n mod 100)/8) (transformers'
     * {@code _get_feat_extract_output_lengths}; 130 frames → 17, 260 → 34).
     */
    public static int outputLength(int frames, int nWindow) {
        if (frames < 0) throw new IllegalArgumentException("audio encoder: " + frames + " frames");
        if (nWindow <= 0) throw new IllegalArgumentException("audio encoder: n_window=" + nWindow + " must be positive");
        int chunk = 2 * nWindow, full = frames / chunk, rest = frames % chunk;
        return full * ceilDiv8(chunk) + ceilDiv8(rest);
    }

    private static int ceilDiv8(int n) { return (n + 7) / 8; }


    /**
     * @param features [B_audio, mel, T] log-mel, padded
     * @param frames   valid frames per clip (from the feature attention mask)
     * @return [Σ N_b, O]
     */
    public Tensor forward(Tensor features, int[] frames) {
        int chunk = 2 * c.nWindow();
        List<Integer> lengths = new ArrayList<>();
        List<Tensor> chunks = new ArrayList<>();
        for (int b = 0; b < frames.length; b++)
            for (int start = 0; start < frames[b]; start += chunk) {
                int len = Math.min(chunk, frames[b] - start);
                lengths.add(len);
                chunks.add(features.narrow(0, b, 1).squeeze(0).narrow(1, start, len));   // [mel, len]
            }
        if (chunks.isEmpty()) throw new IllegalArgumentException("audio encoder: no valid frames in any clip");
        int lmax = lengths.stream().mapToInt(Integer::intValue).max().orElseThrow();
        // Chunks pass the conv stem independently, so a group at a time: without a graph to keep, a
        // group's im2col buffers are freed before the next (bounded by the group, about 110 MB for the
        // real model's 480 channels, instead of growing with the audio: 10 minutes are 600 chunks).
        List<Tensor> rows = new ArrayList<>();
        for (int g0 = 0; g0 < chunks.size(); g0 += STEM_GROUP) {
            List<Tensor> group = chunks.subList(g0, Math.min(chunks.size(), g0 + STEM_GROUP));
            List<Integer> groupLengths = lengths.subList(g0, g0 + group.size());
            if (Autograd.enabled()) rows.addAll(stem(group, groupLengths, lmax));
            else try (var scope = Scope.open()) {
                for (Tensor r : stem(group, groupLengths, lmax)) rows.add(scope.keep(r));
            }
        }
        int maxRows = 0;
        for (int len : lengths) maxRows = Math.max(maxRows, ceilDiv8(len));
        Tensor h = Tensor.cat(rows, 0);                                                               // [R, D]
        // Attention windows: per clip, runs of (longest chunk's rows) · ⌊n_window_infer / (2·n_window)⌋ rows.
        int window = maxRows * (c.nWindowInfer() / chunk);
        List<Integer> windowLengths = new ArrayList<>();
        for (int b = 0; b < frames.length; b++) {
            int n = outputLength(frames[b], c.nWindow());
            for (int w = 0; w < n; w += window) windowLengths.add(Math.min(window, n - w));
        }
        // The windows tile the rows in order: block-diagonal attention, none across windows or clips.
        AttentionMask windows = AttentionMask.blockDiagonal(windowLengths.stream().mapToInt(Integer::intValue).toArray());
        for (EncoderLayer layer : layers.items())
            if (Autograd.enabled()) h = layer.forward(h, windows);
            else try (var scope = Scope.open()) {                       // the layer's intermediates go as it ends
                h = scope.keep(layer.forward(h, windows));
            }
        return proj2.forward(proj1.forward(lnPost.forward(h)).gelu());
    }

    /** The conv stem, conv_out and positions of some chunks [mel, len], padded to lmax frames: each chunk's ceil(len/8) rows [n, D]. */
    private List<Tensor> stem(List<Tensor> chunks, List<Integer> lengths, int lmax) {
        List<Tensor> padded = new ArrayList<>();
        for (int i = 0; i < chunks.size(); i++) padded.add(chunks.get(i).pad(0, lmax - lengths.get(i)));
        Tensor x = Tensor.stack(padded, 0).unsqueeze(1).to(convOut.weight.value().dtype());                // [G, 1, mel, lmax]
        x = conv2d3.forward(conv2d2.forward(conv2d1.forward(x).gelu()).gelu()).gelu();                  // [G, S, F', t']
        int g = x.size(0), s = x.size(1), f = x.size(2), t = x.size(3);
        x = convOut.forward(x.permute(0, 3, 1, 2).reshape(g, t, s * f));                               // [G, t', D]
        x = x.add(sinusoids(t, c.dModel()).to(x.dtype()).to(x.device()));
        List<Tensor> rows = new ArrayList<>();
        for (int i = 0; i < g; i++) rows.add(x.narrow(0, i, 1).squeeze(0).narrow(0, 0, ceilDiv8(lengths.get(i))));
        return rows;
    }

    /** PE[t][i] = sin(t·ω_i), PE[t][D/2+i] = cos(t·ω_i), ω_i = exp(−i·ln(10000)/(D/2−1)); f32. */
    static Tensor sinusoids(int length, int channels) {
        int half = channels / 2;
        double step = Math.log(10000) / (half - 1);
        float[] pe = new float[length * channels];
        for (int t = 0; t < length; t++)
            for (int i = 0; i < half; i++) {
                float w = (float) Math.exp(-i * step);
                float phase = t * w;
                pe[t * channels + i] = (float) Math.sin(phase);
                pe[t * channels + half + i] = (float) Math.cos(phase);
            }
        return Tensor.of(pe, length, channels);
    }

    /** thinker.audio_tower.layers.N: pre-norm, LayerNorm eps 1e-5, windowed bidirectional attention, GELU MLP. */
    static final class EncoderLayer extends Module {
        final LayerNorm selfAttnLayerNorm, finalLayerNorm;
        final WindowAttention selfAttn;
        final Linear fc1, fc2;

        EncoderLayer(AudioConfig c) {
            selfAttnLayerNorm = child("self_attn_layer_norm", new LayerNorm(c.dModel(), 1e-5));
            selfAttn = child("self_attn", new WindowAttention(c));
            finalLayerNorm = child("final_layer_norm", new LayerNorm(c.dModel(), 1e-5));
            fc1 = child("fc1", new Linear(c.dModel(), c.encoderFfnDim(), true));
            fc2 = child("fc2", new Linear(c.encoderFfnDim(), c.dModel(), true));
        }

        Tensor forward(Tensor h, AttentionMask windows) {                // h: [R, D]
            h = h.add(selfAttn.forward(selfAttnLayerNorm.forward(h), windows));
            return h.add(fc2.forward(fc1.forward(finalLayerNorm.forward(h)).gelu()));
        }
    }

    /** q/k/v/out with bias; full attention inside each window, none across; scale (D/heads)^−½. */
    static final class WindowAttention extends Module {
        final Linear qProj, kProj, vProj, outProj;
        private final int heads, headDim;

        WindowAttention(AudioConfig c) {
            heads = c.encoderAttentionHeads();
            headDim = c.headDim();
            qProj = child("q_proj", new Linear(c.dModel(), c.dModel(), true));
            kProj = child("k_proj", new Linear(c.dModel(), c.dModel(), true));
            vProj = child("v_proj", new Linear(c.dModel(), c.dModel(), true));
            outProj = child("out_proj", new Linear(c.dModel(), c.dModel(), true));
        }

        Tensor forward(Tensor x, AttentionMask windows) {                // x: [R, D]
            int r = x.size(0);
            Tensor q = split(qProj.forward(x)), k = split(kProj.forward(x)), v = split(vProj.forward(x));
            Tensor o = q.scaledDotProductAttention(k, v, windows);          // [1, heads, R, hd], laid out [1, R, heads, hd]
            return outProj.forward(o.transpose(1, 2).reshape(r, heads * headDim));
        }

        private Tensor split(Tensor rows) {                              // [R, D] → [1, heads, R, hd] (a view)
            return rows.reshape(1, rows.size(0), heads, headDim).transpose(1, 2);
        }
    }
}

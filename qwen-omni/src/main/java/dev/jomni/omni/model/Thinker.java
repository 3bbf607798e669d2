package dev.jomni.omni.model;

import dev.jomni.nn.Embedding;
import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.nn.ModuleList;
import dev.jomni.nn.RmsNorm;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import java.util.ArrayList;
import java.util.List;

/**
 * The Qwen3-Omni thinker (names under {@code thinker.}): audio_tower, model (embed_tokens, layers,
 * norm) and lm_head. {@link #forward} embeds the tokens, puts the audio encoder's rows at the audio
 * placeholder positions, runs the decoder with M-RoPE and returns logits for every position.
 */
public final class Thinker extends Module {
    public final ThinkerConfig config;
    final AudioEncoder audioTower;
    final TextModel model;
    final Linear lmHead;

    public Thinker(ThinkerConfig config) {
        this.config = config;
        audioTower = child("audio_tower", new AudioEncoder(config.audio()));
        model = child("model", new TextModel(config.text()));
        TextConfig t = config.text();
        lmHead = child("lm_head", new Linear(t.hiddenSize(), t.vocabSize(), false));
    }

    public AudioEncoder audioTower() { return audioTower; }

    private boolean gradientCheckpointing;

    /**
     * Activation checkpointing per decoder layer (transformers' gradient_checkpointing, non-reentrant): while
     * recording gradients, each layer keeps only its input and is run again during backward. Anything random in a
     * layer (LoRA dropout) must draw the same in the second run: {@link dev.jomni.nn.Lora.Dropout} keys its masks so.
     */
    public void gradientCheckpointing(boolean on) { gradientCheckpointing = on; }

    /** Parts of a Qwen3-Omni checkpoint the audio+text thinker does not use. */
    static final List<String> SKIPPED = List.of("thinker.visual.", "talker.", "code2wav.");

    /**
     * Loads config.json and the (sharded) safetensors checkpoint of {@code dir}; weights are converted
     * to {@code dtype} on {@code device}. Every missing, unexpected or mis-shaped tensor is reported at once.
     * Weights the checkpoint stores in bitsandbytes 4-bit load as NF4 (see {@link #load(java.nio.file.Path, DType, Device, boolean)}).
     */
    public static Thinker load(java.nio.file.Path dir, DType dtype, Device device) { return load(dir, dtype, device, false); }

    /**
     * {@link #load(java.nio.file.Path, DType, Device)}, with {@code use4bit} (QLoRA's load_in_4bit) holding the text
     * decoder's Linears and experts in NF4 as {@link Nf4Plan} says, quantized tensor by tensor from the mapped
     * checkpoint: on a CUDA {@code device} by its kernels when {@link dev.jomni.tensor.ops.Nf4Weight#quantizesOn} it (a layer's stacked experts
     * copied there dense, then released),
     * on the CPU by the host quantizer (an expert at a time), the same bytes either way; host memory peaks near the NF4
     * size plus one piece in f32, never a layer of dense experts. An NF4 weight
     * dequantizes to {@code dtype}. {@link #weightReport} tells what was loaded.
     */
    public static Thinker load(java.nio.file.Path dir, DType dtype, Device device, boolean use4bit) {
        var thinker = new Thinker(ThinkerConfig.load(dir));
        try (var file = dev.jomni.nn.io.SafeTensors.open(dir)) {
            var stored = new dev.jomni.nn.io.SafeTensorWeights(file);
            var weights = new StackedExperts(stored, "thinker.", thinker.parameters());
            var byKey = new java.util.LinkedHashMap<String, dev.jomni.nn.Parameter>();
            thinker.parameters().forEach((n, p) -> byKey.put("thinker." + n, p));
            var plan = new Nf4Plan(weights, stored, byKey, use4bit);
            thinker.load(weights, "thinker.", name -> SKIPPED.stream().anyMatch(name::startsWith), (key, p) -> {
                if (plan.isNf4(key)) {
                    dev.jomni.tensor.ops.Nf4Weight host = plan.weight(key, dtype, device), placed = host.to(device);
                    if (placed.packed() != host.packed()) host.close();
                    p.set(placed);
                    return;
                }
                try (var g = dev.jomni.tensor.Autograd.noGrad()) {
                    Tensor s = weights.get(key), t = s.to(dtype).to(device);
                    p.set(t == s ? s.copy() : t);                  // never keep a view of the mapped file
                }
            });
            thinker.nf4Notes = plan.notes();
        }
        return thinker;
    }

    private List<String> nf4Notes = List.of();

    /**
     * Bytes of the loaded weights by kind (attention, experts, router, dense mlp, embeddings, lm_head, audio encoder,
     * norms) with how each is held (nf4 or a dtype), the total, and the weights that NF4 loading kept dense.
     */
    public String weightReport() {
        var bytes = new java.util.LinkedHashMap<String, long[]>();
        var held = new java.util.LinkedHashMap<String, java.util.Set<String>>();
        for (String kind : List.of("attention", "experts", "router", "dense mlp", "embeddings", "lm_head", "audio encoder", "norms")) {
            bytes.put(kind, new long[1]);
            held.put(kind, new java.util.TreeSet<>());
        }
        long total = 0;
        for (var e : parameters().entrySet()) {
            String kind = kind(e.getKey());
            dev.jomni.nn.Parameter p = e.getValue();
            if (!p.isSet()) continue;
            bytes.get(kind)[0] += p.bytes();
            held.get(kind).add(p.isNf4() ? "nf4" : p.dtype().lower());
            total += p.bytes();
        }
        var out = new StringBuilder("weights:\n");
        for (var e : bytes.entrySet())
            if (e.getValue()[0] > 0)
                out.append(String.format(java.util.Locale.ROOT, "  %-14s %,16d bytes  %s%n", e.getKey(), e.getValue()[0], String.join(" + ", held.get(e.getKey()))));
        out.append(String.format(java.util.Locale.ROOT, "  %-14s %,16d bytes%n", "total", total));
        for (String n : nf4Notes) out.append("  ").append(n).append('\n');
        return out.toString();
    }

    /** The kind of weight a parameter name (under {@code thinker.}) is, for {@link #weightReport}. */
    static String kind(String name) {
        if (name.startsWith("audio_tower.")) return "audio encoder";
        if (name.startsWith("model.embed_tokens.")) return "embeddings";
        if (name.startsWith("lm_head.")) return "lm_head";
        if (name.contains(".mlp.experts.")) return "experts";
        if (name.endsWith(".mlp.gate.weight")) return "router";
        if (name.contains(".self_attn.")) return "attention";
        if (name.contains(".mlp.")) return "dense mlp";
        return "norms";
    }

    /** What one forward pass produced. hiddenStates: the merged embeddings, each layer's output, the last replaced by the final norm's. */
    public record Output(Tensor logits, List<Tensor> hiddenStates, Tensor audioEmbeds, long[][][] positions, List<Tensor> routerLogits) {}

    /** Audio input of a forward pass: log-mel [B_audio, mel, T] and each clip's valid frames. */
    public record Audio(Tensor features, int[] frames) {
        /** Valid frames from a feature attention mask [B_audio, T] of 0/1. */
        public static Audio of(Tensor features, Tensor featureMask) {
            long[] m = featureMask.toLongArray();
            int clips = featureMask.size(0), t = featureMask.size(1);
            int[] frames = new int[clips];
            for (int b = 0; b < clips; b++) for (int j = 0; j < t; j++) frames[b] += (int) m[b * t + j];
            return new Audio(features, frames);
        }
    }

    /**
     * @param inputIds      [B, T] I64, the new tokens
     * @param attentionMask [B, S] 0/1 over cached + new tokens (S = cache length + T)
     * @param audio         null, or the clips whose rows replace the audio placeholders of inputIds, in order
     * @param cache         null, or a cache that this call extends
     */
    public Output forward(Tensor inputIds, Tensor attentionMask, Audio audio, KvCache cache) {
        return forward(inputIds, attentionMask, audio, cache, true);
    }

    /**
     * The logits [B, V] of each row's last position, for choosing the next token: lm_head sees only
     * that position, so a long prompt (minutes of audio) never builds the [B, T, V] logits.
     */
    public Tensor nextTokenLogits(Tensor inputIds, Tensor attentionMask, Audio audio, KvCache cache) {
        Tensor h = forward(inputIds, attentionMask, audio, cache, false).hiddenStates().getLast();
        return lmHead.forward(h.narrow(1, h.size(1) - 1, 1)).reshape(h.size(0), -1);
    }

    /**
     * {@link #forward} without lm_head, for training: {@code logits()} is null and
     * {@code hiddenStates().getLast()} is the final norm's output [B, T, H], which
     * {@link #loss(Output, Tensor, Tensor)} takes through lm_head's weight with the fused
     * linear cross-entropy, so the [B, T, V] logits are never built.
     */
    public Output forwardHidden(Tensor inputIds, Tensor attentionMask, Audio audio, KvCache cache) {
        return forward(inputIds, attentionMask, audio, cache, false);
    }

    private Output forward(Tensor inputIds, Tensor attentionMask, Audio audio, KvCache cache, boolean logits) {
        if (inputIds.rank() != 2) throw new IllegalArgumentException("thinker: input_ids must be [B, T], got " + java.util.Arrays.toString(inputIds.shape()));
        int b = inputIds.size(0), t = inputIds.size(1), past = cache == null ? 0 : cache.length();
        if (attentionMask.rank() != 2 || attentionMask.size(0) != b || attentionMask.size(1) != past + t)
            throw new IllegalArgumentException("thinker: attention_mask " + java.util.Arrays.toString(attentionMask.shape())
                    + " must be [" + b + ", " + (past + t) + "] (cached + new tokens)");
        long[] ids = inputIds.toLongArray();
        for (int i = 0; i < ids.length; i++) {
            long id = ids[i];
            if (id < 0 || id >= config.text().vocabSize())
                throw new IllegalArgumentException("thinker: input_ids[" + i / t + ", " + i % t + "] = " + id
                        + " is outside the vocabulary [0, " + config.text().vocabSize() + ")");
            else if (past == 0 && config.visionTokenIds().contains((int) id))   // a decoded one is just a token, as in transformers
                throw new IllegalArgumentException("thinker: token id " + id + " is an image/video token; this thinker takes audio and text only");
        }
        Tensor h = model.embedTokens.forward(inputIds.to(lmHead.weight.value().device()));   // [B, T, H]
        Tensor audioEmbeds = null;
        List<Long> slots = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) if (ids[i] == config.audioTokenId()) slots.add((long) i);
        if (audio != null) {
            audioEmbeds = audioTower.forward(audio.features().to(h.device()), audio.frames());
            if (audioEmbeds.size(0) != slots.size())
                throw new IllegalArgumentException("thinker: the input has " + slots.size() + " audio placeholders (id "
                        + config.audioTokenId() + ") but the audio gives " + audioEmbeds.size(0) + " rows for clips of "
                        + java.util.Arrays.toString(audio.frames()) + " frames");
            h = merge(h, audioEmbeds.to(h.dtype()), slots);
        } else if (!slots.isEmpty() && past == 0)     // a decoded placeholder is just a token, as in transformers (a sampling model may emit one)
            throw new IllegalArgumentException("thinker: the input has " + slots.size() + " audio placeholders but no audio was given");
        long[][][] positions = positions(attentionMask.toLongArray(), b, past + t, t);
        if (cache != null) applyRopeDeltas(cache, positions, attentionMask.toLongArray(), past);
        Rope rope = Rope.of(config.text(), positions, h.dtype(), h.device());
        // Query i (position past + i) sees keys j ≤ past + i that are not padding (attention_mask[b, j] = 1).
        // (A paged decode step attends to each row's own tokens through the cache's block table: no mask to upload.)
        AttentionMask mask = cache != null && cache.decodes(t) ? null : AttentionMask.causal(past).withKeyMask(attentionMask.to(h.device()));
        List<Tensor> hidden = new ArrayList<>();
        List<Tensor> routerLogits = config.text().outputRouterLogits() ? new ArrayList<>() : null;
        hidden.add(h);
        // Checkpointed layers keep only their input while recording; router logits (a list the layer appends to)
        // and the KV cache (filled once) are not recomputed, so those passes run plainly.
        boolean checkpoint = gradientCheckpointing && dev.jomni.tensor.Autograd.enabled() && cache == null && routerLogits == null;
        // Without a graph to keep, each layer's intermediates are freed as it ends (its scope keeps only h).
        boolean freeEachLayer = !dev.jomni.tensor.Autograd.enabled() && routerLogits == null;
        if (freeEachLayer && cache != null)
            cache.planStep(b, t, config.text().numKeyValueHeads(), config.text().headDim(), h.dtype(), h.device());
        for (DecoderLayer layer : model.layers.items()) {
            if (freeEachLayer)
                try (var layerScope = Scope.open()) {
                    h = layerScope.keep(layer.forward(h, rope, mask, cache, null));
                }
            else
                h = checkpoint ? dev.jomni.tensor.Autograd.checkpoint(in -> layer.forward(in[0], rope, mask, null, null), h)
                        : layer.forward(h, rope, mask, cache, routerLogits);
            hidden.add(h);
        }
        h = model.norm.forward(h);
        hidden.set(hidden.size() - 1, h);
        return new Output(logits ? lmHead.forward(h) : null, hidden, audioEmbeds, positions, routerLogits == null ? List.of() : routerLogits);
    }

    /** E with the rows at {@code slots} (flat B·T positions, row-major) replaced by audio's rows in order. */
    private static Tensor merge(Tensor embeds, Tensor audio, List<Long> slots) {
        int[] shape = embeds.shape();
        int hidden = shape[2];
        Tensor flat = embeds.reshape(-1, hidden);
        long[] at = slots.stream().mapToLong(Long::longValue).toArray();
        Tensor index = Tensor.of(at, at.length).to(embeds.device());
        Tensor placed = Tensor.zeros(embeds.device(), embeds.dtype(), flat.shape()).indexAdd(0, index, audio);
        boolean[] isAudio = new boolean[flat.size(0)];
        for (long s : at) isAudio[(int) s] = true;
        Tensor m = Tensor.of(isAudio, flat.size(0), 1).to(embeds.device());
        return Tensor.where(m, placed, flat).reshape(shape);
    }

    /**
     * M-RoPE positions [3][B][T] of the last {@code t} of {@code s} tokens: for audio and text the three
     * streams are equal to the running index over valid tokens, cumsum(mask) − 1, and padding holds 1.
     */
    static long[][][] positions(long[] mask, int b, int s, int t) {
        long[][][] pos = new long[3][b][t];
        for (int r = 0; r < b; r++) {
            long seen = 0;
            for (int j = 0; j < s; j++) {
                boolean valid = mask[r * s + j] != 0;
                if (valid) seen++;
                if (j >= s - t) for (int stream = 0; stream < 3; stream++) pos[stream][r][j - (s - t)] = valid ? seen - 1 : 1;
            }
        }
        return pos;
    }

    /**
     * transformers' rope_delta: the prefill fixes delta[b] = max_t pos[b,t] + 1 − Σ_t mask[b,t] (0 unless a
     * padded row has a single valid token, since padding holds position 1), and each decoded token sits
     * at (valid tokens before it) + delta[b].
     */
    static void applyRopeDeltas(KvCache cache, long[][][] positions, long[] mask, int past) {
        int b = positions[0].length, t = positions[0][0].length, s = mask.length / b;
        if (past == 0) {
            cache.ropeDeltas = new long[b];
            for (int r = 0; r < b; r++) {
                long max = Long.MIN_VALUE, valid = 0;
                for (int j = 0; j < t; j++) max = Math.max(max, positions[0][r][j]);
                for (int j = 0; j < s; j++) valid += mask[r * s + j] != 0 ? 1 : 0;
                cache.ropeDeltas[r] = max + 1 - valid;
            }
            return;
        }
        for (int stream = 0; stream < 3; stream++)
            for (int r = 0; r < b; r++)
                for (int j = 0; j < t; j++) positions[stream][r][j] += cache.ropeDeltas[r];
    }

    /** Mean cross-entropy of logits [B, T, V] against labels [B, T] shifted by one (target t = label t+1), ignoring −100; in f32 (f64 stays f64). */
    public static Tensor loss(Tensor logits, Tensor labels) {
        return logits.to(logits.dtype().atLeastF32()).crossEntropy(shifted(labels).to(logits.device()), -100);
    }

    /**
     * {@link #loss(Tensor, Tensor)} of lmHead(hidden) for the final hidden states [B, T, H], without the
     * [B, T, V] logits: linearCrossEntropy over lm_head's weight, chunked over tokens and vocabulary.
     * The logits are f32 products of the inputs (not rounded to a 16-bit model dtype first, as the
     * logits path does). An lm_head with a LoRA adapter takes the logits path: the fused op covers
     * the plain weight only.
     */
    public Tensor hiddenLoss(Tensor hidden, Tensor labels) {
        if (lmHead.lora() != null) return loss(lmHead.forward(hidden), labels);
        int h = hidden.size(-1);
        Tensor targets = shifted(labels).to(hidden.device()).reshape(-1);                   // [B·T]
        return hidden.reshape(-1, h).linearCrossEntropy(lmHead.weight.value(), targets, -100);
    }

    /** labels [B, T] → targets [B, T] I64: target t = label t+1, the last position −100. */
    private static Tensor shifted(Tensor labels) {
        int b = labels.size(0), t = labels.size(1);
        return Tensor.cat(List.of(labels.narrow(1, 1, t - 1), Tensor.full(labels.device(), DType.I64, -100, b, 1)), 1).to(DType.I64);
    }

    /**
     * The training loss of a forward pass: {@link #loss(Tensor, Tensor)} of its logits (or, after
     * {@link #forwardHidden}, {@link #hiddenLoss} of its final hidden states), plus
     * router_aux_loss_coef · the Switch load-balancing loss when the config asks for router logits
     * (output_router_logits).
     */
    public Tensor loss(Output out, Tensor labels, Tensor attentionMask) {
        Tensor loss = out.logits() != null ? loss(out.logits(), labels) : hiddenLoss(out.hiddenStates().getLast(), labels);
        if (out.routerLogits().isEmpty()) return loss;
        return loss.add(auxLoss(out.routerLogits(), attentionMask, config.text().numExperts(), config.text().numExpertsPerTok())
                .mul(config.text().routerAuxLossCoef()));
    }

    /**
     * Switch-style load balancing over all MoE layers: with p = softmax(router logits) and the top-K
     * choices, cnt_e = Σ m_t·#{k : e_k = e}, P_e = Σ m_t·p_{t,e}, N = layers·Σ m_t:
     * aux = E · Σ_e (cnt_e/N)(P_e/N). Gradients flow through P.
     */
    static Tensor auxLoss(List<Tensor> routerLogits, Tensor attentionMask, int experts, int topK) {
        Tensor m = attentionMask.reshape(-1, 1).to(routerLogits.get(0).dtype());          // [N, 1]
        Tensor counts = null, probs = null;
        for (Tensor r : routerLogits) {                                                     // r: [N, E]
            Tensor p = r.softmax(-1);
            Tensor chosen = p.topk(topK, -1, true).indices().oneHot(experts).sum(1, false).to(p.dtype());   // [N, E]
            Tensor c = chosen.mul(m).sum(0, false), pe = p.mul(m).sum(0, false);
            counts = counts == null ? c : counts.add(c);
            probs = probs == null ? pe : probs.add(pe);
        }
        Tensor n = m.sum().mul(routerLogits.size());
        return counts.div(n).mul(probs.div(n)).sum().mul(experts);
    }

    /** thinker.model */
    static final class TextModel extends Module {
        final Embedding embedTokens;
        final ModuleList<DecoderLayer> layers;
        final RmsNorm norm;

        TextModel(TextConfig c) {
            embedTokens = child("embed_tokens", new Embedding(c.vocabSize(), c.hiddenSize()));
            layers = child("layers", new ModuleList<>(c.numHiddenLayers(), i -> new DecoderLayer(c, i)));
            norm = child("norm", new RmsNorm(c.hiddenSize(), c.rmsNormEps()));
        }
    }

    /** The device this model's weights live on. */
    public Device device() { return lmHead.weight.value().device(); }
}

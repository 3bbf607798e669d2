package dev.jomni.omni.config;

import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.SafeTensors.SafeTensorsException;
import dev.jomni.nn.io.StoredTensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The thinker's tensors in a Hugging Face checkpoint (per-expert naming, prefix {@code thinker.}) and
 * the shapes a {@link ThinkerConfig} implies for them. {@link #open} maps the checkpoint and checks it
 * against that list, reporting every missing, unexpected, mis-shaped or non-float tensor at once, each
 * with its file. Talker, code2wav and vision tensors are skipped: they stay mapped but are never
 * touched, so they cost no memory.
 */
public final class ThinkerCheckpoint {
    public static final String PREFIX = "thinker.";
    /** Parts of a Qwen3-Omni checkpoint the audio+text thinker does not use. */
    public static final List<String> SKIPPED_PREFIXES = List.of("thinker.visual.", "talker.", "code2wav.");
    private static final int MAX_LISTED = 30;

    private ThinkerCheckpoint() {}

    /**
     * Every thinker tensor the config implies, full names in module order, with its shape:
     * H hidden, nh/nkv heads, d head_dim, E experts, I moe_intermediate, V vocab; audio D d_model,
     * S downsample_hidden_size, F' mel rows after the conv stem, O output_dim.
     */
    public static Map<String, long[]> expectedShapes(ThinkerConfig c) {
        var m = new LinkedHashMap<String, long[]>();
        TextConfig t = c.text();
        long h = t.hiddenSize(), d = t.headDim(), q = t.numAttentionHeads() * d, kv = t.numKeyValueHeads() * d;
        String p = PREFIX + "model.";
        m.put(p + "embed_tokens.weight", new long[] {t.vocabSize(), h});
        for (int n = 0; n < t.numHiddenLayers(); n++) {
            String l = p + "layers." + n + ".";
            m.put(l + "input_layernorm.weight", new long[] {h});
            m.put(l + "self_attn.q_proj.weight", new long[] {q, h});
            m.put(l + "self_attn.k_proj.weight", new long[] {kv, h});
            m.put(l + "self_attn.v_proj.weight", new long[] {kv, h});
            m.put(l + "self_attn.o_proj.weight", new long[] {h, q});
            m.put(l + "self_attn.q_norm.weight", new long[] {d});
            m.put(l + "self_attn.k_norm.weight", new long[] {d});
            m.put(l + "post_attention_layernorm.weight", new long[] {h});
            if (t.isMoeLayer(n)) {
                long i = t.moeIntermediateSize();
                m.put(l + "mlp.gate.weight", new long[] {t.numExperts(), h});
                for (int e = 0; e < t.numExperts(); e++) {
                    String x = l + "mlp.experts." + e + ".";
                    m.put(x + "gate_proj.weight", new long[] {i, h});
                    m.put(x + "up_proj.weight", new long[] {i, h});
                    m.put(x + "down_proj.weight", new long[] {h, i});
                }
            } else {
                long i = t.intermediateSize();
                m.put(l + "mlp.gate_proj.weight", new long[] {i, h});
                m.put(l + "mlp.up_proj.weight", new long[] {i, h});
                m.put(l + "mlp.down_proj.weight", new long[] {h, i});
            }
        }
        m.put(p + "norm.weight", new long[] {h});
        if (!c.tieWordEmbeddings()) m.put(PREFIX + "lm_head.weight", new long[] {t.vocabSize(), h});

        AudioConfig a = c.audio();
        long dm = a.dModel(), s = a.downsampleHiddenSize(), ffn = a.encoderFfnDim();
        String at = PREFIX + "audio_tower.";
        m.put(at + "conv2d1.weight", new long[] {s, 1, 3, 3});
        m.put(at + "conv2d1.bias", new long[] {s});
        m.put(at + "conv2d2.weight", new long[] {s, s, 3, 3});
        m.put(at + "conv2d2.bias", new long[] {s});
        m.put(at + "conv2d3.weight", new long[] {s, s, 3, 3});
        m.put(at + "conv2d3.bias", new long[] {s});
        m.put(at + "conv_out.weight", new long[] {dm, s * a.melAfterConv()});
        for (int n = 0; n < a.encoderLayers(); n++) {
            String l = at + "layers." + n + ".";
            for (String proj : new String[] {"q_proj", "k_proj", "v_proj", "out_proj"}) {
                m.put(l + "self_attn." + proj + ".weight", new long[] {dm, dm});
                m.put(l + "self_attn." + proj + ".bias", new long[] {dm});
            }
            m.put(l + "self_attn_layer_norm.weight", new long[] {dm});
            m.put(l + "self_attn_layer_norm.bias", new long[] {dm});
            m.put(l + "fc1.weight", new long[] {ffn, dm});
            m.put(l + "fc1.bias", new long[] {ffn});
            m.put(l + "fc2.weight", new long[] {dm, ffn});
            m.put(l + "fc2.bias", new long[] {dm});
            m.put(l + "final_layer_norm.weight", new long[] {dm});
            m.put(l + "final_layer_norm.bias", new long[] {dm});
        }
        m.put(at + "ln_post.weight", new long[] {dm});
        m.put(at + "ln_post.bias", new long[] {dm});
        m.put(at + "proj1.weight", new long[] {dm, dm});
        m.put(at + "proj1.bias", new long[] {dm});
        m.put(at + "proj2.weight", new long[] {a.outputDim(), dm});
        m.put(at + "proj2.bias", new long[] {a.outputDim()});
        return m;
    }

    /**
     * Maps the checkpoint (directory, index or single file) and checks every thinker tensor against
     * {@link #expectedShapes}; the caller closes the result. With tied embeddings a stored
     * {@code thinker.lm_head.weight} is tolerated (and unused).
     */
    public static SafeTensors open(Path checkpoint, ThinkerConfig config) {
        var st = SafeTensors.open(checkpoint);
        try {
            check(st, config);
            return st;
        } catch (RuntimeException e) {
            st.close();
            throw e;
        }
    }

    static void check(SafeTensors st, ThinkerConfig config) {
        var expected = expectedShapes(config);
        var problems = new ArrayList<String>();
        for (var e : expected.entrySet()) {
            if (!st.contains(e.getKey())) {
                problems.add(e.getKey() + ": missing");
                continue;
            }
            StoredTensor t = st.get(e.getKey());
            if (!Arrays.equals(t.shape(), e.getValue()))
                problems.add(t.name() + ": expected " + Arrays.toString(e.getValue()) + ", found " + Arrays.toString(t.shape())
                        + " in " + t.file().getFileName());
            else if (!t.dtype().isFloatingPoint())
                problems.add(t.name() + ": dtype " + t.dtype() + " in " + t.file().getFileName() + " is not a float type");
        }
        for (StoredTensor t : st.tensors()) {
            String name = t.name();
            if (expected.containsKey(name) || SKIPPED_PREFIXES.stream().anyMatch(name::startsWith)) continue;
            if (config.tieWordEmbeddings() && name.equals(PREFIX + "lm_head.weight")) continue;
            problems.add(name + ": unexpected tensor in " + t.file().getFileName());
        }
        if (problems.isEmpty()) return;
        var msg = new StringBuilder(st.source() + ": " + problems.size() + " tensor problem(s) for this config:");
        for (int i = 0; i < Math.min(MAX_LISTED, problems.size()); i++) msg.append("\n  ").append(problems.get(i));
        if (problems.size() > MAX_LISTED) msg.append("\n  … and ").append(problems.size() - MAX_LISTED).append(" more");
        throw new SafeTensorsException(msg.toString());
    }
}

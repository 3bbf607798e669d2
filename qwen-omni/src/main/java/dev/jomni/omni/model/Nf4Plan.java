package dev.jomni.omni.model;

import dev.jomni.nn.Parameter;
import dev.jomni.nn.io.SafeTensorWeights;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which of the thinker's weights are held in NF4 (QLoRA's frozen base) and how each is made from a checkpoint.
 *
 * <p>Under use_4bit: every Linear of the text decoder (self_attn q/k/v/o_proj, the dense mlp's gate/up/down_proj) and
 * both stacked expert weights of every MoE layer (gate_up_proj [E, 2I, H] as the NF4 [E·2I, H], down_proj [E, H, I]
 * as [E·H, I]). Kept as they are, by bitsandbytes' defaults: lm_head (transformers' get_keys_to_not_convert keeps the
 * output embedding in full precision), the embeddings and norms (no Linear). Kept by jomni: the router mlp.gate
 * (transformers 5 makes it a router module that bnb does not convert; its routing decisions stay those of the
 * checkpoint) and the audio encoder (audio_tower: the text decoder holds the bulk of the weights).
 *
 * <p>A weight the checkpoint stores in bitsandbytes 4-bit is NF4 whatever use_4bit says: read as stored, not
 * re-quantized (per-expert 4-bit tensors are re-stacked: codes as stored, absmax double-quantized again over the
 * stack, {@link Nf4Weight.Builder}); one the rules keep dense is dequantized. A weight whose K (last dimension) is not
 * a multiple of 64 stays dense (bnb's blocks would cross rows), a layer's two expert weights both or neither
 * ({@link #notes} names them).
 */
public final class Nf4Plan {
    private static final Pattern TARGET = Pattern.compile(
            "thinker\\.model\\.layers\\.\\d+\\.(self_attn\\.[qkvo]_proj\\.weight|mlp\\.(gate|up|down)_proj\\.weight|mlp\\.experts\\.(gate_up_proj|down_proj))");
    private static final String GATE_UP = ".experts.gate_up_proj", DOWN = ".experts.down_proj";

    private final StackedExperts weights;
    private final SafeTensorWeights stored;
    private final Map<String, int[]> shapes = new LinkedHashMap<>();
    private final Set<String> nf4 = new LinkedHashSet<>();
    private final List<String> notes = new ArrayList<>();

    /** Whether use_4bit holds the weight under this checkpoint key ({@code thinker.…}) in NF4. */
    public static boolean target(String key) { return TARGET.matcher(key).matches(); }

    /** @param params the thinker's parameters by checkpoint key ({@code thinker.} + name) */
    Nf4Plan(StackedExperts weights, SafeTensorWeights stored, Map<String, Parameter> params, boolean use4bit) {
        this.weights = weights;
        this.stored = stored;
        for (var e : params.entrySet()) shapes.put(e.getKey(), e.getValue().shape());
        nf4.addAll(select(shapes, key -> use4bit || storedNf4(key), notes));
    }

    /**
     * The keys of {@code shapes} (checkpoint keys, {@code thinker.…}) held in NF4: the {@link #target targets} that
     * {@code wanted} accepts, less those whose K is not a multiple of 64 and the expert weights whose partner stays
     * dense (a layer's experts are NF4 both or neither); each one kept dense adds a line to {@code notes}.
     */
    public static Set<String> select(Map<String, int[]> shapes, java.util.function.Predicate<String> wanted, List<String> notes) {
        Set<String> nf4 = new LinkedHashSet<>();
        for (var e : shapes.entrySet()) {
            String key = e.getKey();
            int[] shape = e.getValue();
            if (!target(key) || !wanted.test(key)) continue;
            int k = shape[shape.length - 1];
            if (k % Nf4Weight.BLOCK != 0) notes.add("kept dense: " + key + " " + Arrays.toString(shape) + ": K = " + k + " is not a multiple of " + Nf4Weight.BLOCK);
            else nf4.add(key);
        }
        for (String key : List.copyOf(nf4)) {                              // a layer's experts: NF4 both or neither
            String partner = key.endsWith(GATE_UP) ? key.replace(GATE_UP, DOWN) : key.endsWith(DOWN) ? key.replace(DOWN, GATE_UP) : null;
            if (partner != null && !nf4.contains(partner) && shapes.containsKey(partner)) {
                nf4.remove(key);
                notes.add("kept dense: " + key + " " + Arrays.toString(shapes.get(key)) + ", with " + partner.substring(partner.lastIndexOf('.') + 1)
                        + " (a layer's experts are NF4 both or neither)");
            }
        }
        return nf4;
    }

    /** Whether the weight under this key is loaded into NF4. */
    public boolean isNf4(String key) { return nf4.contains(key); }

    /** What the rules would hold in NF4 but keep dense, one line each. */
    public List<String> notes() { return Collections.unmodifiableList(notes); }

    private boolean storedNf4(String key) {
        List<String> parts = weights.parts(key);
        if (parts == null) return stored.isNf4(key);
        return parts.stream().anyMatch(stored::isNf4);
    }

    /**
     * The NF4 weight under {@code key} (a CPU weight dequantizing to {@code dtype}, or to the stored tensors' dtype when
     * null): as stored when the checkpoint holds
     * it in 4-bit, else quantized piece by piece from the mapped tensors (one expert, or 4M elements, at a time), so that
     * no more than one piece is ever converted to f32.
     */
    public Nf4Weight weight(String key, DType dtype) { return weight(key, dtype, Device.cpu()); }

    /**
     * {@link #weight(String, DType)}, quantized on {@code quantizer} where {@link Nf4Weight#quantizesOn} it: the mapped pieces are copied there,
     * stacked and quantized by the device's kernels (bit-identical to the host's), the result on that device; a weight
     * stored in 4-bit is read (and re-stacked) on the host, a CPU weight.
     */
    public Nf4Weight weight(String key, DType dtype, Device quantizer) {
        if (Nf4Weight.quantizesOn(quantizer) && nf4.contains(key)) {            // else the host's pieces: no dense stack on the device
            List<String> parts = weights.parts(key);
            List<String> names = parts == null ? List.of(key) : parts;
            if (names.stream().noneMatch(stored::isNf4)) {
                int[] shape = shapes.get(key);
                int k = shape[shape.length - 1];
                List<Tensor> placed = new ArrayList<>();
                try (var g = Autograd.noGrad()) {
                    for (String name : names) placed.add(stored.get(name).reshape(-1, k).to(quantizer));
                    Tensor whole = placed.size() == 1 ? placed.getFirst() : Tensor.cat(placed, 0);
                    if (whole != placed.getFirst()) for (Tensor t : placed) t.close();
                    Nf4Weight q = Nf4Weight.quantize(key, whole);
                    whole.close();
                    return dtype == null ? q : q.withDtype(dtype);
                }
            }
        }
        return hostWeight(key, dtype);
    }

    private Nf4Weight hostWeight(String key, DType dtype) {
        if (!nf4.contains(key)) throw new IllegalArgumentException(key + " is not one of the NF4 weights");
        List<String> parts = weights.parts(key);
        if (parts == null && stored.isNf4(key)) {
            Nf4Weight w = stored.nf4(key);
            return dtype == null ? w : w.withDtype(dtype);
        }
        int[] shape = shapes.get(key);
        int k = shape[shape.length - 1];
        long numel = 1;
        for (int d : shape) numel *= d;
        var b = new Nf4Weight.Builder(key, Math.toIntExact(numel / k), k);
        DType source = null;
        try (var g = Autograd.noGrad()) {
            for (String name : parts == null ? List.of(key) : parts) {
                if (stored.isNf4(name)) {
                    try (Nf4Weight w = stored.nf4(name)) {
                        b.add(w);
                        source = w.dtype();
                    }
                    continue;
                }
                Tensor t = stored.get(name).reshape(-1, k);                       // a view of the mapped file
                source = t.dtype();
                int chunk = Math.max(1, (1 << 22) / k);
                for (int r = 0; r < t.size(0); r += chunk) b.add(t.narrow(0, r, Math.min(chunk, t.size(0) - r)));
            }
        }
        return b.build(dtype != null ? dtype : source);
    }
}

package dev.jomni.train;

import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The base checkpoint with a LoRA adapter merged in, in Hugging Face's layout so transformers (and jomni) load it
 * as they load the base: every tensor of the base checkpoint under its own name (the talker and everything the
 * thinker does not use included, unchanged), each adapted Linear's weight replaced by W + scaling·B·A and each adapted
 * expert's by W[e] + scaling·B[e]·A[e] (computed in f32, stored in the base tensor's dtype), sharded as
 * {@code save_pretrained} does with {@code model.safetensors.index.json}; the base folder's other files (config.json,
 * generation_config.json, preprocessor_config.json, tokenizer files) copied.
 *
 * <p>The experts are written in the base checkpoint's own layout: the release's per-expert tensors
 * ({@code …mlp.experts.{e}.gate_proj.weight} [I, H], {@code up_proj} [I, H], {@code down_proj} [H, I]) when the base
 * stores them so, as Qwen3-Omni's release does, or transformers 5's stacked {@code …mlp.experts.gate_up_proj} [E, 2I, H] /
 * {@code down_proj} [E, H, I] when the base is already stacked. Keeping the base's names keeps the output a drop-in
 * replacement for it: transformers 4 (the release's code) and vLLM read only the per-expert names, transformers 5
 * stacks them while loading, and jomni reads both.
 */
public final class MergedExport {
    private MergedExport() {}

    /**
     * The merged weights (f32) under the names {@code names} of the base checkpoint holds: {@link LoraAdapter#mergedWeights}'
     * own ({@code thinker.model.layers.0.self_attn.q_proj.weight}, {@code ….mlp.experts.gate_up_proj}), or, for stacked
     * experts the checkpoint stores per expert, each expert's slices: gate_up_proj[e] rows 0…I−1 as
     * {@code ….experts.{e}.gate_proj.weight}, rows I…2I−1 as {@code up_proj}, down_proj[e] as {@code ….experts.{e}.down_proj.weight}.
     */
    public static Map<String, Tensor> mergedWeights(LoraAdapter adapter, Set<String> names) {
        Map<String, Tensor> out = new TreeMap<>();
        try (var g = Autograd.noGrad()) {
            for (var e : adapter.mergedWeights().entrySet()) {
                String n = e.getKey();
                Tensor m = e.getValue();
                boolean gateUp = n.endsWith(".experts.gate_up_proj"), down = n.endsWith(".experts.down_proj");
                if (names.contains(n) || !gateUp && !down) {
                    out.put(n, m);
                    continue;
                }
                String experts = n.substring(0, n.lastIndexOf('.'));
                int half = m.size(1) / 2;                                                      // gate_up: [E, 2I, H]
                for (int x = 0; x < m.size(0); x++) {
                    Tensor w = m.narrow(0, x, 1).squeeze(0);                                  // [2I, H] or [H, I]
                    if (gateUp) {
                        out.put(experts + "." + x + ".gate_proj.weight", w.narrow(0, 0, half).contiguous());
                        out.put(experts + "." + x + ".up_proj.weight", w.narrow(0, half, half).contiguous());
                    } else out.put(experts + "." + x + ".down_proj.weight", w.contiguous());
                }
            }
        }
        return out;
    }

    /**
     * Writes the merged checkpoint of {@code baseDir} + the adapter applied to {@code thinker} into {@code outDir}; returns
     * the files written. {@code dtype} null keeps each tensor's stored dtype (a bf16 base rounds W + s·B·A to bf16, as
     * merging and saving in bf16 does in transformers); otherwise every floating tensor is stored in {@code dtype}.
     */
    public static List<Path> write(Path baseDir, LoraAdapter adapter, Path outDir, long maxShardBytes, DType dtype) {
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new UncheckedIOException(outDir + ": cannot create", e);
        }
        List<Path> written;
        try (var st = SafeTensors.open(baseDir)) {
            Map<String, Tensor> merged = mergedWeights(adapter, st.names());
            if (merged.isEmpty()) throw new IllegalArgumentException("merge: the adapter adapts nothing; nothing to merge");
            for (var e : merged.entrySet()) {
                String n = e.getKey();
                if (!st.contains(n)) throw new IllegalArgumentException("merge: " + n + " is adapted but not in the checkpoint of " + baseDir);
                long[] want = Arrays.stream(e.getValue().shape()).asLongStream().toArray();
                if (!Arrays.equals(st.get(n).shape(), want))
                    throw new IllegalArgumentException("merge: " + n + " is " + Arrays.toString(want) + " merged but "
                            + Arrays.toString(st.get(n).shape()) + " in the checkpoint of " + baseDir);
            }
            Map<String, TensorData> tensors = new LinkedHashMap<>();
            for (String n : new java.util.TreeSet<>(st.names())) {
                var stored = st.get(n);
                Tensor m = merged.get(n);
                DType as = dtype != null && stored.dtype().tensorType().floating ? dtype : stored.dtype().tensorType();
                if (m != null) tensors.put(n, TensorData.of(m.to(as)));
                else tensors.put(n, as == stored.dtype().tensorType() ? stored.data() : TensorData.of(stored.data().toTensor().to(as)));
            }
            written = SafeTensors.writeSharded(outDir, tensors, Map.of("format", "pt"), maxShardBytes);
        }
        try (Stream<Path> files = Files.list(baseDir)) {
            for (Path f : files.toList()) {
                String name = f.getFileName().toString();
                if (!Files.isRegularFile(f) || name.endsWith(".safetensors") || name.equals(SafeTensors.INDEX_FILE)) continue;
                Files.copy(f, outDir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(baseDir + ": cannot copy the config files", e);
        }
        return written;
    }
}

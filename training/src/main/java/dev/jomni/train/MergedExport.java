package dev.jomni.train;

import dev.jomni.nn.Linear;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The base checkpoint with a LoRA adapter merged in, in Hugging Face's layout so transformers (and jomni) load it
 * as they load the base: every tensor of the base checkpoint under its own name (the talker and everything the
 * thinker does not use included, unchanged), each adapted Linear's weight replaced by W + scaling·B·A (computed
 * in f32, stored in the base tensor's dtype), sharded as {@code save_pretrained} does with
 * {@code model.safetensors.index.json}; the base folder's other files (config.json, generation_config.json,
 * preprocessor_config.json, tokenizer files) copied. The per-expert names of the real checkpoint stay as they are.
 */
public final class MergedExport {
    private MergedExport() {}

    /** The merged weights by checkpoint name ({@code thinker.model.layers.0.self_attn.q_proj.weight}) of every Linear with a LoRA. */
    public static Map<String, Tensor> mergedWeights(Thinker thinker) {
        Map<String, Tensor> out = new TreeMap<>();
        try (var g = Autograd.noGrad()) {
            for (var e : thinker.modules().entrySet())
                if (e.getValue() instanceof Linear l && l.lora() != null) {
                    Tensor a = l.lora().a().to(DType.F32), b = l.lora().b().to(DType.F32);        // [r, in], [out, r]
                    out.put("thinker." + e.getKey() + ".weight", l.weight.value().to(DType.F32).add(b.matmul(a).mul(l.lora().scaling())));
                }
        }
        return out;
    }

    /**
     * Writes the merged checkpoint of {@code baseDir} + the adapter applied to {@code thinker} into {@code outDir}; returns
     * the files written. {@code dtype} null keeps each tensor's stored dtype (a bf16 base rounds W + s·B·A to bf16, as
     * merging and saving in bf16 does in transformers); otherwise every floating tensor is stored in {@code dtype}.
     */
    public static List<Path> write(Path baseDir, Thinker thinker, Path outDir, long maxShardBytes, DType dtype) {
        Map<String, Tensor> merged = mergedWeights(thinker);
        if (merged.isEmpty()) throw new IllegalArgumentException("merge: the thinker has no LoRA applied; nothing to merge");
        try {
            Files.createDirectories(outDir);
        } catch (IOException e) {
            throw new UncheckedIOException(outDir + ": cannot create", e);
        }
        List<Path> written;
        try (var st = SafeTensors.open(baseDir)) {
            for (String n : merged.keySet())
                if (!st.contains(n)) throw new IllegalArgumentException("merge: " + n + " is adapted but not in the checkpoint of " + baseDir);
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

package dev.jomni.omni.model;

import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.Bnb4bit;
import dev.jomni.nn.io.SafeTensorWeights;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.ops.Nf4Weight;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Writes a thinker checkpoint in bitsandbytes 4-bit (NF4, double quantization), as transformers' save_pretrained
 * writes a model loaded with {@code BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
 * bnb_4bit_use_double_quant=True)}: each NF4 weight as bnb's six tensors ({@link Bnb4bit}), the rest as stored, in
 * shards of at most maxShardBytes plus model.safetensors.index.json, and config.json with its quantization_config.
 * The NF4 weights are those of {@link Nf4Plan} under use_4bit, made by the same code as quantize-on-load, so that
 * loading the result gives the same bytes. The experts are written stacked (transformers 5's
 * {@code mlp.experts.gate_up_proj} [E, 2I, H] and {@code down_proj} [E, H, I], the quant state recording that shape).
 * Only the thinker's tensors are written (the parts jomni does not run, visual, talker and code2wav, are left out);
 * the folder's other files (tokenizer, generation and preprocessor configs) are copied.
 */
public final class Bnb4bitCheckpoint {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private Bnb4bitCheckpoint() {}

    /** What was written: the files, the NF4 weights and the dense ones, bytes of tensor data. */
    public record Written(List<Path> files, int nf4Weights, int denseWeights, long bytes, List<String> notes) {}

    private record Entry(String key, long bytes, Supplier<Map<String, TensorData>> tensors) {}

    public static Written write(Path model, Path out, long maxShardBytes) { return write(model, out, maxShardBytes, Device.cpu()); }

    /** {@link #write(Path, Path, long)}, each NF4 weight quantized on {@code quantizer} (the host, or a CUDA device: the same bytes). */
    public static Written write(Path model, Path out, long maxShardBytes, Device quantizer) {
        var thinker = new Thinker(ThinkerConfig.load(model));
        try (var file = SafeTensors.open(model)) {
            var stored = new SafeTensorWeights(file);
            var weights = new StackedExperts(stored, "thinker.", thinker.parameters());
            var byKey = new LinkedHashMap<String, dev.jomni.nn.Parameter>();
            thinker.parameters().forEach((n, p) -> byKey.put("thinker." + n, p));
            var plan = new Nf4Plan(weights, stored, byKey, true);
            List<Entry> entries = new ArrayList<>();
            int[] counts = new int[2];
            // load's own checks (missing, mis-shaped, unexpected tensors) run first; its setter only lists the weights.
            thinker.load(weights, "thinker.", name -> Thinker.SKIPPED.stream().anyMatch(name::startsWith), (key, p) -> {
                int[] shape = p.shape();
                long numel = p.numel();
                if (plan.isNf4(key)) {
                    counts[0]++;
                    long blocks = numel / Nf4Weight.BLOCK;
                    entries.add(new Entry(key, numel / 2 + blocks + 4 * ((blocks + 255) / 256) + 4 * (16 + 256) + 256,
                            () -> { try (Nf4Weight w = plan.weight(key, null, quantizer)) { return Bnb4bit.write(key, w, shape); } }));
                } else {
                    counts[1]++;
                    long bytes = file.contains(key) && !stored.isNf4(key) ? file.get(key).data().bytes().byteSize() : numel * 2;
                    entries.add(new Entry(key, bytes, () -> Map.of(key, dense(file, stored, weights, key))));
                }
            });
            List<List<Entry>> shards = new ArrayList<>();
            long size = 0;
            for (Entry e : entries) {
                if (shards.isEmpty() || size > 0 && size + e.bytes() > maxShardBytes) {
                    shards.add(new ArrayList<>());
                    size = 0;
                }
                shards.getLast().add(e);
                size += e.bytes();
            }
            Files.createDirectories(out);
            List<Path> written = new ArrayList<>();
            Map<String, String> weightMap = new TreeMap<>();
            long total = 0;
            for (int i = 0; i < shards.size(); i++) {
                String name = shards.size() == 1 ? SafeTensors.SINGLE_FILE : String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
                Map<String, TensorData> tensors = new LinkedHashMap<>();
                try (var g = Autograd.noGrad()) {
                    for (Entry e : shards.get(i)) tensors.putAll(e.tensors().get());
                }
                SafeTensors.write(out.resolve(name), tensors, Map.of("format", "pt"));
                written.add(out.resolve(name));
                for (var t : tensors.entrySet()) {
                    weightMap.put(t.getKey(), name);
                    total += t.getValue().bytes().byteSize();
                }
            }
            if (shards.size() > 1) written.add(SafeTensors.writeIndex(out, weightMap, total));
            written.addAll(copyOthers(model, out));
            return new Written(written, counts[0], counts[1], total, plan.notes());
        } catch (IOException e) {
            throw new IllegalArgumentException(out + ": cannot write: " + e);
        }
    }

    /** A weight kept dense, as stored (zero-copy) where the file holds it as such, else made (stacked, or dequantized). */
    private static TensorData dense(SafeTensors file, SafeTensorWeights stored, StackedExperts weights, String key) {
        if (file.contains(key) && !stored.isNf4(key)) return file.get(key).data();
        return TensorData.of(weights.get(key));
    }

    /** config.json with transformers' bitsandbytes quantization_config; every other file but the checkpoint's own, copied. */
    private static List<Path> copyOthers(Path model, Path out) throws IOException {
        List<Path> written = new ArrayList<>();
        try (Stream<Path> files = Files.list(model)) {
            for (Path f : files.sorted().toList()) {
                String n = f.getFileName().toString();
                if (!Files.isRegularFile(f) || n.endsWith(".safetensors") || n.equals(SafeTensors.INDEX_FILE)) continue;
                if (n.equals("config.json")) {
                    ObjectNode config = (ObjectNode) JSON.readTree(f.toFile());
                    config.set("quantization_config", quantizationConfig());
                    JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve(n).toFile(), config);
                } else Files.copy(f, out.resolve(n), StandardCopyOption.REPLACE_EXISTING);
                written.add(out.resolve(n));
            }
        }
        return written;
    }

    /** BitsAndBytesConfig(load_in_4bit=True, nf4, double quant, bf16 compute).to_dict(), with the modules kept unquantized. */
    static ObjectNode quantizationConfig() {
        ObjectNode q = JSON.createObjectNode();
        q.put("_load_in_4bit", true).put("_load_in_8bit", false).put("bnb_4bit_compute_dtype", "bfloat16")
                .put("bnb_4bit_quant_storage", "uint8").put("bnb_4bit_quant_type", "nf4").put("bnb_4bit_use_double_quant", true)
                .put("llm_int8_enable_fp32_cpu_offload", false).put("llm_int8_has_fp16_weight", false);
        var skip = q.putArray("llm_int8_skip_modules");
        for (String m : List.of("lm_head", "mlp.gate", "audio_tower", "visual", "talker", "code2wav")) skip.add(m);
        q.put("llm_int8_threshold", 6.0).put("load_in_4bit", true).put("load_in_8bit", false).put("quant_method", "bitsandbytes");
        return q;
    }

}

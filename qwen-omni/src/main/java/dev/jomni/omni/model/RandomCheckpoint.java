package dev.jomni.omni.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.Bnb4bit;
import dev.jomni.nn.io.StoredDType;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * A random-weight thinker checkpoint (values: {@link RandomWeights}) written as a release stores it: the
 * thinker's tensors only (the talker and code2wav are not written), sharded as a reference
 * {@code model.safetensors.index.json} maps them (each tensor in the shard the release puts it in) or, without
 * one, in shards of at most {@link #SHARD_BYTES}, plus the index and {@code config.json}. Written shard by shard,
 * tensor by tensor: memory holds one tensor (and its quantized form) at a time, and a bf16 shard is written once
 * (header first), so the disk needs the checkpoint's size and no more.
 *
 * <p>{@link Format#NF4} writes the bitsandbytes 4-bit serialization ({@link Bnb4bit}) of the text decoder's
 * attention projections and of every expert (each expert's gate/up/down on its own, as the release stores them);
 * the router, embeddings, lm_head, norms and the audio and vision towers stay bf16, as {@code config.json}'s
 * quantization_config (llm_int8_skip_modules) then says.
 */
public final class RandomCheckpoint {
    private RandomCheckpoint() {}

    public static final long SHARD_BYTES = 5_000_000_000L;

    public enum Format { BF16, NF4 }

    /** The modules a 4-bit checkpoint keeps in bf16 (bitsandbytes' llm_int8_skip_modules, matched by name). */
    static final List<String> NF4_SKIPPED = List.of("lm_head", "embed_tokens", "mlp.gate", "audio_tower", "visual");
    private static final Pattern NF4_WEIGHT =
            Pattern.compile("thinker\\.model\\.layers\\.\\d+\\.(self_attn\\.[qkvo]_proj|mlp\\.experts\\.\\d+\\.(gate|up|down)_proj)\\.weight");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One tensor as it will be stored: its spec and the shard file it goes to. */
    public record Planned(RandomWeights.Spec spec, String shard) {}

    /** What {@link #plan} found: the tensors by shard (in write order) and the reference entries it left out. */
    public record Plan(List<Planned> tensors, Map<String, Integer> skippedByPrefix) {}

    /** Whether {@code name} is stored as 4-bit in {@link Format#NF4}. */
    public static boolean quantized(String name) { return NF4_WEIGHT.matcher(name).matches(); }

    /**
     * Which shard each thinker tensor goes to. With a reference index (its {@code .json} or {@code .json.gz}) every
     * thinker tensor must be in its weight_map and every {@code thinker.} entry of it must be a tensor here (else a
     * list of the differences); its other entries (talker., code2wav.) are counted as skipped.
     */
    public static Plan plan(Path configFile, Path referenceIndex) {
        List<RandomWeights.Spec> specs = RandomWeights.thinkerTensors(configFile);
        List<Planned> out = new ArrayList<>();
        Map<String, Integer> skipped = new TreeMap<>();
        if (referenceIndex == null) {
            long bytes = 0;
            int shard = 0;
            List<Integer> shardOf = new ArrayList<>();
            for (var s : specs) {
                long b = 2 * s.numel();
                if (bytes > 0 && bytes + b > SHARD_BYTES) {
                    shard++;
                    bytes = 0;
                }
                bytes += b;
                shardOf.add(shard);
            }
            int shards = shard + 1;
            for (int i = 0; i < specs.size(); i++)
                out.add(new Planned(specs.get(i), String.format("model-%05d-of-%05d.safetensors", shardOf.get(i) + 1, shards)));
            return new Plan(out, skipped);
        }
        Map<String, String> weightMap = weightMap(referenceIndex);
        List<String> problems = new ArrayList<>();
        var names = new java.util.HashSet<String>();
        for (var s : specs) {
            names.add(s.name());
            String shard = weightMap.get(s.name());
            if (shard == null) problems.add("not in the reference index: " + s);
            else out.add(new Planned(s, shard));
        }
        for (var e : weightMap.entrySet()) {
            if (e.getKey().startsWith("thinker.")) {
                if (!names.contains(e.getKey())) problems.add("in the reference index but not in this config's thinker: " + e.getKey());
            } else {
                skipped.merge(e.getKey().substring(0, e.getKey().indexOf('.') + 1), 1, Integer::sum);
            }
        }
        if (!problems.isEmpty())
            throw new IllegalArgumentException(referenceIndex + ": " + problems.size() + " differences from " + configFile + ", e.g.\n  "
                    + String.join("\n  ", problems.subList(0, Math.min(10, problems.size()))));
        out.sort(java.util.Comparator.comparing(Planned::shard));                 // stable: the module order within a shard
        return new Plan(out, skipped);
    }

    /** The weight_map of an index file ({@code .json} or gzipped {@code .json.gz}). */
    public static Map<String, String> weightMap(Path index) {
        try (InputStream in = index.toString().endsWith(".gz") ? new GZIPInputStream(Files.newInputStream(index)) : Files.newInputStream(index)) {
            JsonNode map = JSON.readTree(in).get("weight_map");
            if (map == null || !map.isObject()) throw new IllegalArgumentException(index + ": no \"weight_map\" object");
            Map<String, String> out = new LinkedHashMap<>();
            for (var e : map.properties()) out.put(e.getKey(), e.getValue().asText());
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(index + ": cannot read: " + e.getMessage(), e);
        }
    }

    /**
     * Writes the checkpoint into {@code out} (created; existing shard files are replaced) and returns the bytes of
     * tensor data written. {@code progress} hears one line per shard.
     */
    public static long write(Path configFile, Path referenceIndex, Path out, Format format, long seed, Consumer<String> progress) {
        Plan plan = plan(configFile, referenceIndex);
        Map<String, List<RandomWeights.Spec>> byShard = new LinkedHashMap<>();
        for (Planned p : plan.tensors()) byShard.computeIfAbsent(p.shard(), k -> new ArrayList<>()).add(p.spec());
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        try {
            Files.createDirectories(out);
            for (var shard : byShard.entrySet()) {
                long t0 = System.nanoTime();
                long bytes = writeShard(out.resolve(shard.getKey()), shard.getValue(), format, seed, weightMap, shard.getKey());
                total += bytes;
                progress.accept(String.format("%s: %d tensors, %.2f GB in %.1f s", shard.getKey(), shard.getValue().size(), bytes / 1e9,
                        (System.nanoTime() - t0) / 1e9));
            }
            ObjectNode index = JSON.createObjectNode();
            index.putObject("metadata").put("total_size", total);
            ObjectNode map = index.putObject("weight_map");
            weightMap.forEach(map::put);
            JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("model.safetensors.index.json").toFile(), index);
            ObjectNode config = (ObjectNode) JSON.readTree(configFile.toFile());
            if (format == Format.NF4) {
                ObjectNode q = config.putObject("quantization_config");
                q.put("quant_method", "bitsandbytes").put("load_in_4bit", true).put("load_in_8bit", false)
                        .put("bnb_4bit_quant_type", "nf4").put("bnb_4bit_use_double_quant", true)
                        .put("bnb_4bit_compute_dtype", "bfloat16").put("bnb_4bit_quant_storage", "uint8");
                var skip = q.putArray("llm_int8_skip_modules");
                NF4_SKIPPED.forEach(skip::add);
            }
            JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("config.json").toFile(), config);
        } catch (IOException e) {
            throw new UncheckedIOException(out + ": cannot write: " + e.getMessage(), e);
        }
        return total;
    }

    /** One shard, written beside its final name and then moved there. */
    private static long writeShard(Path file, List<RandomWeights.Spec> specs, Format format, long seed,
                                   Map<String, String> weightMap, String shardName) throws IOException {
        if (format == Format.NF4 && specs.stream().anyMatch(s -> quantized(s.name())))
            return writeQuantizedShard(file, specs, seed, weightMap, shardName);
        // bf16 only: every size is known, so the header goes first and each tensor straight after it (no second copy on disk)
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (var s : specs) {
            entry(header, s.name(), StoredDType.BF16, s.shape(), offset, 2 * s.numel());
            offset += 2 * s.numel();
            weightMap.put(s.name(), shardName);
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (var ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(ch, headerBytes(header));
            for (var s : specs)
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment bf16 = arena.allocate(2 * s.numel(), 8);
                    RandomWeights.fill(s, seed, bf16);
                    writeFully(ch, bf16.asByteBuffer());
                }
        }
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        return offset;
    }

    private static void entry(ObjectNode header, String name, StoredDType dtype, long[] shape, long offset, long bytes) {
        ObjectNode t = header.putObject(name);
        t.put("dtype", dtype.safetensorsName());
        var dims = t.putArray("shape");
        for (long d : shape) dims.add(d);
        t.putArray("data_offsets").add(offset).add(offset + bytes);
    }

    /** The 8-byte length, the JSON header and the spaces that pad it to a multiple of 8, as HF writes them. */
    private static ByteBuffer headerBytes(ObjectNode header) throws IOException {
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        return head.flip();
    }

    /**
     * A shard with 4-bit weights: the data go to a temporary file tensor by tensor while the header is collected (a
     * weight's quant state, hence its size, is known only once it is quantized), then header and data are joined.
     */
    private static long writeQuantizedShard(Path file, List<RandomWeights.Spec> specs, long seed,
                                            Map<String, String> weightMap, String shardName) throws IOException {
        Path data = file.resolveSibling(file.getFileName() + ".data.tmp");
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        try (var ch = FileChannel.open(data, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ)) {
            for (var s : specs) {
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment bf16 = arena.allocate(2 * s.numel(), 8);
                    RandomWeights.fill(s, seed, bf16);
                    Map<String, TensorData> stored;
                    if (quantized(s.name())) {
                        Tensor w = Tensor.wrap(bf16, DType.BF16, Math.toIntExact(s.shape()[0]), Math.toIntExact(s.shape()[1]));
                        stored = Bnb4bit.write(s.name(), Nf4Weight.quantize(s.name(), w));
                    } else {
                        stored = Map.of(s.name(), new TensorData(StoredDType.BF16, s.shape(), bf16));
                    }
                    for (var e : stored.entrySet()) {
                        long n = e.getValue().bytes().byteSize();
                        entry(header, e.getKey(), e.getValue().dtype(), e.getValue().shape(), offset, n);
                        writeFully(ch, e.getValue().bytes().asByteBuffer());
                        offset += n;
                        weightMap.put(e.getKey(), shardName);
                    }
                }
            }
            ByteBuffer head = headerBytes(header);
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            try (var outCh = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(outCh, head);
                for (long at = 0; at < offset; ) at += ch.transferTo(at, offset - at, outCh);
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(data);
        }
        return offset;
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /** The bytes {@code spec} occupies in {@code format} (the 4-bit quant state's JSON estimated at its usual length). */
    public static long storedBytes(RandomWeights.Spec s, Format format) {
        long n = s.numel();
        if (format == Format.BF16 || !quantized(s.name())) return 2 * n;
        long blocks = n / Nf4Weight.BLOCK;
        return n / 2 + blocks + 64 + 4 * ((blocks + Nf4Weight.NESTED_BLOCK - 1) / Nf4Weight.NESTED_BLOCK) + 4 * 256 + 200;
    }

}

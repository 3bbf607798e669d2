package dev.jomni.nn.io;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Hugging Face safetensors checkpoints, memory-mapped: a file is an 8-byte little-endian header
 * length n, n bytes of JSON {@code {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__":
 * {str: str}}}, then the data, offsets counted from its first byte. A sharded checkpoint adds
 * {@code model.safetensors.index.json} whose {@code weight_map} names each tensor's shard.
 *
 * <p>Opening maps every file read-only into one shared {@link Arena}; tensors are slices of the
 * mapping, so a 60 GB checkpoint costs address space, not Java heap, and pages are read when touched.
 * {@link #close()} unmaps everything: a tensor used afterwards throws {@link IllegalStateException}.
 * Slices are not aligned beyond what the file gives (HF pads the header to 8 bytes); read them with
 * unaligned layouts.
 *
 * <p>Checked on open, each error naming the file and the tensor: header length beyond the file,
 * JSON that does not parse or repeats a name, an unknown dtype, offsets beyond the data or overlapping
 * another tensor, a byte size other than numel × dtype size, a shard the index names that is missing,
 * a tensor the index names that its shard lacks. Tensors a shard holds but the index does not list are
 * ignored, as transformers does.
 */
public final class SafeTensors implements AutoCloseable {
    public static final String INDEX_FILE = "model.safetensors.index.json";
    public static final String SINGLE_FILE = "model.safetensors";
    private static final long MAX_HEADER_BYTES = 100L << 20;   // the Rust reference's limit
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    private final Path source;
    private final Arena arena;
    private final Map<String, StoredTensor> tensors;
    private final Map<String, String> metadata;

    private SafeTensors(Path source, Arena arena, Map<String, StoredTensor> tensors, Map<String, String> metadata) {
        this.source = source;
        this.arena = arena;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /**
     * Opens a checkpoint: a {@code .safetensors} file, an index file, or a directory holding
     * {@value #INDEX_FILE} (sharded) or else {@value #SINGLE_FILE}.
     */
    public static SafeTensors open(Path path) {
        if (Files.isDirectory(path)) {
            if (Files.exists(path.resolve(INDEX_FILE))) return openIndex(path.resolve(INDEX_FILE));
            if (Files.exists(path.resolve(SINGLE_FILE))) return openFile(path.resolve(SINGLE_FILE));
            throw new SafeTensorsException(path + ": directory holds neither " + INDEX_FILE + " nor " + SINGLE_FILE);
        }
        if (path.getFileName().toString().endsWith(".index.json")) return openIndex(path);
        return openFile(path);
    }

    private static SafeTensors openFile(Path file) {
        var arena = Arena.ofShared();
        try {
            var parsed = mapFile(file, arena);
            return new SafeTensors(file, arena, parsed.tensors(), parsed.metadata());
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafeTensors openIndex(Path index) {
        JsonNode root = readJson(index);
        JsonNode weightMap = root.get("weight_map");
        if (weightMap == null || !weightMap.isObject())
            throw new SafeTensorsException(index + ": no \"weight_map\" object");
        Path dir = index.toAbsolutePath().normalize().getParent();
        var byShard = new LinkedHashMap<Path, List<String>>();
        var shardOf = new LinkedHashMap<String, Path>();
        for (var e : weightMap.properties()) {
            if (!e.getValue().isTextual())
                throw new SafeTensorsException(index + ": weight_map entry for " + e.getKey() + " is not a file name");
            Path shard = dir.resolve(e.getValue().asText()).normalize();
            if (!shard.startsWith(dir))
                throw new SafeTensorsException(index + ": tensor " + e.getKey() + " maps to " + e.getValue().asText()
                        + ", outside the checkpoint directory");
            byShard.computeIfAbsent(shard, k -> new ArrayList<>()).add(e.getKey());
            shardOf.put(e.getKey(), shard);
        }
        for (var e : byShard.entrySet())
            if (!Files.isRegularFile(e.getKey()))
                throw new SafeTensorsException(e.getKey() + ": missing shard; " + index.getFileName() + " maps "
                        + e.getValue().size() + " tensors to it, e.g. " + e.getValue().getFirst());
        var arena = Arena.ofShared();
        try {
            var shards = new LinkedHashMap<Path, Parsed>();
            for (Path shard : byShard.keySet()) shards.put(shard, mapFile(shard, arena));
            var tensors = new LinkedHashMap<String, StoredTensor>();
            for (var e : shardOf.entrySet()) {
                StoredTensor t = shards.get(e.getValue()).tensors().get(e.getKey());
                if (t == null)
                    throw new SafeTensorsException(e.getValue() + ": tensor " + e.getKey() + " is listed in "
                            + index.getFileName() + " but not present in this shard");
                tensors.put(e.getKey(), t);
            }
            var metadata = new LinkedHashMap<String, String>();
            if (!shards.isEmpty()) metadata.putAll(shards.values().iterator().next().metadata());
            return new SafeTensors(index, arena, tensors, metadata);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private record Parsed(Map<String, StoredTensor> tensors, Map<String, String> metadata) {}

    private static Parsed mapFile(Path file, Arena arena) {
        try (var ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new SafeTensorsException(file + ": " + size + " bytes is too short for a safetensors file");
            var lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long n = lenBuf.getLong(0);
            if (n < 2 || n > size - 8 || n > MAX_HEADER_BYTES)
                throw new SafeTensorsException(file + ": header length " + n + " does not fit a file of " + size
                        + " bytes (corrupt or not safetensors)");
            var headerBuf = ByteBuffer.allocate((int) n);
            readFully(ch, headerBuf, 8);
            JsonNode header;
            try {
                header = JSON.readTree(headerBuf.array());
            } catch (JacksonException e) {
                throw new SafeTensorsException(file + ": header is not valid JSON: " + e.getOriginalMessage());
            }
            if (header == null || !header.isObject())
                throw new SafeTensorsException(file + ": header is not a JSON object");
            long dataStart = 8 + n, dataLength = size - dataStart;
            MemorySegment data = dataLength == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, dataStart, dataLength, arena);
            return parseHeader(file, header, data);
        } catch (NoSuchFileException e) {
            throw new SafeTensorsException(file + ": no such file");
        } catch (IOException e) {
            throw new SafeTensorsException(file + ": cannot read: " + e);
        }
    }

    private static Parsed parseHeader(Path file, JsonNode header, MemorySegment data) {
        var metadata = new LinkedHashMap<String, String>();
        var tensors = new LinkedHashMap<String, StoredTensor>();
        var begins = new LinkedHashMap<String, long[]>();
        for (var e : header.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) throw new SafeTensorsException(file + ": __metadata__ is not an object");
                for (var m : v.properties()) metadata.put(m.getKey(), m.getValue().asText());
                continue;
            }
            String where = file + ": tensor " + name;
            if (!v.isObject()) throw new SafeTensorsException(where + ": entry is not an object");
            JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
            if (dt == null || !dt.isTextual()) throw new SafeTensorsException(where + ": no dtype");
            StoredDType dtype = StoredDType.fromSafetensorsName(dt.asText());
            if (dtype == null)
                throw new SafeTensorsException(where + ": unsupported dtype " + dt.asText()
                        + " (supported: BF16 F16 F32 F64 I64 I32 I16 I8 U8 BOOL)");
            long[] shape = nonNegativeLongs(sh, -1, where + ": shape");
            long[] offsets = nonNegativeLongs(off, 2, where + ": data_offsets");
            long begin = offsets[0], end = offsets[1];
            if (begin > end || end > data.byteSize())
                throw new SafeTensorsException(where + ": data_offsets [" + begin + ", " + end + ") lie outside the "
                        + data.byteSize() + " data bytes");
            long numel;
            try {
                numel = TensorData.numel(shape);
                Math.multiplyExact(numel, dtype.bytes());
            } catch (ArithmeticException ex) {
                throw new SafeTensorsException(where + ": shape " + Arrays.toString(shape) + " overflows");
            }
            if (end - begin != numel * dtype.bytes())
                throw new SafeTensorsException(where + ": " + dtype + Arrays.toString(shape) + " needs "
                        + numel * dtype.bytes() + " bytes but data_offsets [" + begin + ", " + end + ") hold " + (end - begin));
            tensors.put(name, new StoredTensor(name, dtype, shape, data.asSlice(begin, end - begin).asReadOnly(), file));
            begins.put(name, offsets);
        }
        var order = new ArrayList<>(begins.entrySet());
        order.sort(Comparator.comparingLong(e -> e.getValue()[0]));
        String prev = null;
        long prevEnd = 0;
        for (var e : order) {
            long[] o = e.getValue();
            if (o[1] == o[0]) continue;                  // empty tensors occupy no bytes
            if (prev != null && o[0] < prevEnd)
                throw new SafeTensorsException(file + ": tensor " + e.getKey() + " [" + o[0] + ", " + o[1]
                        + ") overlaps tensor " + prev + " (ends at " + prevEnd + ")");
            prev = e.getKey();
            prevEnd = o[1];
        }
        return new Parsed(tensors, metadata);
    }

    private static long[] nonNegativeLongs(JsonNode node, int length, String what) {
        if (node == null || !node.isArray()) throw new SafeTensorsException(what + " is missing or not an array");
        if (length >= 0 && node.size() != length)
            throw new SafeTensorsException(what + " has " + node.size() + " entries, expected " + length);
        var out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = node.get(i);
            if (!x.isIntegralNumber() || !x.canConvertToLong() || x.asLong() < 0)
                throw new SafeTensorsException(what + " entry " + i + " = " + x + " is not a non-negative integer");
            out[i] = x.asLong();
        }
        return out;
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new SafeTensorsException(file + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new SafeTensorsException(file + (Files.exists(file) ? ": cannot read: " + e : ": no such file"));
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
        while (b.hasRemaining()) {
            int r = ch.read(b, position + b.position());
            if (r < 0) throw new IOException("unexpected end of file");
        }
    }

    /** The file or index this was opened from. */
    public Path source() { return source; }

    /** Tensor names, in index (or header) order. */
    public Set<String> names() { return tensors.keySet(); }

    public Collection<StoredTensor> tensors() { return tensors.values(); }

    public boolean contains(String name) { return tensors.containsKey(name); }

    /** The tensor, or an error naming the checkpoint. */
    public StoredTensor get(String name) {
        StoredTensor t = tensors.get(name);
        if (t == null) throw new SafeTensorsException(source + ": no tensor " + name);
        return t;
    }

    /** {@code __metadata__} of the file (of the first shard for a sharded checkpoint). */
    public Map<String, String> metadata() { return metadata; }

    /** Unmaps every file; tensors of this checkpoint must not be used afterwards. */
    @Override public void close() { arena.close(); }

    /**
     * Writes one safetensors file as the Rust reference does: tensors ordered by element size
     * (largest first), then name, so each is aligned to its element size; the header padded with
     * spaces to a multiple of 8 bytes. The file is replaced atomically.
     */
    public static void write(Path file, Map<String, TensorData> tensors, Map<String, String> metadata) {
        var order = new ArrayList<>(tensors.entrySet());
        order.sort(Comparator.comparingInt((Map.Entry<String, TensorData> e) -> -e.getValue().dtype().bytes())
                .thenComparing(Map.Entry::getKey));
        var header = new LinkedHashMap<String, Object>();
        if (!metadata.isEmpty()) header.put("__metadata__", new TreeMap<>(metadata));
        long offset = 0;
        for (var e : order) {
            if (e.getKey().equals("__metadata__")) throw new SafeTensorsException(file + ": a tensor may not be named __metadata__");
            TensorData t = e.getValue();
            long size = t.bytes().byteSize();
            var entry = new LinkedHashMap<String, Object>();
            entry.put("dtype", t.dtype().safetensorsName());
            entry.put("shape", t.shape());
            entry.put("data_offsets", new long[] {offset, offset + size});
            header.put(e.getKey(), entry);
            offset += size;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (JacksonException e) {
            throw new SafeTensorsException(file + ": cannot encode header: " + e.getOriginalMessage());
        }
        int padded = (json.length + 7) / 8 * 8;
        var head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            try (var ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                Npy.writeFully(ch, head);
                for (var e : order) Npy.writeSegment(ch, e.getValue().bytes());
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new SafeTensorsException(file + ": cannot write: " + e);
        }
    }

    /**
     * Writes a checkpoint directory as transformers' {@code save_pretrained} does: tensors in map
     * order, a new shard whenever the next tensor would push one past {@code maxShardBytes}, files
     * {@code model-00001-of-0000N.safetensors} plus {@value #INDEX_FILE}; a single shard is written as
     * {@value #SINGLE_FILE} with no index. Returns the files written.
     */
    public static List<Path> writeSharded(Path dir, Map<String, TensorData> tensors, Map<String, String> metadata,
                                          long maxShardBytes) {
        var shards = new ArrayList<Map<String, TensorData>>();
        var current = new LinkedHashMap<String, TensorData>();
        long currentBytes = 0, total = 0;
        for (var e : tensors.entrySet()) {
            long size = e.getValue().bytes().byteSize();
            if (!current.isEmpty() && currentBytes + size > maxShardBytes) {
                shards.add(current);
                current = new LinkedHashMap<>();
                currentBytes = 0;
            }
            current.put(e.getKey(), e.getValue());
            currentBytes += size;
            total += size;
        }
        shards.add(current);
        if (shards.size() == 1) {
            write(dir.resolve(SINGLE_FILE), tensors, metadata);
            return List.of(dir.resolve(SINGLE_FILE));
        }
        var written = new ArrayList<Path>();
        var weightMap = new TreeMap<String, String>();
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            write(dir.resolve(name), shards.get(i), metadata);
            written.add(dir.resolve(name));
            for (String t : shards.get(i).keySet()) weightMap.put(t, name);
        }
        written.add(writeIndex(dir, weightMap, total));
        return written;
    }

    /** Writes {@value #INDEX_FILE} as save_pretrained does: metadata.total_size (bytes of tensor data) and the weight_map. */
    public static Path writeIndex(Path dir, Map<String, String> weightMap, long totalSize) {
        var index = new LinkedHashMap<String, Object>();
        index.put("metadata", Map.of("total_size", totalSize));
        index.put("weight_map", new TreeMap<>(weightMap));
        try {
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve(INDEX_FILE).toFile(), index);
        } catch (IOException e) {
            throw new SafeTensorsException(dir.resolve(INDEX_FILE) + ": cannot write: " + e);
        }
        return dir.resolve(INDEX_FILE);
    }

    /** A checkpoint that cannot be read or written: the message names the file and, where one is at fault, the tensor. */
    public static final class SafeTensorsException extends RuntimeException {
        public SafeTensorsException(String message) { super(message); }
    }
}

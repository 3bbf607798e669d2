package dev.jomni.nn.io;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir Path dir;

    private static Map<String, TensorData> sample() {
        var m = new LinkedHashMap<String, TensorData>();
        m.put("a.bf16", TensorData.ofBf16(new float[] {1f, -2.5f, 3.140625f}, 3));
        m.put("b.f16", TensorData.ofF16(new float[] {0.5f, -0.25f}, 1, 2));
        m.put("c.f32", TensorData.ofFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        m.put("d.f64", TensorData.ofDoubles(new double[] {Math.E}, 1));
        m.put("e.i64", TensorData.ofLongs(new long[] {-5, 1L << 40}, 2));
        m.put("f.i32", TensorData.ofInts(new int[] {7, 8, 9}, 3));
        m.put("g.i16", TensorData.ofBytes(StoredDType.I16, new long[] {1}, new byte[] {2, 1}));
        m.put("h.i8", TensorData.ofBytes(StoredDType.I8, new long[] {3}, new byte[] {-1, 0, 1}));
        m.put("i.u8", TensorData.ofBytes(StoredDType.U8, new long[] {1}, new byte[] {(byte) 250}));
        m.put("j.bool", TensorData.ofBytes(StoredDType.BOOL, new long[] {2}, new byte[] {1, 0}));
        m.put("k.scalar", TensorData.ofFloats(new float[] {9f}));
        m.put("l.empty", TensorData.ofFloats(new float[0], 0, 4));
        return m;
    }

    @Test
    void writesAndMapsBackEveryDType() throws IOException {
        Path file = dir.resolve("x.safetensors");
        SafeTensors.write(file, sample(), Map.of("format", "pt"));
        try (var st = SafeTensors.open(file)) {
            assertEquals(sample().keySet(), new java.util.HashSet<>(st.names()));
            for (var e : sample().entrySet()) {
                var t = st.get(e.getKey());
                assertEquals(e.getValue(), t.data(), e.getKey());
                assertEquals(file, t.file());
                assertTrue(t.bytes().isReadOnly());
            }
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertArrayEquals(new float[] {1f, -2.5f, 3.140625f}, st.get("a.bf16").toFloats());
        }
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8, "header padded to 8 bytes as HF does");
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{\"__metadata__\":{\"format\":\"pt\"}"), header);
        // F64/I64 first, then 4-byte, then 2-byte, then 1-byte types: every tensor aligned to its element size.
        assertTrue(header.indexOf("d.f64") < header.indexOf("c.f32") && header.indexOf("c.f32") < header.indexOf("a.bf16")
                && header.indexOf("a.bf16") < header.indexOf("h.i8"), header);
    }

    @Test
    void closingUnmapsTheTensors() {
        Path file = dir.resolve("x.safetensors");
        SafeTensors.write(file, sample(), Map.of());
        StoredTensor t;
        try (var st = SafeTensors.open(file)) {
            t = st.get("c.f32");
        }
        assertThrows(IllegalStateException.class, t::toFloats);
    }

    @Test
    void readsAShardedCheckpointThroughItsIndex() throws IOException {
        var tensors = sample();
        var files = SafeTensors.writeSharded(dir, tensors, Map.of("format", "pt"), 20);
        assertTrue(files.size() > 3, "several shards: " + files);
        assertTrue(Files.exists(dir.resolve(SafeTensors.INDEX_FILE)));
        String index = Files.readString(dir.resolve(SafeTensors.INDEX_FILE));
        assertTrue(index.contains("\"total_size\""), index);
        try (var st = SafeTensors.open(dir)) {
            assertEquals(tensors.keySet(), new java.util.HashSet<>(st.names()));
            var shardFiles = new java.util.HashSet<Path>();
            for (var e : tensors.entrySet()) {
                var t = st.get(e.getKey());
                assertEquals(e.getValue(), t.data(), e.getKey());
                assertTrue(t.file().getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"), t.toString());
                shardFiles.add(t.file());
            }
            assertEquals(files.size() - 1, shardFiles.size(), "tensors come from every shard");
        }
        var one = SafeTensors.writeSharded(dir.resolve("single"), tensors, Map.of(), 1L << 30);
        assertEquals(java.util.List.of(dir.resolve("single").resolve(SafeTensors.SINGLE_FILE)), one);
        try (var st = SafeTensors.open(dir.resolve("single"))) {
            assertEquals(tensors.size(), st.names().size());
        }
    }

    @Test
    void missingShardNamesTheShardAndATensor() throws IOException {
        SafeTensors.writeSharded(dir, sample(), Map.of(), 20);
        Path shard = dir.resolve("model-00002-of-" + shardCount() + ".safetensors");
        String someTensor = tensorsIn(shard).iterator().next();
        Files.delete(shard);
        var e = assertThrows(SafeTensors.SafeTensorsException.class, () -> SafeTensors.open(dir));
        assertTrue(e.getMessage().contains(shard.getFileName().toString()) && e.getMessage().contains("missing shard"), e.getMessage());
        assertTrue(e.getMessage().contains(someTensor), e.getMessage());
    }

    @Test
    void indexNameAbsentFromItsShardNamesFileAndTensor() throws IOException {
        SafeTensors.writeSharded(dir, sample(), Map.of(), 20);
        Path index = dir.resolve(SafeTensors.INDEX_FILE);
        String json = Files.readString(index);
        String shard1 = "model-00001-of-" + shardCount() + ".safetensors";
        Files.writeString(index, json.replace("\"weight_map\" : {", "\"weight_map\" : {\n    \"ghost.weight\" : \"" + shard1 + "\","));
        var e = assertThrows(SafeTensors.SafeTensorsException.class, () -> SafeTensors.open(dir));
        assertTrue(e.getMessage().contains(shard1) && e.getMessage().contains("ghost.weight"), e.getMessage());
    }

    @Test
    void corruptHeadersAreErrorsNamingFileAndTensor() throws IOException {
        assertCorrupt("badlength", lengthPrefixed(1_000_000, "{}", 0), "header length 1000000");
        assertCorrupt("badjson", raw("{\"w\": {\"dtype\": \"F32\", ", 0), "not valid JSON");
        assertCorrupt("outofrange", raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
                "tensor w", "outside the 8 data bytes");
        assertCorrupt("overlap", raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "tensor b", "overlaps tensor a");
        assertCorrupt("size", raw("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8),
                "tensor w", "needs 12 bytes");
        assertCorrupt("dtype", raw("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
                "tensor w", "unsupported dtype F8_E4M3");
        assertCorrupt("shape", raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                "tensor w", "shape");
        assertCorrupt("duplicate", raw("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "Duplicate field 'w'");
        assertCorrupt("short", new byte[5], "too short");
    }

    private void assertCorrupt(String name, byte[] content, String... expected) throws IOException {
        Path file = dir.resolve(name + ".safetensors");
        Files.write(file, content);
        var e = assertThrows(SafeTensors.SafeTensorsException.class, () -> SafeTensors.open(file), name);
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String s : expected) assertTrue(e.getMessage().contains(s), name + ": " + e.getMessage());
    }

    private static byte[] raw(String header, int dataBytes) {
        return lengthPrefixed(header.getBytes(StandardCharsets.UTF_8).length, header, dataBytes);
    }

    private static byte[] lengthPrefixed(long length, String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN).putLong(length).put(h).array();
    }

    private String shardCount() throws IOException {
        try (var s = Files.list(dir)) {
            return String.format("%05d", s.filter(p -> p.getFileName().toString().startsWith("model-")).count());
        }
    }

    private static java.util.Set<String> tensorsIn(Path shard) {
        try (var st = SafeTensors.open(shard)) {
            return new java.util.TreeSet<>(st.names());
        }
    }
}

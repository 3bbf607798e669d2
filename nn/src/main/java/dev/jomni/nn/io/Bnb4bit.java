package dev.jomni.nn.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * The serialization transformers uses for a bitsandbytes 4-bit checkpoint (bnb's QuantState.as_dict(packed=True)),
 * NF4 with double quantization, for a weight stored under {@code key} (e.g. {@code …q_proj.weight}):
 * <pre>
 *   key                                        U8  [N·K/2, 1]  two codes per byte, high nibble first
 *   key.absmax                                 U8  [N·K/64]    the double-quantized block scales
 *   key.quant_map                              F32 [16]        the NF4 levels
 *   key.nested_absmax                          F32 [ceil(N·K/64/256)]
 *   key.nested_quant_map                       F32 [256]       the dynamic map
 *   key.quant_state.bitsandbytes__nf4          U8  [bytes]     JSON: quant_type, blocksize, dtype, shape,
 *                                                              nested_blocksize, nested_dtype, nested_offset
 * </pre>
 * Read without re-quantizing: the parts become an {@link Nf4Weight} byte for byte. The quant state's shape may have
 * more than two dimensions (a stack of experts [E, 2I, H], as jomni writes them): the weight is then that shape
 * flattened to [numel/K, K], K the last dimension, which is bnb's own flattening of the blocks.
 */
public final class Bnb4bit {
    public static final String STATE = ".quant_state.bitsandbytes__nf4";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private Bnb4bit() {}

    /** The keys a 4-bit weight stored under {@code key} occupies (the weight's own first). */
    public static String[] keys(String key) {
        return new String[] {key, key + ".absmax", key + ".quant_map", key + ".nested_absmax", key + ".nested_quant_map", key + STATE};
    }

    /**
     * The NF4 weight stored under {@code key}; {@code get} returns a stored tensor by name (null where
     * absent), {@code file} names the checkpoint in errors. Parts are CPU tensors copied from the stored bytes.
     */
    public static Nf4Weight read(Function<String, TensorData> get, String key, String file) {
        TensorData state = need(get, key + STATE, file);
        JsonNode s = state(state, key, file);
        if (!"nf4".equals(s.path("quant_type").asText()) || s.path("blocksize").asInt() != Nf4Weight.BLOCK)
            throw fail(key, file, "quant_type " + s.path("quant_type") + ", blocksize " + s.path("blocksize") + ": jomni reads nf4 in blocks of 64");
        if (!s.has("nested_offset"))
            throw fail(key, file, "absmax is not double-quantized (compress_statistics=False): not supported");
        if (s.path("nested_blocksize").asInt() != Nf4Weight.NESTED_BLOCK || !"float32".equals(s.path("nested_dtype").asText()))
            throw fail(key, file, "nested_blocksize " + s.path("nested_blocksize") + ", nested_dtype " + s.path("nested_dtype") + ": expected 256, float32");
        int[] shape = shape(s, key, file);
        int cols = shape[shape.length - 1], rows = 1;
        for (int i = 0; i + 1 < shape.length; i++) rows = Math.multiplyExact(rows, shape[i]);
        DType dtype = switch (s.path("dtype").asText()) {
            case "bfloat16" -> DType.BF16;
            case "float16" -> DType.F16;
            case "float32" -> DType.F32;
            default -> throw fail(key, file, "dtype " + s.path("dtype") + " is not bfloat16, float16 or float32");
        };
        if (cols % Nf4Weight.BLOCK != 0) throw fail(key, file, "shape " + Arrays.toString(shape) + ": K is not a multiple of 64");
        long n = (long) rows * cols, blocks = n / Nf4Weight.BLOCK;
        float[] map = floats(need(get, key + ".quant_map", file), key + ".quant_map", file, 16);
        for (int i = 0; i < 16; i++)
            if (Math.abs(map[i] - Nf4Weight.CODE[i]) > 1e-6f)
                throw fail(key + ".quant_map", file, "level " + i + " is " + map[i] + ", not NF4's " + Nf4Weight.CODE[i]);
        Device cpu = Device.cpu();
        return new Nf4Weight(
                tensor(need(get, key, file), key, file, StoredDType.U8, n / 2),
                tensor(need(get, key + ".absmax", file), key + ".absmax", file, StoredDType.U8, blocks),
                tensor(need(get, key + ".nested_absmax", file), key + ".nested_absmax", file, StoredDType.F32,
                        (blocks + Nf4Weight.NESTED_BLOCK - 1) / Nf4Weight.NESTED_BLOCK),
                tensor(need(get, key + ".nested_quant_map", file), key + ".nested_quant_map", file, StoredDType.F32, 256),
                (float) s.path("nested_offset").asDouble(), rows, cols, dtype);
    }

    /**
     * The shape the weight stored under {@code key} had before quantization (its quant state's), read without its
     * data; {@code state} is the stored {@code key + STATE} tensor.
     */
    public static int[] shape(TensorData state, String key, String file) { return shape(state(state, key, file), key, file); }

    private static JsonNode state(TensorData state, String key, String file) {
        try {
            return JSON.readTree(new String(state.toByteArray(), StandardCharsets.UTF_8));
        } catch (Exception e) {
            throw fail(key + STATE, file, "quant state is not JSON: " + e.getMessage());
        }
    }

    private static int[] shape(JsonNode s, String key, String file) {
        JsonNode shape = s.path("shape");
        if (!shape.isArray() || shape.size() < 2) throw fail(key, file, "shape " + shape + " is not [..., N, K]");
        int[] out = new int[shape.size()];
        for (int i = 0; i < out.length; i++) {
            if (!shape.get(i).canConvertToInt() || shape.get(i).asInt() <= 0) throw fail(key, file, "shape " + shape + " is not [..., N, K] of positive sizes");
            out[i] = shape.get(i).asInt();
        }
        return out;
    }

    /** The six stored tensors of {@code w} under {@code key}, as bitsandbytes writes them. */
    public static Map<String, TensorData> write(String key, Nf4Weight w) { return write(key, w, w.shape()); }

    /**
     * The same for a weight of {@code shape} before quantization (e.g. stacked experts [E, 2I, H]), which w holds
     * flattened to [numel/K, K]; the quant state records that shape.
     */
    public static Map<String, TensorData> write(String key, Nf4Weight w, int[] shape) {
        long numel = 1;
        for (int d : shape) numel *= d;
        if (shape.length < 2 || shape[shape.length - 1] != w.cols() || numel != (long) w.rows() * w.cols())
            throw new IllegalArgumentException(key + ": shape " + Arrays.toString(shape) + " does not flatten to the NF4 weight " + Arrays.toString(w.shape()));
        var out = new LinkedHashMap<String, TensorData>();
        out.put(key, new TensorData(StoredDType.U8, new long[] {w.packed().numel(), 1}, TensorData.of(w.packed()).bytes()));
        out.put(key + ".absmax", TensorData.of(w.absmax()));
        out.put(key + ".quant_map", TensorData.ofFloats(Nf4Weight.CODE.clone(), 16));
        out.put(key + ".nested_absmax", TensorData.of(w.nestedAbsmax()));
        out.put(key + ".nested_quant_map", TensorData.of(w.nestedCode()));
        // json.dumps of the non-tensor items, in as_dict's order and with Python's separators.
        String dtype = switch (w.dtype()) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
            default -> throw new IllegalArgumentException(key + ": bnb stores 4-bit weights of bfloat16, float16 or float32, not " + w.dtype().lower());
        };
        String json = "{\"quant_type\": \"nf4\", \"blocksize\": " + Nf4Weight.BLOCK + ", \"dtype\": \"" + dtype + "\", \"shape\": "
                + Arrays.toString(shape) + ", \"nested_blocksize\": " + Nf4Weight.NESTED_BLOCK
                + ", \"nested_dtype\": \"float32\", \"nested_offset\": " + (double) w.offset() + "}";
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        out.put(key + STATE, TensorData.ofBytes(StoredDType.U8, new long[] {b.length}, b));
        return out;
    }

    private static TensorData need(Function<String, TensorData> get, String name, String file) {
        TensorData t = get.apply(name);
        if (t == null) throw fail(name, file, "missing (a bnb 4-bit weight needs " + String.join(", ", keys("<key>")) + ")");
        return t;
    }

    /** A contiguous 1-D CPU tensor copied from t, checked to hold numel elements of type (any shape, [n, 1] included). */
    private static Tensor tensor(TensorData t, String name, String file, StoredDType type, long numel) {
        if (t.dtype() != type || t.numel() != numel)
            throw fail(name, file, "expected " + type.safetensorsName() + " of " + numel + " elements, found " + t.dtype().safetensorsName()
                    + " " + Arrays.toString(t.shape()));
        return Tensor.fromHost(Device.cpu(), type.tensorType(), t.bytes(), Math.toIntExact(numel));
    }

    private static float[] floats(TensorData t, String name, String file, int numel) {
        if (t.dtype() != StoredDType.F32 || t.numel() != numel)
            throw fail(name, file, "expected F32 [" + numel + "], found " + t.dtype().safetensorsName() + " " + Arrays.toString(t.shape()));
        return t.toFloats();
    }

    private static IllegalArgumentException fail(String name, String file, String what) {
        return new IllegalArgumentException(name + ": " + what + " in " + file);
    }
}

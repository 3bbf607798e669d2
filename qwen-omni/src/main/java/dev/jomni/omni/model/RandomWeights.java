package dev.jomni.omni.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.Parameter;
import dev.jomni.omni.config.ConfigException;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Random weights of the Qwen3-Omni thinker, as transformers initialises a new model (_init_weights): every
 * Linear, Conv and Embedding weight ~ N(0, initializer_range²) of its tower's config (drawn by inverse transform
 * over 2¹⁶ levels, {@link #normalLevels}), norm weights 1, biases 0.
 *
 * <p>{@link #thinkerTensors} lists the tensors a release stores for the thinker, with their names and shapes
 * (experts one tensor per expert, the vision tower included though this thinker does not run it), without
 * allocating anything. {@link #fill} writes one of them as bf16; the values depend only on the seed and the
 * tensor's checkpoint name (chunks of {@value #CHUNK} elements, each its own random stream, drawn in parallel),
 * so {@link #build} (in memory, experts stacked) holds exactly what {@link RandomCheckpoint} writes.
 */
public final class RandomWeights {
    private RandomWeights() {}

    /** Elements per independent random stream: the unit of parallel work. */
    static final int CHUNK = 1 << 20;

    public enum Init { NORMAL, ONES, ZEROS }

    /** One stored tensor: checkpoint name (under {@code thinker.}), shape, and how it is initialised. */
    public record Spec(String name, long[] shape, Init init, double std) {
        public long numel() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return n;
        }

        @Override public String toString() { return name + " " + Arrays.toString(shape); }
    }

    /**
     * Every thinker tensor of a release with this {@code config.json} (the full Qwen3-Omni file or a thinker-only
     * one): the audio tower and text model as {@link Thinker} declares them, experts unstacked into
     * {@code …experts.N.{gate,up,down}_proj.weight}, and the vision tower from {@code vision_config}.
     */
    public static List<Spec> thinkerTensors(Path configFile) {
        JsonNode thinker = thinkerNode(configFile);
        ThinkerConfig config = ThinkerConfig.load(configFile);
        double textStd = std(thinker.path("text_config"), thinker), audioStd = std(thinker.path("audio_config"), thinker);
        List<Spec> out = new ArrayList<>();
        JsonNode vision = thinker.get("vision_config");
        if (vision != null && !vision.isNull()) out.addAll(visionTensors(configFile, vision, std(vision, thinker)));
        for (var e : new Thinker(config).parameters().entrySet()) {
            String name = "thinker." + e.getKey();
            int[] s = e.getValue().shape();
            double std = name.startsWith("thinker.audio_tower.") ? audioStd : textStd;
            if (name.endsWith(".experts.gate_up_proj")) {                   // [E, 2I, H] → gate_proj, up_proj [I, H] per expert
                String experts = name.substring(0, name.lastIndexOf('.'));
                for (int x = 0; x < s[0]; x++)
                    for (String proj : List.of("gate_proj", "up_proj"))
                        out.add(new Spec(experts + "." + x + "." + proj + ".weight", new long[] {s[1] / 2, s[2]}, Init.NORMAL, std));
            } else if (name.endsWith(".experts.down_proj")) {               // [E, H, I] → down_proj [H, I] per expert
                String experts = name.substring(0, name.lastIndexOf('.'));
                for (int x = 0; x < s[0]; x++)
                    out.add(new Spec(experts + "." + x + ".down_proj.weight", new long[] {s[1], s[2]}, Init.NORMAL, std));
            } else {
                out.add(new Spec(name, Arrays.stream(s).asLongStream().toArray(), init(name), std));
            }
        }
        return out;
    }

    /** Norm weights start at 1, biases at 0, everything else from N(0, std²), as transformers' _init_weights. */
    static Init init(String name) {
        if (name.endsWith(".bias")) return Init.ZEROS;
        String[] parts = name.split("\\.");
        String module = parts.length >= 2 ? parts[parts.length - 2] : "";
        return module.contains("norm") || module.startsWith("ln_") ? Init.ONES : Init.NORMAL;
    }

    /**
     * The vision encoder's tensors (Qwen3OmniMoeVisionEncoder): a Conv3d patch embedding, learnt position embeddings,
     * {@code depth} pre-norm blocks (fused qkv), the merger and one deepstack merger per {@code deepstack_visual_indexes}.
     */
    static List<Spec> visionTensors(Path file, JsonNode v, double std) {
        int h = need(file, v, "hidden_size"), inter = need(file, v, "intermediate_size"), depth = need(file, v, "depth");
        int out = need(file, v, "out_hidden_size"), patch = need(file, v, "patch_size"), temporal = need(file, v, "temporal_patch_size");
        int merge = need(file, v, "spatial_merge_size"), channels = v.path("in_channels").asInt(3);
        int positions = v.path("num_position_embeddings").asInt(2304), merged = h * merge * merge;
        var s = new ArrayList<Spec>();
        String p = "thinker.visual.";
        add(s, p + "patch_embed.proj", std, h, channels, temporal, patch, patch);
        s.add(new Spec(p + "patch_embed.proj.bias", new long[] {h}, Init.ZEROS, std));
        s.add(new Spec(p + "pos_embed.weight", new long[] {positions, h}, Init.NORMAL, std));
        for (int b = 0; b < depth; b++) {
            String q = p + "blocks." + b + ".";
            norm(s, q + "norm1", h, std);
            norm(s, q + "norm2", h, std);
            linear(s, q + "attn.qkv", 3 * h, h, std);
            linear(s, q + "attn.proj", h, h, std);
            linear(s, q + "mlp.linear_fc1", inter, h, std);
            linear(s, q + "mlp.linear_fc2", h, inter, std);
        }
        norm(s, p + "merger.ln_q", h, std);                                     // the merger normalises before the 2×2 shuffle
        linear(s, p + "merger.mlp.0", merged, merged, std);
        linear(s, p + "merger.mlp.2", out, merged, std);
        for (int d = 0; d < v.path("deepstack_visual_indexes").size(); d++) {
            String q = p + "merger_list." + d + ".";
            norm(s, q + "ln_q", merged, std);                                   // deepstack mergers normalise after it
            linear(s, q + "mlp.0", merged, merged, std);
            linear(s, q + "mlp.2", out, merged, std);
        }
        return s;
    }

    private static void add(List<Spec> s, String module, double std, long... shape) {
        s.add(new Spec(module + ".weight", shape, Init.NORMAL, std));
    }

    private static void linear(List<Spec> s, String module, long out, long in, double std) {
        s.add(new Spec(module + ".weight", new long[] {out, in}, Init.NORMAL, std));
        s.add(new Spec(module + ".bias", new long[] {out}, Init.ZEROS, std));
    }

    private static void norm(List<Spec> s, String module, long n, double std) {
        s.add(new Spec(module + ".weight", new long[] {n}, Init.ONES, std));
        s.add(new Spec(module + ".bias", new long[] {n}, Init.ZEROS, std));
    }

    private static int need(Path file, JsonNode v, String key) {
        if (!v.path(key).isInt()) throw new ConfigException(file + ": thinker_config.vision_config." + key + " is missing or not an integer");
        return v.path(key).asInt();
    }

    private static double std(JsonNode tower, JsonNode thinker) {
        JsonNode r = tower.path("initializer_range");
        return r.isNumber() ? r.asDouble() : thinker.path("initializer_range").asDouble(0.02);
    }

    static JsonNode thinkerNode(Path configFile) {
        try {
            JsonNode root = new ObjectMapper().readTree(configFile.toFile());
            return root.has("thinker_config") ? root.get("thinker_config") : root;
        } catch (IOException e) {
            throw new UncheckedIOException(configFile + ": cannot read: " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- values

    /**
     * Writes {@code spec}'s values as bf16 (little-endian) into {@code dst} ({@code numel · 2} bytes): chunk c of
     * the tensor draws from its own stream seeded by (seed, name, c), so the result does not depend on threads.
     */
    public static void fill(Spec spec, long seed, MemorySegment dst) {   // dst must be shared: chunks are filled in parallel
        long n = spec.numel();
        if (dst.byteSize() != 2 * n) throw new IllegalArgumentException(spec + ": " + dst.byteSize() + " bytes for " + n + " bf16 values");
        if (spec.init() != Init.NORMAL) {
            short v = spec.init() == Init.ONES ? (short) 0x3F80 : 0;
            for (long i = 0; i < n; i++) dst.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, v);
            return;
        }
        long key = mix(seed ^ fnv(spec.name()));
        int chunks = Math.toIntExact((n + CHUNK - 1) / CHUNK);
        short[] levels = normalLevels(spec.std());
        IntStream.range(0, chunks).parallel().forEach(c -> {
            var random = new SplittableRandom(mix(key + c * 0x9E3779B97F4A7C15L));
            long from = (long) c * CHUNK;
            short[] values = new short[(int) Math.min(CHUNK, n - from)];      // drawn on the heap, copied in bulk
            for (int i = 0; i < values.length; i += 4) {                      // four 16-bit draws per random long
                long r = random.nextLong();
                for (int j = 0; j < 4 && i + j < values.length; j++) values[i + j] = levels[(int) (r >>> (16 * j)) & 0xFFFF];
            }
            MemorySegment.copy(values, 0, dst, ValueLayout.JAVA_SHORT_UNALIGNED, 2 * from, values.length);
        });
    }

    private static final java.util.concurrent.ConcurrentHashMap<Double, short[]> LEVELS = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * N(0, std²) by inverse transform over 2¹⁶ equiprobable levels: level k is std·Φ⁻¹((k + ½)/2¹⁶) in bf16, so one
     * 16-bit draw is one value (30B of them take seconds, where exact Gaussian draws take minutes). The levels are
     * finer than bf16's 8-bit mantissa wherever the density is not negligible; the tails stop at ±4.4·std.
     */
    static short[] normalLevels(double std) {
        return LEVELS.computeIfAbsent(std, sd -> {
            short[] t = new short[1 << 16];
            for (int k = 0; k < t.length; k++) t[k] = bf16((float) (sd * inverseNormal((k + 0.5) / t.length)));
            return t;
        });
    }

    /** Φ⁻¹(p) for 0 < p < 1, Acklam's rational approximation (relative error below 1.2e-9). */
    static double inverseNormal(double p) {
        final double[] a = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
        final double[] b = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01};
        final double[] c = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
        final double[] d = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
        double q, r;
        if (p < 0.02425) {
            q = Math.sqrt(-2 * Math.log(p));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (p > 1 - 0.02425) {
            q = Math.sqrt(-2 * Math.log(1 - p));
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        q = p - 0.5;
        r = q * q;
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }

    /** f32 → bf16 bits, round to nearest even (values here are finite). */
    static short bf16(float f) {
        int b = Float.floatToRawIntBits(f);
        return (short) ((b + 0x7FFF + ((b >>> 16) & 1)) >>> 16);
    }

    private static long fnv(String s) {
        long h = 0xCBF29CE484222325L;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) h = (h ^ (b & 0xFF)) * 0x100000001B3L;
        return h;
    }

    private static long mix(long z) {                                           // SplitMix64's finaliser
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---------------------------------------------------------------- in memory

    /**
     * The thinker of {@code configFile} with random weights made directly where it will run: each parameter is
     * generated on the host as bf16 (experts stacked from their per-expert values), copied to {@code device} and
     * converted to {@code dtype}, one at a time, so host memory holds one tensor at most. The values equal those
     * of {@link RandomCheckpoint#write} for the same seed, loaded with {@link Thinker#load}.
     */
    public static Thinker build(Path configFile, long seed, DType dtype, Device device) {
        Thinker thinker = new Thinker(ThinkerConfig.load(configFile));
        fill(thinker, configFile, seed, device, (p, name, t) -> p.set(dtype == DType.BF16 ? t : t.to(dtype)));
        return thinker;
    }

    /** Sets parameter p (checkpoint key {@code name}) from its bf16 values t, on the device; t is the setter's to keep or release. */
    private interface Place { void set(Parameter p, String name, Tensor t); }

    /** Each parameter's bf16 values made on the host, one at a time, copied to {@code device} and handed to {@code place}. */
    private static void fill(Thinker thinker, Path configFile, long seed, Device device, Place place) {
        Map<String, Spec> specs = new LinkedHashMap<>();
        for (Spec s : thinkerTensors(configFile)) specs.put(s.name(), s);
        try (var g = Autograd.noGrad()) {
            for (var e : thinker.parameters().entrySet()) {
                Parameter p = e.getValue();
                String name = "thinker." + e.getKey();
                int[] shape = p.shape();
                long numel = 1;
                for (int d : shape) numel *= d;
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment host = arena.allocate(2 * numel, 8);
                    for (var part : parts(name, shape, specs)) fill(part.spec(), seed, host.asSlice(2 * part.offset(), 2 * part.spec().numel()));
                    place.set(p, name, Tensor.fromHost(device, DType.BF16, host, shape));
                }
            }
        }
    }

    /** A thinker from {@link #buildNf4}: the NF4 weights it holds and the seconds spent quantizing them (synchronised). */
    public record Nf4Built(Thinker thinker, int nf4Weights, double quantizeSeconds, List<String> notes) {}

    /**
     * {@link #build}'s thinker with use_4bit's weights ({@link Nf4Plan#select}: the text decoder's attention projections
     * and experts; router, embeddings, lm_head, norms and the audio tower stay dense) quantized to NF4 where they are made:
     * each bf16 tensor is placed on {@code device}, quantized there ({@link Nf4Weight#quantize}, on the device's kernels)
     * and released, one at a time, so the device never holds more than the NF4 base and one dense weight. An NF4
     * weight dequantizes to {@code dtype}.
     */
    public static Nf4Built buildNf4(Path configFile, long seed, DType dtype, Device device) {
        Thinker thinker = new Thinker(ThinkerConfig.load(configFile));
        Map<String, int[]> shapes = new LinkedHashMap<>();
        thinker.parameters().forEach((n, p) -> shapes.put("thinker." + n, p.shape()));
        List<String> notes = new ArrayList<>();
        var nf4 = Nf4Plan.select(shapes, key -> true, notes);
        double[] quantizeSeconds = {0};
        fill(thinker, configFile, seed, device, (p, name, t) -> {
            if (!nf4.contains(name)) {
                p.set(dtype == DType.BF16 ? t : t.to(dtype));
                return;
            }
            long t0 = System.nanoTime();
            Nf4Weight q = Nf4Weight.quantize(name, t.reshape(-1, t.size(-1)));
            device.synchronize();
            quantizeSeconds[0] += (System.nanoTime() - t0) / 1e9;
            t.close();
            p.set(q.withDtype(dtype));
        });
        return new Nf4Built(thinker, nf4.size(), quantizeSeconds[0], List.copyOf(notes));
    }

    private record Part(Spec spec, long offset) {}

    /** Where each stored tensor lies in parameter {@code name}: itself, or every expert's slice of a stacked tensor. */
    private static List<Part> parts(String name, int[] shape, Map<String, Spec> specs) {
        boolean gateUp = name.endsWith(".experts.gate_up_proj"), down = name.endsWith(".experts.down_proj");
        if (!gateUp && !down) return List.of(new Part(specs.get(name), 0));
        String experts = name.substring(0, name.lastIndexOf('.'));
        long slice = (long) shape[1] * shape[2];
        var parts = new ArrayList<Part>();
        for (int x = 0; x < shape[0]; x++)
            if (gateUp) {
                parts.add(new Part(specs.get(experts + "." + x + ".gate_proj.weight"), x * slice));
                parts.add(new Part(specs.get(experts + "." + x + ".up_proj.weight"), x * slice + slice / 2));
            } else {
                parts.add(new Part(specs.get(experts + "." + x + ".down_proj.weight"), x * slice));
            }
        return parts;
    }
}

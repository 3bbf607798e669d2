package dev.jomni.omni.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.Linear;
import dev.jomni.nn.Lora;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.StoredTensor;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter ({@code adapter_config.json} + {@code adapter_model.safetensors}) attached to the
 * thinker's Linears as {@link Lora} updates; the base weights stay as loaded.
 *
 * <p>Two layouts of the MoE experts exist. PEFT ≥ 0.17 with transformers 5 (fused experts) stores one pair per
 * layer and fused parameter: {@code mlp.experts[.base_layer…].lora_A.weight} [E·r, in], expert-major (expert e
 * owns rows e·r … e·r+r−1), and {@code lora_B.weight} [out, r·E] with the expert index fastest (column j is
 * expert j mod E, rank j div E); gate_up's out axis holds gate rows then up rows, so gate and up share expert
 * e's A. Older adapters (transformers 4) name each expert's Linear: {@code mlp.experts.E.gate_proj.lora_A.weight}.
 * Here each expert's Linear gets its own {@link Lora}; {@link #peftTensors} and {@link #gradients} fuse back.
 */
public final class LoraAdapter {
    public static final String CONFIG = "adapter_config.json", WEIGHTS = "adapter_model.safetensors";
    private static final String PREFIX = "base_model.model.", A = ".lora_A.weight", B = ".lora_B.weight";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final ObjectNode config;
    private final List<Site> sites;
    private final Lora.Dropout dropout;

    private LoraAdapter(ObjectNode config, List<Site> sites, Lora.Dropout dropout) {
        this.config = config;
        this.sites = sites;
        this.dropout = dropout;
    }

    /**
     * What {@link #create} adapts and how: rank, alpha, lora_dropout, use_rslora (scaling α/√r instead of α/r), and the
     * targets by PEFT's rules: {@code targetRegex} non-null is a full-match regex over module names (PEFT's string form),
     * else {@code targetList} entries match a module name or its last components.
     */
    public record Spec(int r, double alpha, double dropout, boolean useRslora, List<String> targetList, String targetRegex) {
        public Spec {
            if (r <= 0) throw new IllegalArgumentException("lora_r " + r + " must be positive");
            if (dropout < 0 || dropout >= 1) throw new IllegalArgumentException("lora_dropout " + dropout + " must be in [0, 1)");
            targetList = targetList == null ? List.of() : List.copyOf(targetList);
            if (targetRegex == null && targetList.isEmpty()) throw new IllegalArgumentException("target_modules: none given");
        }
    }

    /** The dropout shared by this adapter's attention/linear targets (the fused experts take none yet), to switch on for training. */
    public Lora.Dropout dropout() { return dropout; }

    /** The adapted sites counted per kind: {@code "model …q_proj"} / {@code "audio_tower …q_proj"} / {@code "model …experts.gate_up_proj"}. */
    public Map<String, Integer> matches() {
        Map<String, Integer> out = new TreeMap<>();
        for (Site site : sites) {
            String name = site.key().substring(PREFIX.length() + "thinker.".length());
            String part = name.substring(0, name.indexOf('.') < 0 ? name.length() : name.indexOf('.'));
            String kind = switch (site) {
                case Plain p -> name.substring(name.lastIndexOf('.') + 1);
                case Fused f -> "experts." + (f.experts().getFirst().size() == 2 ? "gate_up_proj" : "down_proj");
            };
            out.merge(part + " " + kind, 1, Integer::sum);
        }
        return out;
    }

    /** The adapter's config (adapter_config.json as it will be written). */
    public ObjectNode config() { return config.deepCopy(); }

    /** Where one PEFT module's A and B live in the thinker; key is the PEFT name without {@code .lora_A.weight}. */
    private sealed interface Site {
        String key();
    }

    private record Plain(String key, Linear linear) implements Site {}

    /** experts.get(e): expert e's Linears whose out axes the fused parameter stacks (gate, up) or (down). */
    private record Fused(String key, List<List<Linear>> experts) implements Site {}

    /**
     * Reads the adapter in {@code dir} and attaches it to {@code thinker} in the thinker's dtype and device.
     * Every tensor that matches no target, every target without tensors and every wrong shape is reported at once.
     */
    public static LoraAdapter apply(Path dir, Thinker thinker) { return apply(dir, thinker, null); }

    /**
     * As {@link #apply(Path, Thinker)}, with the adapter's tensors in {@code loraDtype} (f32 master weights for
     * training) instead of the adapted layers' dtype when it is non-null.
     */
    public static LoraAdapter apply(Path dir, Thinker thinker, DType loraDtype) {
        Path configFile = dir.resolve(CONFIG), weightsFile = dir.resolve(WEIGHTS);
        ObjectNode config = readConfig(configFile);
        Settings s = Settings.of(configFile, config);
        if (!Files.isRegularFile(weightsFile))
            throw new IllegalArgumentException(weightsFile + ": no such file"
                    + (Files.exists(dir.resolve("adapter_model.bin")) ? " (adapter_model.bin, PyTorch's pickle format, is not read: save with safe_serialization)" : ""));

        Map<String, Site> expected = sites(thinker, s);
        Lora.Dropout dropout = new Lora.Dropout(s.dropout());
        int plain = 0;
        List<String> problems = new ArrayList<>();
        List<Site> sites = new ArrayList<>();
        String file = weightsFile.getFileName().toString();
        try (var st = SafeTensors.open(weightsFile)) {
            Set<String> unmatched = new TreeSet<>();
            for (String n : st.names()) {
                String key = n.endsWith(A) ? n.substring(0, n.length() - A.length()) : n.endsWith(B) ? n.substring(0, n.length() - B.length()) : null;
                if (key == null || !expected.containsKey(key)) unmatched.add(n);
            }
            for (String n : unmatched) problems.add(n + " in " + file + " matches no target module of the thinker " + Arrays.toString(st.get(n).shape()));
            for (var e : expected.entrySet()) {
                String key = e.getKey();
                boolean hasA = st.contains(key + A), hasB = st.contains(key + B);
                if (!hasA || !hasB) {
                    problems.add("target " + key.substring(PREFIX.length()) + " has no " + (hasA ? "lora_B" : hasB ? "lora_A" : "lora_A/lora_B") + " tensor in " + file);
                    continue;
                }
                Site site = e.getValue();
                int r = s.rank(patternName(site));
                int[][] shapes = shapes(site, r);
                StoredTensor a = st.get(key + A), b = st.get(key + B);
                if (checkShape(problems, a, file, shapes[0]) & checkShape(problems, b, file, shapes[1])) {
                    attach(site, load(a, first(site), loraDtype), load(b, first(site), loraDtype), r, s.scaling(patternName(site), r), dropout, plain++);
                    sites.add(site);
                }
            }
        }
        if (!problems.isEmpty()) {
            for (Site site : sites) detach(site);
            throw new IllegalArgumentException("cannot apply the LoRA adapter in " + dir + " (" + problems.size() + " problems):\n  " + String.join("\n  ", problems));
        }
        return new LoraAdapter(config, Collections.unmodifiableList(sites), dropout);
    }

    /** The trainable tensors (each once; gate and up of a fused expert share their A). */
    public List<Tensor> parameters() {
        Map<Tensor, Boolean> seen = new IdentityHashMap<>();
        List<Tensor> out = new ArrayList<>();
        for (Site site : sites)
            for (Linear l : linears(site))
                for (Tensor t : List.of(l.lora().a(), l.lora().b())) if (seen.put(t, true) == null) out.add(t);
        return out;
    }

    /** The adapter's tensors under PEFT's own names and layout, as {@link #save} writes them. */
    public Map<String, Tensor> peftTensors() { return fuse(t -> t); }

    /** The gradient of every adapter tensor under PEFT's names and layout (zeros where none was computed). */
    public Map<String, Tensor> gradients() {
        return fuse(t -> t.grad() != null ? t.grad() : Tensor.zeros(t.device(), t.dtype(), t.shape()));
    }

    /** Writes the adapter as PEFT does: the config as it was read and the weights in PEFT's layout. */
    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
            JSON.writeValue(dir.resolve(CONFIG).toFile(), config);
        } catch (IOException e) {
            throw new UncheckedIOException(dir.resolve(CONFIG) + ": cannot write", e);
        }
        Map<String, TensorData> data = new TreeMap<>();
        peftTensors().forEach((k, t) -> data.put(k, TensorData.of(t)));
        SafeTensors.write(dir.resolve(WEIGHTS), data, Map.of("format", "pt"));
    }

    private Map<String, Tensor> fuse(Function<Tensor, Tensor> pick) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (var g = Autograd.noGrad()) {
            for (Site site : sites)
                switch (site) {
                    case Plain p -> {
                        out.put(p.key() + A, pick.apply(p.linear().lora().a()));
                        out.put(p.key() + B, pick.apply(p.linear().lora().b()));
                    }
                    case Fused f -> {
                        List<Tensor> as = new ArrayList<>(), bs = new ArrayList<>();
                        for (List<Linear> expert : f.experts()) {
                            as.add(pick.apply(expert.getFirst().lora().a()));
                            bs.add(Tensor.cat(expert.stream().map(l -> pick.apply(l.lora().b())).toList(), 0));   // [out, r]
                        }
                        Tensor b = Tensor.stack(bs, 2);                                                        // [out, r, E]
                        out.put(f.key() + A, Tensor.cat(as, 0));                                               // [E·r, in]
                        out.put(f.key() + B, b.reshape(b.size(0), -1));                                        // [out, r·E]
                    }
                }
        }
        return out;
    }

    /**
     * A new adapter for training, initialised as PEFT does (A kaiming-uniform with a = √5, i.e. U(±1/√in); B zero, so
     * the model starts unchanged), in PEFT 0.21's layout: {@code gate_proj}/{@code up_proj}/{@code down_proj} among
     * {@code targetModules} become the fused experts' target parameters, gate_up with rank 2r and alpha 2·alpha
     * (scaling unchanged) as PEFT converts them. Only the attention projections and the experts are targeted this way.
     */
    public static LoraAdapter create(Thinker thinker, int r, double alpha, List<String> targetModules, long seed) {
        return create(thinker, new Spec(r, alpha, 0.0, false, targetModules, null), seed);
    }

    /**
     * A new adapter as {@link #create(Thinker, int, double, List, long)} makes one, with {@code spec}'s dropout, rsLoRA and
     * targets; A and B are f32 (master weights) whatever the base's dtype. A regex target adapts the Linears whose full
     * name it matches (PEFT's string form); the fused experts are reached only through the list's gate/up/down names.
     */
    public static LoraAdapter create(Thinker thinker, Spec spec, long seed) {
        int r = spec.r();
        double alpha = spec.alpha();
        List<String> targetModules = spec.targetRegex() != null ? List.of() : spec.targetList();
        ObjectNode c = JSON.createObjectNode();
        c.put("peft_type", "LORA").put("r", r).put("lora_dropout", spec.dropout()).put("bias", "none")
                .put("use_dora", false).put("use_rslora", spec.useRslora()).put("fan_in_fan_out", false).put("init_lora_weights", true)
                .put("inference_mode", false).putNull("task_type");
        putNumber(c, "lora_alpha", alpha);                               // PEFT's lora_alpha is an int: 16, not 16.0, when whole
        if (spec.targetRegex() != null) c.put("target_modules", spec.targetRegex());
        var modules = spec.targetRegex() != null ? JSON.createArrayNode() : c.putArray("target_modules");
        var parameters = c.putArray("target_parameters");
        var ranks = c.putObject("rank_pattern");
        var alphas = c.putObject("alpha_pattern");
        boolean gate = targetModules.contains("gate_proj"), up = targetModules.contains("up_proj");
        if (gate != up) throw new IllegalArgumentException("LoRA targets " + targetModules + ": gate_proj and up_proj share one fused parameter, name both or neither");
        if (gate) {
            parameters.add("gate_up_proj");
            ranks.put(".*\\.gate_up_proj", 2 * r);
            putNumber(alphas, ".*\\.gate_up_proj", 2 * alpha);
        }
        if (targetModules.contains("down_proj")) parameters.add("down_proj");
        for (String t : targetModules) if (!List.of("gate_proj", "up_proj", "down_proj").contains(t)) modules.add(t);
        Settings s = Settings.of(Path.of(CONFIG), c);
        var gen = new dev.jomni.tensor.Generator(seed);
        Lora.Dropout dropout = new Lora.Dropout(spec.dropout());
        int plain = 0;
        List<Site> sites = new ArrayList<>();
        for (Site site : sites(thinker, s).values()) {
            int rank = s.rank(patternName(site));
            int[][] shapes = shapes(site, rank);
            Tensor w = first(site).weight.value();
            double bound = 1 / Math.sqrt(shapes[0][1]);
            Tensor a = Tensor.rand(gen, DType.F32, shapes[0]).mul(2 * bound).sub(bound).to(w.device());
            attach(site, a, Tensor.zeros(w.device(), DType.F32, shapes[1]), rank, s.scaling(patternName(site), rank), dropout, plain++);
            sites.add(site);
        }
        if (sites.isEmpty())
            throw new IllegalArgumentException("LoRA targets " + (spec.targetRegex() != null ? "regex '" + spec.targetRegex() + "'" : targetModules)
                    + " name no Linear of the thinker");
        return new LoraAdapter(c, Collections.unmodifiableList(sites), dropout);
    }

    private static void putNumber(ObjectNode node, String field, double v) {
        if (v == Math.rint(v) && Math.abs(v) < Integer.MAX_VALUE) node.put(field, (int) v);
        else node.put(field, v);
    }

    /** What the config's targets name in this thinker, by PEFT key (without {@code .lora_A.weight}). */
    private static Map<String, Site> sites(Thinker thinker, Settings s) {
        Map<String, Site> expected = new LinkedHashMap<>();
        for (var e : thinker.modules().entrySet()) {
            String name = "thinker." + e.getKey();
            if (e.getValue() instanceof Linear l && s.targetsModule(name)) expected.put(PREFIX + name, new Plain(PREFIX + name, l));
            if (e.getValue() instanceof SparseMoe moe)
                for (int i = 0; i < s.targetParameters().size(); i++) {
                    // PEFT wraps the experts once per target parameter in the listed order: the first is innermost.
                    String key = PREFIX + name + ".experts" + ".base_layer".repeat(s.targetParameters().size() - 1 - i);
                    expected.put(key, new Fused(key, fusedParts(moe, s.targetParameters().get(i))));
                }
        }
        return expected;
    }

    /** The name rank_pattern and alpha_pattern are matched against: the module's, or the fused parameter's. */
    private static String patternName(Site site) {
        String key = site.key().substring(PREFIX.length());
        return switch (site) {
            case Plain p -> key;
            case Fused f -> key.substring(0, key.indexOf(".experts") + ".experts".length()) + "." + (f.experts().getFirst().size() == 2 ? "gate_up_proj" : "down_proj");
        };
    }

    /** {A shape, B shape} of a site at rank r in PEFT's layout: [r, in], [out, r]; fused [E·r, in], [out, r·E]. */
    private static int[][] shapes(Site site, int r) {
        int experts = site instanceof Fused f ? f.experts().size() : 1, out = 0;
        List<Linear> first = site instanceof Fused f ? f.experts().getFirst() : List.of(first(site));
        for (Linear l : first) out += l.weight.shape()[0];
        return new int[][] {{experts * r, first.getFirst().weight.shape()[1]}, {out, r * experts}};
    }

    private static Linear first(Site site) {
        return switch (site) {
            case Plain p -> p.linear();
            case Fused f -> f.experts().getFirst().getFirst();
        };
    }

    private static void attach(Site site, Tensor a, Tensor b, int r, double scaling, Lora.Dropout dropout, int index) {
        switch (site) {
            case Plain p -> p.linear().lora(new Lora(a, b, scaling, dropout, index));
            case Fused f -> attachFused(f, a, b, r, scaling);
        }
    }

    private static void attachFused(Fused f, Tensor a, Tensor b, int r, double scaling) {
        int experts = f.experts().size();
        try (var g = Autograd.noGrad()) {
            Tensor b3 = b.reshape(b.size(0), r, experts);                      // [out, r, E], expert fastest
            for (int e = 0; e < experts; e++) {
                Tensor ae = a.narrow(0, (long) e * r, r).copy();               // [r, in], shared by gate and up
                Tensor be = b3.narrow(2, e, 1).squeeze(2);                     // [out, r]
                int row = 0;
                for (Linear l : f.experts().get(e)) {
                    int rows = l.weight.shape()[0];
                    l.lora(new Lora(ae, be.narrow(0, row, rows).copy(), scaling));
                    row += rows;
                }
            }
        }
    }

    private static List<List<Linear>> fusedParts(SparseMoe moe, String parameter) {
        List<List<Linear>> out = new ArrayList<>();
        for (SwiGlu e : moe.experts.items())
            out.add(switch (parameter) {
                case "gate_up_proj" -> List.of(e.gateProj, e.upProj);
                case "down_proj" -> List.of(e.downProj);
                default -> throw new IllegalStateException(parameter);         // Settings admits only these two
            });
        return out;
    }

    private static List<Linear> linears(Site site) {
        return switch (site) {
            case Plain p -> List.of(p.linear());
            case Fused f -> f.experts().stream().flatMap(List::stream).toList();
        };
    }

    private static void detach(Site site) { for (Linear l : linears(site)) l.lora(null); }

    private static boolean checkShape(List<String> problems, StoredTensor t, String file, int[] shape) {
        long[] want = {shape[0], shape[1]};
        if (Arrays.equals(t.shape(), want)) return true;
        problems.add(t.name() + ": expected " + Arrays.toString(want) + ", found " + Arrays.toString(t.shape()) + " in " + file);
        return false;
    }

    /** A stored tensor as an owned leaf in the dtype and on the device of the layer it adapts. */
    private static Tensor load(StoredTensor t, Linear like, DType dtype) {
        Tensor w = like.weight.value();
        try (var g = Autograd.noGrad()) {
            Tensor stored = t.data().toTensor(), out = stored.to(dtype != null ? dtype : w.dtype()).to(w.device());
            return out == stored ? stored.copy() : out;                          // never keep a view of the mapped file
        }
    }

    private static ObjectNode readConfig(Path file) {
        try {
            if (JSON.readTree(file.toFile()) instanceof ObjectNode o) return o;
            throw new IllegalArgumentException(file + ": not a JSON object");
        } catch (JacksonException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new IllegalArgumentException(file + (Files.exists(file) ? ": cannot read: " + e : ": no such file"));
        }
    }

    /** The fields of adapter_config.json that decide what is computed; anything else that would change it is refused. */
    private record Settings(int r, double alpha, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern,
                            List<String> targetList, Pattern targetRegex, List<String> targetParameters, double dropout, boolean rslora) {

        static Settings of(Path file, ObjectNode c) {
            require(file, c, "peft_type", "LORA", "only LoRA adapters are read");
            require(file, c, "bias", "none", "bias terms are not trained here");
            for (String flag : List.of("use_dora", "lora_bias", "fan_in_fan_out", "use_qalora"))
                if (c.path(flag).asBoolean(false)) refuse(file, flag + "=true");
            for (String field : List.of("modules_to_save", "layers_to_transform", "layers_pattern", "layer_replication",
                    "exclude_modules", "trainable_token_indices", "alora_invocation_tokens", "use_bdlora"))
                if (present(c.get(field))) refuse(file, field + "=" + c.get(field));
            if (!c.path("r").canConvertToInt() || c.path("r").asInt() <= 0) refuse(file, "r=" + c.get("r") + " (a positive integer is required)");
            if (!c.path("lora_alpha").isNumber()) refuse(file, "lora_alpha=" + c.get("lora_alpha") + " (a number is required)");
            Map<String, Integer> ranks = new LinkedHashMap<>();
            c.path("rank_pattern").properties().forEach(e -> ranks.put(e.getKey(), e.getValue().asInt()));
            Map<String, Double> alphas = new LinkedHashMap<>();
            c.path("alpha_pattern").properties().forEach(e -> alphas.put(e.getKey(), e.getValue().asDouble()));
            JsonNode t = c.get("target_modules");
            List<String> list = new ArrayList<>();
            Pattern regex = null;
            if (t != null && t.isTextual()) {
                if (t.asText().equals("all-linear")) refuse(file, "target_modules=\"all-linear\" (list the modules)");
                regex = Pattern.compile(t.asText());
            } else if (t != null && t.isArray()) t.forEach(n -> list.add(n.asText()));
            List<String> params = new ArrayList<>();
            c.path("target_parameters").forEach(n -> params.add(n.asText()));
            for (String p : params)
                if (!p.equals("gate_up_proj") && !p.equals("down_proj")) refuse(file, "target_parameters entry \"" + p + "\" (only the experts' gate_up_proj and down_proj)");
            double dropout = c.path("lora_dropout").asDouble(0.0);
            if (dropout < 0 || dropout >= 1) refuse(file, "lora_dropout=" + dropout + " (outside [0, 1))");
            return new Settings(c.get("r").asInt(), c.get("lora_alpha").asDouble(), ranks, alphas, list, regex, params, dropout,
                    c.path("use_rslora").asBoolean(false));
        }

        /** PEFT's scaling: alpha / r, or alpha / √r with use_rslora. */
        double scaling(String name, int rank) {
            double a = alpha(name);
            return rslora ? a / Math.sqrt(rank) : a / rank;
        }

        /** PEFT's rule: a list entry matches the whole name or its last components; a string is a full-match regex. */
        boolean targetsModule(String name) {
            if (targetRegex != null) return targetRegex.matcher(name).matches();
            for (String t : targetList) if (name.equals(t) || name.endsWith("." + t)) return true;
            return false;
        }

        int rank(String name) {
            for (var e : rankPattern.entrySet()) if (patternMatches(e.getKey(), name)) return e.getValue();
            return r;
        }

        double alpha(String name) {
            for (var e : alphaPattern.entrySet()) if (patternMatches(e.getKey(), name)) return e.getValue();
            return alpha;
        }

        /** PEFT's get_pattern_key: the key, a regex, matches the name's tail after a dot. */
        private static boolean patternMatches(String key, String name) {
            return key.equals(name) || Pattern.compile("(.*\\.)?(" + key + ")").matcher(name).matches();
        }

        private static boolean present(JsonNode n) {
            return n != null && !n.isNull() && !(n.isContainerNode() && n.isEmpty()) && !(n.isBoolean() && !n.asBoolean());
        }

        private static void require(Path file, ObjectNode c, String field, String value, String why) {
            if (!c.path(field).asText("").equals(value)) refuse(file, field + "=" + c.get(field) + " (" + why + ")");
        }

        private static void refuse(Path file, String what) {
            throw new IllegalArgumentException(file + ": " + what + " is not supported");
        }
    }
}

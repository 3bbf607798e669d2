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
    /** Each adapted Linear's update, kept while detached so the adapter can be switched on and off per batch. */
    private final Map<Linear, Lora> loras = new IdentityHashMap<>();

    private LoraAdapter(ObjectNode config, List<Site> sites) {
        this.config = config;
        this.sites = sites;
        for (Site site : sites) for (Linear l : linears(site)) loras.put(l, l.lora());
    }

    /**
     * Takes the adapter's updates off the thinker's Linears, keeping them here: the base model computes alone
     * again, and {@link #attach} puts them back. Several adapters can so stay resident on one base, one attached
     * at a time (the generation engine attaches each for the rows that asked for it). Idempotent.
     */
    public void detach() {
        for (Linear l : loras.keySet()) if (l.lora() == loras.get(l)) l.lora(null);
    }

    /** Puts the updates back on the Linears; refused while another update sits on one of them. */
    public void attach() {
        for (var e : loras.entrySet()) {
            Lora current = e.getKey().lora();
            if (current != null && current != e.getValue())
                throw new IllegalStateException("LoRA attach: " + e.getKey().weight.name() + " already carries another adapter's update; detach it first");
        }
        for (var e : loras.entrySet()) e.getKey().lora(e.getValue());
    }

    /** Whether the updates are on the thinker's Linears. */
    public boolean isAttached() {
        for (var e : loras.entrySet()) if (e.getKey().lora() != e.getValue()) return false;
        return true;
    }

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
    public static LoraAdapter apply(Path dir, Thinker thinker) {
        Path configFile = dir.resolve(CONFIG), weightsFile = dir.resolve(WEIGHTS);
        ObjectNode config = readConfig(configFile);
        Settings s = Settings.of(configFile, config);
        if (!Files.isRegularFile(weightsFile))
            throw new IllegalArgumentException(weightsFile + ": no such file"
                    + (Files.exists(dir.resolve("adapter_model.bin")) ? " (adapter_model.bin, PyTorch's pickle format, is not read: save with safe_serialization)" : ""));

        Map<String, Site> expected = sites(thinker, s);
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
                    attach(site, load(a, first(site)), load(b, first(site)), r, s.alpha(patternName(site)) / r);
                    sites.add(site);
                }
            }
        }
        if (!problems.isEmpty()) {
            for (Site site : sites) detach(site);
            throw new IllegalArgumentException("cannot apply the LoRA adapter in " + dir + " (" + problems.size() + " problems):\n  " + String.join("\n  ", problems));
        }
        return new LoraAdapter(config, Collections.unmodifiableList(sites));
    }

    /** The trainable tensors (each once; gate and up of a fused expert share their A). */
    public List<Tensor> parameters() {
        Map<Tensor, Boolean> seen = new IdentityHashMap<>();
        List<Tensor> out = new ArrayList<>();
        for (Site site : sites)
            for (Linear l : linears(site))
                for (Tensor t : List.of(loras.get(l).a(), loras.get(l).b())) if (seen.put(t, true) == null) out.add(t);
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
                        out.put(p.key() + A, pick.apply(loras.get(p.linear()).a()));
                        out.put(p.key() + B, pick.apply(loras.get(p.linear()).b()));
                    }
                    case Fused f -> {
                        List<Tensor> as = new ArrayList<>(), bs = new ArrayList<>();
                        for (List<Linear> expert : f.experts()) {
                            as.add(pick.apply(loras.get(expert.getFirst()).a()));
                            bs.add(Tensor.cat(expert.stream().map(l -> pick.apply(loras.get(l).b())).toList(), 0));   // [out, r]
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
        ObjectNode c = JSON.createObjectNode();
        c.put("peft_type", "LORA").put("r", r).put("lora_alpha", alpha).put("lora_dropout", 0.0).put("bias", "none")
                .put("use_dora", false).put("use_rslora", false).put("fan_in_fan_out", false).put("init_lora_weights", true)
                .put("inference_mode", false).putNull("task_type");
        var modules = c.putArray("target_modules");
        var parameters = c.putArray("target_parameters");
        var ranks = c.putObject("rank_pattern");
        var alphas = c.putObject("alpha_pattern");
        boolean gate = targetModules.contains("gate_proj"), up = targetModules.contains("up_proj");
        if (gate != up) throw new IllegalArgumentException("LoRA targets " + targetModules + ": gate_proj and up_proj share one fused parameter, name both or neither");
        if (gate) {
            parameters.add("gate_up_proj");
            ranks.put(".*\\.gate_up_proj", 2 * r);
            alphas.put(".*\\.gate_up_proj", 2 * alpha);
        }
        if (targetModules.contains("down_proj")) parameters.add("down_proj");
        for (String t : targetModules) if (!List.of("gate_proj", "up_proj", "down_proj").contains(t)) modules.add(t);
        Settings s = Settings.of(Path.of(CONFIG), c);
        var gen = new dev.jomni.tensor.Generator(seed);
        List<Site> sites = new ArrayList<>();
        for (Site site : sites(thinker, s).values()) {
            int rank = s.rank(patternName(site));
            int[][] shapes = shapes(site, rank);
            Tensor w = first(site).weight.value();
            double bound = 1 / Math.sqrt(shapes[0][1]);
            Tensor a = Tensor.rand(gen, DType.F32, shapes[0]).mul(2 * bound).sub(bound).to(w.dtype()).to(w.device());
            attach(site, a, Tensor.zeros(w.device(), w.dtype(), shapes[1]), rank, s.alpha(patternName(site)) / rank);
            sites.add(site);
        }
        if (sites.isEmpty()) throw new IllegalArgumentException("LoRA targets " + targetModules + " name no Linear of the thinker");
        return new LoraAdapter(c, Collections.unmodifiableList(sites));
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

    private static void attach(Site site, Tensor a, Tensor b, int r, double scaling) {
        switch (site) {
            case Plain p -> p.linear().lora(new Lora(a, b, scaling));
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
    private static Tensor load(StoredTensor t, Linear like) {
        Tensor w = like.weight.value();
        try (var g = Autograd.noGrad()) {
            Tensor stored = t.data().toTensor(), out = stored.to(w.dtype()).to(w.device());
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
                            List<String> targetList, Pattern targetRegex, List<String> targetParameters) {

        static Settings of(Path file, ObjectNode c) {
            require(file, c, "peft_type", "LORA", "only LoRA adapters are read");
            require(file, c, "bias", "none", "bias terms are not trained here");
            for (String flag : List.of("use_dora", "use_rslora", "lora_bias", "fan_in_fan_out", "use_qalora"))
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
            return new Settings(c.get("r").asInt(), c.get("lora_alpha").asDouble(), ranks, alphas, list, regex, params);
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

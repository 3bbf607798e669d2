package dev.jomni.omni.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.Linear;
import dev.jomni.nn.Lora;
import dev.jomni.nn.Parameter;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.StoredTensor;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
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
 * thinker's Linears as {@link Lora} updates and to its stacked experts as {@link MoeExperts.Lora}; the base
 * weights stay as loaded.
 *
 * <p>Two layouts of the MoE experts exist. PEFT ≥ 0.17 with transformers 5 (fused experts) stores one pair per
 * layer and fused parameter: {@code mlp.experts[.base_layer…].lora_A.weight} [E·r, in], expert-major (expert e
 * owns rows e·r … e·r+r−1), and {@code lora_B.weight} [out, r·E] with the expert index fastest (column j is
 * expert j mod E, rank j div E); gate_up's out axis holds gate rows then up rows, so gate and up share expert
 * e's A. The experts hold them as [E, r, in] and [E, out, r] (the op's layout; A is the same memory). Older
 * adapters (transformers 4) name each expert's Linear, {@code mlp.experts.E.gate_proj.lora_A.weight}; they are
 * converted on reading: gate and up stack into one rank r_gate + r_up update (A rows of gate then up, B
 * block-diagonal, each B scaled by its scaling over the stacked one), ranks padded with zero rows to the largest
 * expert's, and the config rewritten to PEFT 0.21's target_parameters, so {@link #save} writes the new layout.
 *
 * <p>lora_dropout acts on the Linear targets only. The stacked experts' update is computed inside the
 * {@link MoeExperts} op, which takes one input for the base projection and the LoRA path, so it cannot see a
 * dropped-out copy of x: the experts train without dropout, and {@link #dropoutNote} says so whenever an adapter
 * with lora_dropout &gt; 0 targets them. (PEFT's ParamWrapper, which adapts the same stacked parameters, refuses
 * lora_dropout != 0 outright for the same reason: dropout(x) cannot be factored out of W + ΔW.)
 */
public final class LoraAdapter {
    public static final String CONFIG = "adapter_config.json", WEIGHTS = "adapter_model.safetensors";
    private static final String PREFIX = "base_model.model.", A = ".lora_A.weight", B = ".lora_B.weight";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern PER_EXPERT = Pattern.compile("\\.mlp\\.experts\\.\\d+\\.(gate_proj|up_proj|down_proj)\\.lora_[AB]\\.weight$");

    private final ObjectNode config;
    private final List<Site> sites;
    // Each site's update as read or created, kept here while detached so the adapter can be switched on and off
    // per batch: a Lora on each adapted Linear, a MoeExperts.Lora on each stacked experts parameter.
    private final Map<Plain, Lora> loras = new LinkedHashMap<>();
    private final Map<Fused, MoeExperts.Lora> stacked = new LinkedHashMap<>();
    private final Lora.Dropout dropout;

    private LoraAdapter(ObjectNode config, List<Site> sites, Lora.Dropout dropout) {
        this.config = config;
        this.sites = sites;
        this.dropout = dropout;
        for (Site site : sites)
            switch (site) {
                case Plain p -> loras.put(p, p.linear().lora());
                case Fused f -> stacked.put(f, lora(f));
                case PerExpert p -> throw new IllegalStateException("converted when read");
            }
    }

    /**
     * Takes the adapter's updates off the thinker's Linears and stacked experts, keeping them here: the base model
     * computes alone again, and {@link #attach} puts them back. Several adapters can so stay resident on one base,
     * one attached at a time (the generation engine attaches each for the rows that asked for it). Idempotent.
     */
    public void detach() {
        for (var e : loras.entrySet()) if (e.getKey().linear().lora() == e.getValue()) e.getKey().linear().lora(null);
        for (var e : stacked.entrySet()) if (lora(e.getKey()) == e.getValue()) setLora(e.getKey(), null);
    }

    /** Puts the updates back; refused, changing nothing, while another update sits on one of the sites. */
    public void attach() {
        for (var e : loras.entrySet()) {
            Lora current = e.getKey().linear().lora();
            if (current != null && current != e.getValue())
                throw new IllegalStateException("LoRA attach: " + e.getKey().linear().weight.name() + " already carries another adapter's update; detach it first");
        }
        for (var e : stacked.entrySet()) {
            MoeExperts.Lora current = lora(e.getKey());
            if (current != null && current != e.getValue())
                throw new IllegalStateException("LoRA attach: " + patternName(e.getKey()) + " already carries another adapter's update; detach it first");
        }
        for (var e : loras.entrySet()) e.getKey().linear().lora(e.getValue());
        for (var e : stacked.entrySet()) setLora(e.getKey(), e.getValue());
    }

    /** Whether the updates are on the thinker's Linears and experts. */
    public boolean isAttached() {
        for (var e : loras.entrySet()) if (e.getKey().linear().lora() != e.getValue()) return false;
        for (var e : stacked.entrySet()) if (lora(e.getKey()) != e.getValue()) return false;
        return true;
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

    /** The dropout shared by this adapter's Linear targets (the stacked experts take none: see the class comment), to switch on for training. */
    public Lora.Dropout dropout() { return dropout; }

    /**
     * Null, or the sentence to show a trainer's user when lora_dropout &gt; 0 and the adapter targets stacked experts:
     * the dropout applies to the Linear targets only, the experts' update trains without it.
     */
    public String dropoutNote() {
        long experts = sites.stream().filter(x -> x instanceof Fused).count(), linears = sites.size() - experts;
        if (dropout.p() == 0 || experts == 0) return null;
        return "note: lora_dropout " + dropout.p() + " applies to the " + linears + " Linear target(s) only; the " + experts
                + " stacked expert parameter(s) (mlp.experts gate_up_proj/down_proj) train without dropout: the MoeExperts op computes"
                + " their LoRA term from the same input as the base projection and has no dropout input. PEFT's ParamWrapper refuses"
                + " lora_dropout != 0 on these parameters; to load the adapter in PEFT, set lora_dropout to 0 in " + CONFIG
                + " (dropout changes nothing at inference).";
    }

    /** The adapted sites counted per kind: {@code "model …q_proj"} / {@code "audio_tower …q_proj"} / {@code "model …experts.gate_up_proj"}. */
    public Map<String, Integer> matches() {
        Map<String, Integer> out = new TreeMap<>();
        for (Site site : sites) {
            String name = site.key().substring(PREFIX.length() + "thinker.".length());
            String part = name.substring(0, name.indexOf('.') < 0 ? name.length() : name.indexOf('.'));
            String kind = switch (site) {
                case Plain p -> name.substring(name.lastIndexOf('.') + 1);
                case Fused f -> "experts." + f.parameter();
                case PerExpert p -> throw new IllegalStateException("converted when read");
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

    /** One stacked parameter of a layer's experts, "gate_up_proj" or "down_proj", in PEFT 0.21's layout. */
    private record Fused(String key, SparseMoe.Experts experts, String parameter) implements Site {
        boolean gateUp() { return parameter.equals("gate_up_proj"); }
    }

    /** One expert's gate_proj, up_proj or down_proj in the older per-expert layout; converted into a Fused site. */
    private record PerExpert(String key, SparseMoe.Experts experts, int expert, String proj) implements Site {}

    /** A per-expert update as read: A [r, in], B [out, r]. */
    private record Piece(String proj, Tensor a, Tensor b, double scaling) {}

    /**
     * Reads the adapter in {@code dir} and attaches it to {@code thinker} in the thinker's dtype and device.
     * Every tensor that matches no target, every target without tensors and every wrong shape is reported at once.
     */
    public static LoraAdapter apply(Path dir, Thinker thinker) { return apply(dir, thinker, null); }

    /**
     * As {@link #apply(Path, Thinker)}, with the adapter's tensors in {@code loraDtype} (f32 master weights for
     * training) instead of the adapted layers' dtype when it is non-null; they are cast to the compute dtype in use.
     */
    public static LoraAdapter apply(Path dir, Thinker thinker, DType loraDtype) {
        Path configFile = dir.resolve(CONFIG), weightsFile = dir.resolve(WEIGHTS);
        ObjectNode config = readConfig(configFile);
        Settings s = Settings.of(configFile, config);
        if (!Files.isRegularFile(weightsFile))
            throw new IllegalArgumentException(weightsFile + ": no such file"
                    + (Files.exists(dir.resolve("adapter_model.bin")) ? " (adapter_model.bin, PyTorch's pickle format, is not read: save with safe_serialization)" : ""));

        Lora.Dropout dropout = new Lora.Dropout(s.dropout());
        int plain = 0;                                                       // dropout site index: the Linear's place among the Linear targets
        List<String> problems = new ArrayList<>();
        List<Site> sites = new ArrayList<>();
        Map<SparseMoe.Experts, Map<Integer, List<Piece>>> gateUps = new LinkedHashMap<>(), downs = new LinkedHashMap<>();
        String file = weightsFile.getFileName().toString();
        try (var st = SafeTensors.open(weightsFile)) {
            boolean perExpert = st.names().stream().anyMatch(n -> PER_EXPERT.matcher(n).find());
            if (perExpert && !s.targetParameters().isEmpty())
                throw new IllegalArgumentException(dir + ": the adapter has per-expert tensors and target_parameters " + s.targetParameters()
                        + "; it mixes the two layouts of the experts");
            Map<String, Site> expected = sites(thinker, s, perExpert);
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
                if (!(checkShape(problems, a, file, shapes[0]) & checkShape(problems, b, file, shapes[1]))) continue;
                double scaling = s.scaling(patternName(site), r);
                Parameter like = base(site);
                switch (site) {
                    case PerExpert p -> (p.proj().equals("down_proj") ? downs : gateUps).computeIfAbsent(p.experts(), x -> new TreeMap<>())
                            .computeIfAbsent(p.expert(), x -> new ArrayList<>()).add(new Piece(p.proj(), load(a, like, loraDtype), load(b, like, loraDtype), scaling));
                    default -> {
                        attach(site, load(a, like, loraDtype), load(b, like, loraDtype), r, scaling, dropout, site instanceof Plain ? plain++ : -1);
                        sites.add(site);
                    }
                }
            }
        }
        if (!problems.isEmpty()) {
            for (Site site : sites) detach(site);
            throw new IllegalArgumentException("cannot apply the LoRA adapter in " + dir + " (" + problems.size() + " problems):\n  " + String.join("\n  ", problems));
        }
        if (!gateUps.isEmpty() || !downs.isEmpty()) config = convert(thinker, config, s.rslora(), gateUps, downs, sites);
        return new LoraAdapter(config, Collections.unmodifiableList(sites), dropout);
    }

    /**
     * The older per-expert pieces stacked into each layer's experts, and the config rewritten to name them as
     * PEFT 0.21 does: target_parameters (bare names when every MoE layer has them, else full names), and per layer
     * rank_pattern / alpha_pattern entries giving the stacked rank R and alpha = scaling · R (scaling · √R with use_rslora).
     */
    private static ObjectNode convert(Thinker thinker, ObjectNode original, boolean rslora, Map<SparseMoe.Experts, Map<Integer, List<Piece>>> gateUps,
                                      Map<SparseMoe.Experts, Map<Integer, List<Piece>>> downs, List<Site> sites) {
        Map<SparseMoe.Experts, String> names = new LinkedHashMap<>();
        thinker.modules().forEach((n, m) -> { if (m instanceof SparseMoe.Experts x) names.put(x, "thinker." + n); });
        ObjectNode c = original.deepCopy();
        var params = c.putArray("target_parameters");
        ObjectNode ranks = JSON.createObjectNode(), alphas = JSON.createObjectNode();
        Map<String, MoeExperts.Lora> stacked = new LinkedHashMap<>();
        for (String parameter : List.of("gate_up_proj", "down_proj")) {
            var groups = parameter.equals("gate_up_proj") ? gateUps : downs;
            if (groups.isEmpty()) continue;
            boolean everyLayer = groups.size() == names.size();
            for (var g : groups.entrySet()) {
                String name = names.get(g.getKey()) + "." + parameter;
                MoeExperts.Lora l = stack(g.getKey(), parameter, g.getValue());
                stacked.put(name, l);
                if (!everyLayer) params.add(name);
                ranks.put(name, l.rank());
                alphas.put(name, l.scaling() * (rslora ? Math.sqrt(l.rank()) : l.rank()));
            }
            if (everyLayer) params.add(parameter);
        }
        c.path("rank_pattern").properties().forEach(e -> ranks.set(e.getKey(), e.getValue()));
        c.path("alpha_pattern").properties().forEach(e -> alphas.set(e.getKey(), e.getValue()));
        c.set("rank_pattern", ranks);
        c.set("alpha_pattern", alphas);
        for (Site site : sites(thinker, Settings.of(Path.of(CONFIG), c), false).values())
            if (site instanceof Fused f && stacked.containsKey(names.get(f.experts()) + "." + f.parameter())) {
                setLora(f, stacked.get(names.get(f.experts()) + "." + f.parameter()));
                sites.add(f);
            }
        return c;
    }

    /** One stacked update from per-expert pieces: A [E, R, in] (each expert's A rows in order, zero rows after), B [E, out, R] block-placed. */
    private static MoeExperts.Lora stack(SparseMoe.Experts experts, String parameter, Map<Integer, List<Piece>> byExpert) {
        int count = experts.count(), rank = 0;
        int[] gu = experts.gateUpProj.shape(), dn = experts.downProj.shape();
        boolean gateUp = parameter.equals("gate_up_proj");
        int in = gateUp ? gu[2] : dn[2], out = gateUp ? gu[1] : dn[1];
        for (List<Piece> ps : byExpert.values()) rank = Math.max(rank, ps.stream().mapToInt(p -> p.a().size(0)).sum());
        Piece first = byExpert.values().iterator().next().getFirst();
        double scaling = first.scaling();
        Tensor like = first.a();
        try (var g = Autograd.noGrad()) {
            List<Tensor> as = new ArrayList<>(), bs = new ArrayList<>();
            for (int e = 0; e < count; e++) {
                Tensor a = Tensor.zeros(like.device(), like.dtype(), rank, in), b = Tensor.zeros(like.device(), like.dtype(), out, rank);
                int col = 0;
                for (Piece p : byExpert.getOrDefault(e, List.of())) {
                    int r = p.a().size(0), row = p.proj().equals("up_proj") ? out / 2 : 0;
                    a.narrow(0, col, r).assign(p.a());
                    b.narrow(0, row, p.b().size(0)).narrow(1, col, r).assign(p.scaling() == scaling ? p.b() : p.b().mul(p.scaling() / scaling));
                    col += r;
                }
                as.add(a);
                bs.add(b);
            }
            return new MoeExperts.Lora(Tensor.stack(as, 0), Tensor.stack(bs, 0), scaling);
        }
    }

    /** The trainable tensors (each once; gate and up of the stacked experts share their A). */
    public List<Tensor> parameters() {
        List<Tensor> out = new ArrayList<>();
        for (Site site : sites)
            switch (site) {
                case Plain p -> out.addAll(List.of(loras.get(p).a(), loras.get(p).b()));
                case Fused f -> out.addAll(List.of(stacked.get(f).a(), stacked.get(f).b()));
                case PerExpert p -> throw new IllegalStateException("converted when read");
            }
        return out;
    }

    /** The adapter's tensors under PEFT's own names and layout, as {@link #save} writes them. */
    public Map<String, Tensor> peftTensors() { return fuse(t -> t); }

    /** The gradient of every adapter tensor under PEFT's names and layout (zeros where none was computed). */
    public Map<String, Tensor> gradients() {
        return fuse(t -> t.grad() != null ? t.grad() : Tensor.zeros(t.device(), t.dtype(), t.shape()));
    }

    /**
     * The adapted weights with this adapter's update merged in, computed in f32, by their names in the thinker's tree
     * ({@code thinker.…}): a Linear's {@code ….weight} W + s·B·A [out, in]; a layer's stacked experts
     * {@code ….mlp.experts.gate_up_proj} [E, 2I, H] and {@code ….mlp.experts.down_proj} [E, H, I] with W[e] + s·B[e]·A[e]
     * for every expert e (PEFT's ParamWrapper.get_delta_weight, in the op's layout). Whether the adapter is attached now
     * does not matter. The experts' names are transformers 5's; a checkpoint in the release's per-expert layout names
     * each expert's slice of them (StackedExperts).
     */
    public Map<String, Tensor> mergedWeights() {
        Map<String, Tensor> out = new TreeMap<>();
        try (var g = Autograd.noGrad()) {
            for (Site site : sites)
                switch (site) {
                    case Plain p -> {
                        Lora l = loras.get(p);
                        Tensor a = l.a().to(DType.F32), b = l.b().to(DType.F32);                             // [r, in], [out, r]
                        out.put(p.key().substring(PREFIX.length()) + ".weight", p.linear().weight.dense().to(DType.F32).add(b.matmul(a).mul(l.scaling())));
                    }
                    case Fused f -> {
                        MoeExperts.Lora l = stacked.get(f);
                        Tensor a = l.a().to(DType.F32), b = l.b().to(DType.F32);                             // [E, r, in], [E, out, r]
                        Tensor w = (f.gateUp() ? f.experts().gateUpProj : f.experts().downProj).dense().to(DType.F32);   // [E, out, in]
                        out.put(patternName(f), w.add(b.matmul(a).mul(l.scaling())));
                    }
                    case PerExpert p -> throw new IllegalStateException("converted when read");
                }
        }
        return out;
    }

    /** Writes the adapter as PEFT does: the config as it was read (rewritten if converted) and the weights in PEFT's layout. */
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
                        out.put(p.key() + A, pick.apply(loras.get(p).a()));
                        out.put(p.key() + B, pick.apply(loras.get(p).b()));
                    }
                    case Fused f -> {
                        Tensor a = pick.apply(stacked.get(f).a()), b = pick.apply(stacked.get(f).b());   // [E, r, in], [E, out, r]
                        out.put(f.key() + A, a.reshape(-1, a.size(2)));                                    // [E·r, in]
                        out.put(f.key() + B, b.permute(1, 2, 0).contiguous().reshape(b.size(1), -1));       // [out, r·E], expert fastest
                    }
                    case PerExpert p -> throw new IllegalStateException("converted when read");
                }
        }
        return out;
    }

    private static MoeExperts.Lora lora(Fused f) { return f.gateUp() ? f.experts().gateUpLora : f.experts().downLora; }

    private static void setLora(Fused f, MoeExperts.Lora l) {
        if (f.gateUp()) f.experts().gateUpLora = l;
        else f.experts().downLora = l;
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
     * targets; A and B are f32 (master weights) whatever the base's dtype, cast to the compute dtype in each forward. A
     * regex target adapts the Linears whose full name it matches (PEFT's string form); the stacked experts are reached
     * only through the list's gate/up/down names. With rsLoRA, gate_up's alpha is √2·alpha, so that its scaling
     * √2·alpha/√(2r) is still gate's and up's alpha/√r.
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
            putNumber(alphas, ".*\\.gate_up_proj", spec.useRslora() ? Math.sqrt(2) * alpha : 2 * alpha);
        }
        if (targetModules.contains("down_proj")) parameters.add("down_proj");
        for (String t : targetModules) if (!List.of("gate_proj", "up_proj", "down_proj").contains(t)) modules.add(t);
        Settings s = Settings.of(Path.of(CONFIG), c);
        var gen = new dev.jomni.tensor.Generator(seed);
        Lora.Dropout dropout = new Lora.Dropout(spec.dropout());
        int plain = 0;
        List<Site> sites = new ArrayList<>();
        for (Site site : sites(thinker, s, false).values()) {
            int rank = s.rank(patternName(site));
            int[][] shapes = shapes(site, rank);
            Parameter w = base(site);
            double bound = 1 / Math.sqrt(shapes[0][1]);
            Tensor a = Tensor.rand(gen, DType.F32, shapes[0]).mul(2 * bound).sub(bound).to(w.device());
            attach(site, a, Tensor.zeros(w.device(), DType.F32, shapes[1]), rank, s.scaling(patternName(site), rank), dropout,
                    site instanceof Plain ? plain++ : -1);
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

    /**
     * What the config's targets name in this thinker, by PEFT key (without {@code .lora_A.weight}); the experts'
     * per-expert Linears of the older layout only when {@code perExpert} (the file holds such tensors).
     */
    private static Map<String, Site> sites(Thinker thinker, Settings s, boolean perExpert) {
        Map<String, Site> expected = new LinkedHashMap<>();
        for (var e : thinker.modules().entrySet()) {
            String name = "thinker." + e.getKey();
            if (e.getValue() instanceof Linear l && s.targetsModule(name)) expected.put(PREFIX + name, new Plain(PREFIX + name, l));
            if (e.getValue() instanceof SparseMoe.Experts experts) {
                List<String> matched = new ArrayList<>();
                for (String t : s.targetParameters())
                    for (String p : List.of("gate_up_proj", "down_proj"))
                        if (Settings.suffixMatches(name + "." + p, t) && !matched.contains(p)) matched.add(p);
                for (int i = 0; i < matched.size(); i++) {
                    // PEFT wraps the experts once per target parameter in the listed order: the first is innermost.
                    String key = PREFIX + name + ".base_layer".repeat(matched.size() - 1 - i);
                    expected.put(key, new Fused(key, experts, matched.get(i)));
                }
                if (perExpert)
                    for (int x = 0; x < experts.count(); x++)
                        for (String proj : List.of("gate_proj", "up_proj", "down_proj")) {
                            String m = name + "." + x + "." + proj;
                            if (s.targetsModule(m)) expected.put(PREFIX + m, new PerExpert(PREFIX + m, experts, x, proj));
                        }
            }
        }
        return expected;
    }

    /** The name rank_pattern and alpha_pattern are matched against: the module's, or the fused parameter's. */
    private static String patternName(Site site) {
        String key = site.key().substring(PREFIX.length());
        return switch (site) {
            case Plain p -> key;
            case PerExpert p -> key;
            case Fused f -> key.substring(0, key.indexOf(".experts") + ".experts".length()) + "." + f.parameter();
        };
    }

    /** {A shape, B shape} of a site at rank r in PEFT's layout: [r, in], [out, r]; fused [E·r, in], [out, r·E]. */
    private static int[][] shapes(Site site, int r) {
        return switch (site) {
            case Plain p -> {
                int[] w = p.linear().weight.shape();
                yield new int[][] {{r, w[1]}, {w[0], r}};
            }
            case Fused f -> {
                int[] w = f.gateUp() ? f.experts().gateUpProj.shape() : f.experts().downProj.shape();   // [E, out, in]
                yield new int[][] {{w[0] * r, w[2]}, {w[1], r * w[0]}};
            }
            case PerExpert p -> {
                int[] gu = p.experts().gateUpProj.shape();                                             // [E, 2I, H]
                yield p.proj().equals("down_proj") ? new int[][] {{r, gu[1] / 2}, {gu[2], r}} : new int[][] {{r, gu[2]}, {gu[1] / 2, r}};
            }
        };
    }

    /** The weight a site adapts (for the dtype and device of its A and B; dense or NF4). */
    private static Parameter base(Site site) {
        return switch (site) {
            case Plain p -> p.linear().weight;
            case Fused f -> f.experts().gateUpProj;
            case PerExpert p -> p.experts().gateUpProj;
        };
    }

    /**
     * Attaches A and B given in PEFT's layout; a Linear's update gets {@code dropout} with site {@code index} (its masks'
     * key), the stacked experts' none (see the class comment).
     */
    private static void attach(Site site, Tensor a, Tensor b, int r, double scaling, Lora.Dropout dropout, int index) {
        switch (site) {
            case Plain p -> p.linear().lora(new Lora(a, b, scaling, dropout, index));
            case Fused f -> {
                int experts = f.experts().count();
                MoeExperts.Lora l;
                try (var g = Autograd.noGrad()) {
                    l = new MoeExperts.Lora(a.reshape(experts, r, a.size(1)),                                    // [E, r, in]: the same memory
                            b.reshape(b.size(0), r, experts).permute(2, 0, 1).contiguous(), scaling);           // [E, out, r]
                }
                setLora(f, l);
            }
            case PerExpert p -> throw new IllegalStateException("stacked by convert");
        }
    }

    private static void detach(Site site) {
        switch (site) {
            case Plain p -> p.linear().lora(null);
            case Fused f -> setLora(f, null);
            case PerExpert p -> {}
        }
    }

    private static boolean checkShape(List<String> problems, StoredTensor t, String file, int[] shape) {
        long[] want = {shape[0], shape[1]};
        if (Arrays.equals(t.shape(), want)) return true;
        problems.add(t.name() + ": expected " + Arrays.toString(want) + ", found " + Arrays.toString(t.shape()) + " in " + file);
        return false;
    }

    /** A stored tensor as an owned leaf on the device of the layer it adapts, in {@code dtype}, or the layer's dtype when null. */
    private static Tensor load(StoredTensor t, Parameter w, DType dtype) {
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
                if (!p.endsWith("gate_up_proj") && !p.endsWith("down_proj")) refuse(file, "target_parameters entry \"" + p + "\" (only the experts' gate_up_proj and down_proj)");
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

        /** PEFT's rule for target_parameters: the parameter's full name, or its last components. */
        static boolean suffixMatches(String name, String target) { return name.equals(target) || name.endsWith("." + target); }

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

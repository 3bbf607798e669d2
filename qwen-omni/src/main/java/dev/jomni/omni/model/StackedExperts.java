package dev.jomni.omni.model;

import dev.jomni.nn.Module;
import dev.jomni.nn.Parameter;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint as the thinker's stacked experts read it. The release stores one tensor per expert
 * ({@code …mlp.experts.{e}.gate_proj.weight} [I, H], {@code up_proj} [I, H], {@code down_proj} [H, I]); this
 * view shows them as transformers 5 fuses them (conversion_mapping.py): {@code …mlp.experts.gate_up_proj} =
 * stack_e(concat(gate_e, up_e)) [E, 2I, H] and {@code …mlp.experts.down_proj} = stack_e(down_e) [E, H, I].
 * A checkpoint that already holds the stacked names is passed through. Missing and mis-shaped experts are
 * reported by their own names ({@link #problems}); experts beyond E stay visible, so loading calls them unexpected.
 */
final class StackedExperts implements Module.Weights {
    private final Module.Weights file;
    private final Set<String> names = new HashSet<>();
    private final Map<String, List<String>> parts = new LinkedHashMap<>();   // stacked name → per-expert names, in order
    private final Map<String, int[]> shapes = new LinkedHashMap<>();
    private final List<String> problems = new ArrayList<>();

    /** @param params the model's parameters under their checkpoint names ({@code prefix} + name) */
    StackedExperts(Module.Weights file, String prefix, Map<String, Parameter> params) {
        this.file = file;
        Set<String> consumed = new HashSet<>();
        for (var e : params.entrySet()) {
            String key = prefix + e.getKey();
            boolean gateUp = key.endsWith(".experts.gate_up_proj"), down = key.endsWith(".experts.down_proj");
            if (!gateUp && !down || file.names().contains(key)) continue;
            String experts = key.substring(0, key.lastIndexOf('.'));
            int[] s = e.getValue().shape();                      // [E, 2I, H] or [E, H, I]
            List<String> names = new ArrayList<>();
            for (int x = 0; x < s[0]; x++)
                for (String proj : gateUp ? List.of("gate_proj", "up_proj") : List.of("down_proj")) {
                    String name = experts + "." + x + "." + proj + ".weight";
                    int[] want = gateUp ? new int[] {s[1] / 2, s[2]} : new int[] {s[1], s[2]};
                    names.add(name);
                    consumed.add(name);
                    if (!file.names().contains(name))
                        problems.add("missing " + name + " " + Arrays.toString(want) + " (expert " + x + " of " + s[0] + ", stacked into " + key + ")");
                    else if (!Arrays.equals(file.shape(name), want))
                        problems.add(name + ": expected " + Arrays.toString(want) + ", found " + Arrays.toString(file.shape(name)) + " in " + file.origin(name));
                }
            parts.put(key, names);
            shapes.put(key, s);
        }
        for (String n : file.names()) if (!consumed.contains(n)) names.add(n);
        names.addAll(parts.keySet());
    }

    @Override public Set<String> names() { return names; }

    /** The per-expert tensors a stacked name is made of, in stacking order; null for a name the file holds itself. */
    List<String> parts(String name) { return parts.get(name); }

    @Override public int[] shape(String name) { return shapes.containsKey(name) ? shapes.get(name).clone() : file.shape(name); }

    @Override public String origin(String name) {
        return parts.containsKey(name) ? file.origin(parts.get(name).getFirst()) + " (stacked from " + parts.get(name).size() + " tensors)" : file.origin(name);
    }

    @Override public List<String> problems() { return problems; }

    /** A stacked tensor is a new one (one copy of the experts); any other is the file's own. */
    @Override public Tensor get(String name) {
        List<String> from = parts.get(name);
        if (from == null) return file.get(name);
        try (var g = Autograd.noGrad()) {
            return Tensor.cat(from.stream().map(file::get).toList(), 0).reshape(shapes.get(name));
        }
    }
}

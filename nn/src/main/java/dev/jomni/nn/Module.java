package dev.jomni.nn;

import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * A node of a model: named parameters and named children, so that the tree yields the checkpoint's
 * own names ({@code model.layers.3.self_attn.q_proj.weight}) unmapped.
 */
public class Module {
    private final Map<String, Parameter> params = new LinkedHashMap<>();
    private final Map<String, Module> children = new LinkedHashMap<>();

    protected final Parameter parameter(String name, int... shape) {
        var p = new Parameter(name, shape);
        if (params.putIfAbsent(name, p) != null) throw new IllegalStateException("parameter " + name + " declared twice");
        return p;
    }

    protected final <M extends Module> M child(String name, M module) {
        if (children.putIfAbsent(name, module) != null) throw new IllegalStateException("child " + name + " declared twice");
        return module;
    }

    /** Every parameter of this tree by its full dotted name, in declaration order. */
    public final Map<String, Parameter> parameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", out);
        return Collections.unmodifiableMap(out);
    }

    /** Every module below this one by its full dotted name ({@code model.layers.3.self_attn.q_proj}), depth first. */
    public final Map<String, Module> modules() {
        Map<String, Module> out = new LinkedHashMap<>();
        collectModules("", out);
        return Collections.unmodifiableMap(out);
    }

    private void collectModules(String prefix, Map<String, Module> out) {
        children.forEach((n, c) -> {
            out.put(prefix + n, c);
            c.collectModules(prefix + n + ".", out);
        });
    }

    private void collect(String prefix, Map<String, Parameter> out) {
        params.forEach((n, p) -> out.put(prefix + n, p));
        children.forEach((n, c) -> c.collect(prefix + n + ".", out));
    }

    /** A source of named weights (a checkpoint, a map) for {@link #load}. */
    public interface Weights {
        Set<String> names();

        /** The weight under this name, with its shape as stored. */
        Tensor get(String name);

        /** Shape as stored, without reading the data. */
        int[] shape(String name);

        /** Where a weight comes from, for error messages (a file name). */
        default String origin(String name) { return "the weights"; }

        /** What the source itself found wrong (e.g. per-expert tensors it could not stack), reported with load's own. */
        default List<String> problems() { return List.of(); }
    }

    /**
     * Loads every parameter from {@code weights.get(prefix + name)}. All problems are reported at once:
     * missing weights, shape mismatches, and names under the prefix that no parameter takes (unless
     * {@code ignore} accepts them).
     */
    public final void load(Weights weights, String prefix, Predicate<String> ignore, java.util.function.UnaryOperator<Tensor> convert) {
        load(weights, prefix, ignore, (key, p) -> p.set(convert.apply(weights.get(key))));
    }

    /**
     * {@link #load} with the setting of each parameter left to {@code set} (its checkpoint key and the parameter), once
     * every check passed: for loaders that quantize or read packed weights.
     */
    public final void load(Weights weights, String prefix, Predicate<String> ignore, java.util.function.BiConsumer<String, Parameter> set) {
        List<String> problems = new ArrayList<>(weights.problems());
        Map<String, Parameter> mine = parameters();
        for (var e : mine.entrySet()) {
            String key = prefix + e.getKey();
            if (!weights.names().contains(key)) {
                problems.add("missing " + key + " " + Arrays.toString(e.getValue().shape()));
                continue;
            }
            int[] stored = weights.shape(key);
            if (!Arrays.equals(stored, e.getValue().shape()))
                problems.add(key + ": expected " + Arrays.toString(e.getValue().shape()) + ", found " + Arrays.toString(stored) + " in " + weights.origin(key));
        }
        Set<String> unexpected = new TreeSet<>();
        for (String n : weights.names())
            if (n.startsWith(prefix) && !mine.containsKey(n.substring(prefix.length())) && !ignore.test(n)) unexpected.add(n);
        for (String n : unexpected) problems.add("unexpected " + n + " " + Arrays.toString(weights.shape(n)) + " in " + weights.origin(n));
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 20);
            throw new IllegalArgumentException("cannot load weights (" + problems.size() + " problems):\n  "
                    + String.join("\n  ", problems.subList(0, shown)) + (shown < problems.size() ? "\n  …" : ""));
        }
        for (var e : mine.entrySet()) set.accept(prefix + e.getKey(), e.getValue());
    }
}

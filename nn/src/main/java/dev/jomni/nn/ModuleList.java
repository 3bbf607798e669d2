package dev.jomni.nn;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.IntFunction;

/** Children named 0, 1, 2, … (a checkpoint's {@code layers.N}, {@code experts.E}). */
public final class ModuleList<M extends Module> extends Module {
    private final List<M> items = new ArrayList<>();

    public ModuleList(int count, IntFunction<M> make) {
        for (int i = 0; i < count; i++) items.add(child(Integer.toString(i), make.apply(i)));
    }

    public M get(int i) { return items.get(i); }

    public int size() { return items.size(); }

    public List<M> items() { return Collections.unmodifiableList(items); }
}

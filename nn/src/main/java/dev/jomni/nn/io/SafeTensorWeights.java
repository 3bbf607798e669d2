package dev.jomni.nn.io;

import dev.jomni.nn.Module;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint as a {@link Module.Weights} source: tensors come zero-copy from the mapped files. A bitsandbytes
 * 4-bit weight ({@link Bnb4bit}: the packed codes under its own name plus five companion tensors) shows as one
 * weight of its shape before quantization; {@link #nf4} reads it as it is stored, {@link #get} dequantizes it.
 */
public final class SafeTensorWeights implements Module.Weights {
    private final SafeTensors file;
    private final Set<String> names;
    private final Map<String, int[]> nf4Shapes = new LinkedHashMap<>();   // 4-bit weights by name → shape before quantization

    public SafeTensorWeights(SafeTensors file) {
        this.file = file;
        Set<String> parts = new LinkedHashSet<>();
        for (String n : file.names()) {
            if (!n.endsWith(Bnb4bit.STATE)) continue;
            String key = n.substring(0, n.length() - Bnb4bit.STATE.length());
            nf4Shapes.put(key, Bnb4bit.shape(file.get(n).data(), key, origin(n)));
            parts.addAll(Arrays.asList(Bnb4bit.keys(key)).subList(1, 6));
        }
        Set<String> shown = new LinkedHashSet<>(file.names());
        shown.removeAll(parts);
        shown.addAll(nf4Shapes.keySet());      // a 4-bit weight whose packed tensor is missing is still named (read reports it)
        names = Collections.unmodifiableSet(shown);
    }

    public SafeTensors file() { return file; }

    @Override public Set<String> names() { return names; }

    /** Whether the weight is stored in bitsandbytes 4-bit. */
    public boolean isNf4(String name) { return nf4Shapes.containsKey(name); }

    /** A 4-bit weight as stored, byte for byte (CPU tensors), flattened to [numel/K, K]; errors name the missing or bad part and its file. */
    public Nf4Weight nf4(String name) {
        String where = origin(name);
        return Bnb4bit.read(n -> file.contains(n) ? file.get(n).data() : null, name, where);
    }

    /** The weight as stored; a 4-bit one dequantized to its quant dtype (a new CPU tensor). */
    @Override public Tensor get(String name) {
        if (!isNf4(name)) return file.get(name).data().toTensor();
        try (var g = Autograd.noGrad(); Nf4Weight w = nf4(name)) {
            return w.dequantize().reshape(nf4Shapes.get(name));
        }
    }

    @Override public int[] shape(String name) {
        if (isNf4(name)) return nf4Shapes.get(name).clone();
        long[] s = file.get(name).shape();
        int[] out = new int[s.length];
        for (int i = 0; i < s.length; i++) out[i] = Math.toIntExact(s[i]);
        return out;
    }

    @Override public String origin(String name) {
        String stored = file.contains(name) ? name : name + Bnb4bit.STATE;
        return file.contains(stored) ? file.get(stored).file().getFileName().toString() : file.source().getFileName().toString();
    }
}

package dev.jomni.nn.io;

import dev.jomni.nn.Module;
import dev.jomni.tensor.Tensor;
import java.util.Set;

/** A checkpoint as a {@link Module.Weights} source: tensors come zero-copy from the mapped files. */
public record SafeTensorWeights(SafeTensors file) implements Module.Weights {
    @Override public Set<String> names() { return file.names(); }

    @Override public Tensor get(String name) { return file.get(name).data().toTensor(); }

    @Override public int[] shape(String name) {
        long[] s = file.get(name).shape();
        int[] out = new int[s.length];
        for (int i = 0; i < s.length; i++) out[i] = Math.toIntExact(s[i]);
        return out;
    }

    @Override public String origin(String name) { return file.get(name).file().getFileName().toString(); }
}

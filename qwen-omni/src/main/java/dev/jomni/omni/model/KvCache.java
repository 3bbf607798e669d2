package dev.jomni.omni.model;

import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.List;

/**
 * Keys (after q/k-norm and RoPE) and values of the tokens seen so far, per decoder layer:
 * [B, nkv, S, d] each, grown by concatenation. Holds its tensors outside any scope.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys, values;
    /** Per row, set by the prefill: decode positions are (valid tokens before) + delta (spec §6, §9). */
    long[] ropeDeltas;

    public KvCache(int layers) {
        keys = new Tensor[layers];
        values = new Tensor[layers];
    }

    /** Tokens cached so far. */
    public int length() { return keys[0] == null ? 0 : keys[0].size(2); }

    /** Appends this step's k and v for a layer; returns everything cached for it. */
    Tensor[] append(int layer, Tensor k, Tensor v) {
        Tensor nk = Scope.unscoped(keys[layer] == null ? k.copy() : Tensor.cat(List.of(keys[layer], k), 2));
        Tensor nv = Scope.unscoped(values[layer] == null ? v.copy() : Tensor.cat(List.of(values[layer], v), 2));
        if (keys[layer] != null) {
            keys[layer].close();
            values[layer].close();
        }
        keys[layer] = nk;
        values[layer] = nv;
        return new Tensor[] {nk, nv};
    }

    @Override
    public void close() {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) keys[i].close();
            if (values[i] != null) values[i].close();
            keys[i] = values[i] = null;
        }
    }
}

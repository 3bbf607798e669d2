package dev.jomni.nn;

import dev.jomni.tensor.Tensor;

/** Rows of a [V, H] table. */
public final class Embedding extends Module {
    public final Parameter weight;

    public Embedding(int vocab, int hidden) { weight = parameter("weight", vocab, hidden); }

    public Tensor forward(Tensor ids) { return weight.value().embedding(ids); }   // ids [...] → [..., H]
}

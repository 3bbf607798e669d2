package dev.jomni.omni.model;

import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Swiglu;

/** down(silu(gate(x)) ⊙ up(x)), gated by the coarse op {@link Swiglu}: the MLP of a dense layer (mlp_only_layers); the experts are {@link SparseMoe.Experts}. */
final class SwiGlu extends Module {
    final Linear gateProj, upProj, downProj;

    SwiGlu(int hidden, int intermediate) {
        gateProj = child("gate_proj", new Linear(hidden, intermediate, false));
        upProj = child("up_proj", new Linear(hidden, intermediate, false));
        downProj = child("down_proj", new Linear(intermediate, hidden, false));
    }

    Tensor forward(Tensor x) {                                 // [..., H] → [..., H]
        return downProj.forward(Swiglu.swiglu(gateProj.forward(x), upProj.forward(x)));
    }
}

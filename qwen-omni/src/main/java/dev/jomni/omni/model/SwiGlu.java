package dev.jomni.omni.model;

import dev.jomni.nn.Linear;
import dev.jomni.nn.Module;
import dev.jomni.tensor.Tensor;

/** down(silu(gate(x)) ⊙ up(x)): the MLP of a dense layer (mlp_only_layers); the experts are {@link SparseMoe.Experts}. */
final class SwiGlu extends Module {
    final Linear gateProj, upProj, downProj;

    SwiGlu(int hidden, int intermediate) {
        gateProj = child("gate_proj", new Linear(hidden, intermediate, false));
        upProj = child("up_proj", new Linear(hidden, intermediate, false));
        downProj = child("down_proj", new Linear(intermediate, hidden, false));
    }

    Tensor forward(Tensor x) {                                 // [..., H] → [..., H]
        return downProj.forward(gateProj.forward(x).silu().mul(upProj.forward(x)));
    }
}

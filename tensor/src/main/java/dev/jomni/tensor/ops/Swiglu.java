package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;

/**
 * SwiGLU's gating, fused: {@code out = silu(gate) · up}, {@code silu(g) = g·σ(g)}, with silu(gate)
 * rounded to the dtype before the product, as {@code act_fn(gate_proj(x)) * up_proj(x)} computes it.
 * Gate and up come as two tensors [..., I], or as one [..., 2I] split in halves (gate first), the layout
 * of transformers 5's fused experts: {@code gate_up_proj[e]} is [2I, H], gate the first I rows, so
 * {@code x·gate_up_proj[e]ᵀ} is [..., 2I] with gate in the first half. The tape keeps gate and up.
 */
public final class Swiglu {
    private Swiglu() {}

    /**
     * What a backend implements. gate, up, dgate, dup are [rows, I] with unit column stride and any row
     * stride ({@code strides()[0]}, from {@code offset()}): two tensors, or the halves of one [rows, 2I].
     * dout and out are contiguous [rows, I]. One floating dtype throughout; outputs allocated by the op.
     */
    public interface Kernels {
        /** out ← silu(gate)·up, silu(gate) rounded to the dtype first. */
        void forward(Tensor gate, Tensor up, Tensor out);

        /** Where not null: dgate ← dout·up·silu'(gate), dup ← dout·silu(gate); silu'(g) = σ(g)(1 + g(1 − σ(g))). */
        void backward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup);
    }

    /** silu(gate)·up for gate and up of one shape [..., I]; dtype promote(gate, up). */
    public static Tensor swiglu(Tensor gate, Tensor up) {
        Check.floating("swiglu", gate);
        Check.floating("swiglu", up);
        Check.sameDevice("swiglu", gate, up);
        if (gate.rank() == 0 || !java.util.Arrays.equals(gate.shape(), up.shape()))
            throw Check.fail("swiglu", "gate %s and up %s must have one shape [..., I]", Check.str(gate.shape()), Check.str(up.shape()));
        DType type = DType.promote(gate.dtype(), up.dtype());
        int inner = gate.size(-1), rows = inner == 0 ? 0 : Math.toIntExact(gate.numel() / inner);
        Tensor g, u, out;
        try (var none = Autograd.noGrad()) {
            g = gate.to(type).contiguous().reshape(rows, inner);
            u = up.to(type).contiguous().reshape(rows, inner);
            out = Tensor.empty(gate.device(), type, rows, inner);
            if (rows > 0) kernels(g).forward(g, u, out);
        }
        return Autograd.record("swiglu", out.reshape(gate.shape()), new Saved(g, u, gate.dtype(), up.dtype()), gate, up);
    }

    /** silu(gate)·up for gateUp [..., 2I] = concat(gate, up) along the last axis; result [..., I]. */
    public static Tensor swiglu(Tensor gateUp) {
        Check.floating("swiglu", gateUp);
        if (gateUp.rank() == 0 || gateUp.size(-1) % 2 != 0)
            throw Check.fail("swiglu", "gateUp %s must be [..., 2I] (gate, then up)", Check.str(gateUp.shape()));
        int inner = gateUp.size(-1) / 2, rows = inner == 0 ? 0 : Math.toIntExact(gateUp.numel() / (2L * inner));
        int[] shape = gateUp.shape();
        shape[shape.length - 1] = inner;
        Tensor gu, out;
        try (var none = Autograd.noGrad()) {
            gu = gateUp.contiguous().reshape(rows, 2 * inner);
            out = Tensor.empty(gateUp.device(), gateUp.dtype(), rows, inner);
            if (rows > 0) kernels(gu).forward(gu.narrow(1, 0, inner), gu.narrow(1, inner, inner), out);
        }
        return Autograd.record("swiglu", out.reshape(shape), new SavedHalves(gu), gateUp);
    }

    /** gate and up [rows, I] as the kernels read them; the inputs' dtypes, for their gradients. */
    record Saved(Tensor gate, Tensor up, DType gateType, DType upType) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dout, boolean[] needs) {
            Tensor g = prepare(dout, gate);
            Tensor dg = needs[0] ? Tensor.empty(gate.device(), gate.dtype(), gate.shape()) : null;
            Tensor du = needs[1] ? Tensor.empty(gate.device(), gate.dtype(), gate.shape()) : null;
            if (gate.size(0) > 0) kernels(gate).backward(g, gate, up, dg, du);
            return new Tensor[] {dg == null ? null : dg.reshape(dout.shape()).to(gateType), du == null ? null : du.reshape(dout.shape()).to(upType)};
        }
    }

    /** gateUp [rows, 2I] as the kernels read it. */
    record SavedHalves(Tensor gateUp) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dout, boolean[] needs) {
            int inner = gateUp.size(1) / 2;
            Tensor gate = gateUp.narrow(1, 0, inner), up = gateUp.narrow(1, inner, inner);
            Tensor g = prepare(dout, gate);
            Tensor d = Tensor.empty(gateUp.device(), gateUp.dtype(), gateUp.shape());
            if (gateUp.size(0) > 0) kernels(gateUp).backward(g, gate, up, d.narrow(1, 0, inner), d.narrow(1, inner, inner));
            int[] shape = dout.shape();
            shape[shape.length - 1] = 2 * inner;
            return new Tensor[] {d.reshape(shape)};
        }
    }

    /** dout as the kernels read it: [rows, I], contiguous, of the inputs' dtype. */
    private static Tensor prepare(Tensor dout, Tensor like) {
        return (dout.dtype() == like.dtype() ? dout : dout.to(like.dtype())).contiguous().reshape(like.size(0), like.size(1));
    }

    private static Kernels kernels(Tensor x) { return Fallback.kernels(Backend.of(x), Kernels.class, COMPOSED); }

    /**
     * The op composed of primitive tensor ops (silu, then mul, as jomni computed it before this op):
     * the fallback for a backend without its own kernels.
     */
    public static final Kernels COMPOSED = new Kernels() {
        @Override
        public void forward(Tensor gate, Tensor up, Tensor out) {
            try (var none = Autograd.noGrad()) {
                Backend.of(gate).copy(gate.silu().mul(up), out);
            }
        }

        @Override
        public void backward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
            try (var none = Autograd.noGrad()) {
                if (dgate != null) {
                    Tensor s = gate.sigmoid();
                    Tensor grad = s.mul(gate.mul(s.rsub(1)).add(1));                    // silu'(g) = σ(1 + g(1 − σ))
                    Backend.of(gate).copy(dout.mul(up).mul(grad), dgate);
                }
                if (dup != null) Backend.of(gate).copy(dout.mul(gate.silu()), dup);
            }
        }
    };
}

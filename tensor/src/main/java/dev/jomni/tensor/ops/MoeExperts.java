package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import java.util.Arrays;

/**
 * The experts of a sparse mixture of experts over stacked weights, as transformers 5 keeps them:
 * <pre>
 *   out[t] = Σ_k w[t,k] · down_e(silu(gate_e(x[t])) ⊙ up_e(x[t])),   e = ids[t,k]
 *   gate_e(x) ‖ up_e(x) = x·gateUp[e]ᵀ (+ s·(x·Aᵀ)·Bᵀ),   down_e(h) = h·down[e]ᵀ (+ s·(h·Aᵀ)·Bᵀ)
 * </pre>
 * Shapes (N tokens, K choices per token, E experts, H hidden, I moe_intermediate, r LoRA rank):
 * x [N, H]; ids [N, K] i64 or i32, each in [0, E) or −1 for "no expert" (the slot adds nothing: expert
 * parallelism, dropped tokens); weights [N, K] in x's dtype; gateUp [E, 2I, H] (gate rows 0…I−1, then up);
 * down [E, H, I]; optional LoRA per projection, {@link Lora} A [E, r, in], B [E, out, r]. Every floating
 * tensor has x's dtype and device. Routing is read by the kernels on the device: the op never syncs.
 *
 * <p>Semantics of the reference (transformers' eager loop, {@code CpuMoeExperts}): experts in increasing
 * index, each over its tokens in increasing order, every intermediate (the projections, the LoRA terms, silu,
 * the product, the scaling by w) rounded to x's dtype and the result accumulated per token in x's dtype.
 * Other backends may sum in another order (grouped GEMM); that matters only for 16-bit bit-equality.
 *
 * <p>Saved state: x, ids and weights, plus references to the weights (parameters, alive anyway). The expert
 * intermediates are recomputed in backward, not saved: per (token, choice) they are 3·I values (gate, up and
 * their product), 8·3·768·2 = 36.9 KB per token in bf16 at the real size against x's 4 KB, i.e. 151 MB per layer
 * at 4096 tokens (7.2 GB over 48 layers) for one extra gate_up GEMM (2·I·H of the 9·I·H multiply-adds per
 * choice that forward + backward cost). The routing weights' gradient needs no saved expert output:
 * ∂out/∂w[t,k] · dy = h·(dy·down[e] (+ LoRA)), from the product backward computes anyway.
 */
public final class MoeExperts {
    private MoeExperts() {}

    /**
     * A LoRA update of one stacked projection, experts stacked: a [E, r, in], b [E, out, r], scaling = alpha/r;
     * the projection of expert e gains s·(x·a[e]ᵀ)·b[e]ᵀ. PEFT 0.21 stores a as [E·r, in] (the same memory) and b
     * as [out, r·E] with the expert fastest (b[e][o][j] = b_peft[o][j·E + e]).
     */
    public record Lora(Tensor a, Tensor b, double scaling) {
        public Lora {
            if (a.rank() != 3 || b.rank() != 3 || a.size(0) != b.size(0) || a.size(1) != b.size(2))
                throw new IllegalArgumentException("moeExperts: LoRA A " + Arrays.toString(a.shape()) + " and B "
                        + Arrays.toString(b.shape()) + " are not [E, r, in] and [E, out, r]");
        }

        public int rank() { return a.size(1); }
    }

    /** The op's inputs as the kernels receive them: contiguous, checked; either LoRA may be null. */
    public record Inputs(Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, Lora gateUpLora, Lora downLora,
                         Nf4Weight gateUpNf4, Nf4Weight downNf4, int experts) {
        public Inputs(Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, Lora gateUpLora, Lora downLora) {
            this(x, ids, weights, gateUp, down, gateUpLora, downLora, null, null, gateUp.size(0));
        }

        public int tokens() { return x.size(0); }
        public int hidden() { return x.size(1); }
        public int topK() { return ids.size(1); }
        public int intermediate() { return down != null ? down.size(2) : downNf4.cols(); }
        /** True when the experts are NF4: gateUpNf4 [E·2I, H] and downNf4 [E·H, I], gateUp and down null. */
        public boolean nf4() { return gateUpNf4 != null; }

        /** These inputs with NF4 experts dequantized to x's dtype, [E, 2I, H] and [E, H, I] (the fallback). */
        Inputs dequantized() {
            if (!nf4()) return this;
            int e = experts, h = hidden(), i = intermediate();
            Tensor gu = gateUpNf4.dequantize().to(x.dtype()).reshape(e, 2 * i, h);
            Tensor dn = downNf4.dequantize().to(x.dtype()).reshape(e, h, i);
            return new Inputs(x, ids, weights, gu, dn, gateUpLora, downLora);
        }
    }

    /**
     * Where backward writes each gradient, shaped like its input; a null field is not wanted (skip its work).
     * The kernels overwrite every element of each non-null tensor (zeros for experts without tokens).
     */
    public record Grads(Tensor x, Tensor weights, Tensor gateUp, Tensor down,
                        Tensor gateUpA, Tensor gateUpB, Tensor downA, Tensor downB) {}

    /** What each backend implements (CPU: {@code CpuMoeExperts}, the reference). */
    public interface Kernels {
        /**
         * Whether forward and backward take {@link Inputs} whose experts are NF4 ({@link Inputs#gateUpNf4()}
         * non-null, gateUp and down null). A backend without it gets dequantized bf16 copies from the op, made
         * per call and dropped after it (correct, but it writes the dense weights to memory).
         */
        default boolean takesNf4() { return false; }

        /** out [N, H] (allocated by the op, contiguous) = the experts' weighted sum, as the class comment says. */
        void forward(Inputs in, Tensor out);

        /** Given dy [N, H] (contiguous), writes the gradients {@code grads} asks for. */
        void backward(Inputs in, Tensor dy, Grads grads);
    }

    /**
     * The experts' output [N, H]; see the class comment for shapes. Differentiable in x, weights, gateUp, down
     * and the LoRA tensors; ids are not (PyTorch's mark_non_differentiable of a router's top-k).
     */
    public static Tensor moeExperts(Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, Lora gateUpLora, Lora downLora) {
        check(x, ids, weights, gateUp, down, gateUpLora, downLora);
        Inputs in;
        Tensor out = Tensor.empty(x.device(), x.dtype(), x.size(0), x.size(1));
        try (var g = Autograd.noGrad()) {
            in = new Inputs(x.contiguous(), ids.contiguous(), weights.contiguous(), gateUp.contiguous(), down.contiguous(),
                    contiguous(gateUpLora), contiguous(downLora));
            Backend.of(x).kernels(Kernels.class).forward(in, out);
        }
        return Autograd.record("moeExperts", out, new Saved(in), x, ids, weights, gateUp, down,
                gateUpLora == null ? null : gateUpLora.a(), gateUpLora == null ? null : gateUpLora.b(),
                downLora == null ? null : downLora.a(), downLora == null ? null : downLora.b());
    }

    /**
     * The same with frozen NF4 experts: gateUp is the stacked [E, 2I, H] quantized as one [E·2I, H] weight,
     * down the stacked [E, H, I] as [E·H, I] (bitsandbytes' blocks of 64 never cross a row, so expert e's rows
     * are rows e·2I… of the flat weight); both dequantize to x's dtype. Differentiable in x, weights and the
     * LoRA tensors; the base has no gradient.
     */
    public static Tensor moeExperts(Tensor x, Tensor ids, Tensor weights, Nf4Weight gateUp, Nf4Weight down, int experts,
                                    Lora gateUpLora, Lora downLora) {
        int h = x.rank() == 2 ? x.size(1) : -1;
        if (experts <= 0 || gateUp.rows() % (2L * experts) != 0 || gateUp.cols() != h || down.rows() != (long) experts * h
                || down.cols() * 2L * experts != gateUp.rows() || gateUp.dtype() != x.dtype() || down.dtype() != x.dtype())
            throw fail("NF4 gateUp [%d, %d] %s and down [%d, %d] %s do not fit [E·2I, H] and [E·H, I] with E = %d for x %s %s",
                    gateUp.rows(), gateUp.cols(), gateUp.dtype().lower(), down.rows(), down.cols(), down.dtype().lower(),
                    experts, x, x.dtype().lower());
        if (!gateUp.device().equals(x.device()) || !down.device().equals(x.device()))
            throw fail("NF4 experts are on %s and %s, x on %s", gateUp.device(), down.device(), x.device());
        int i = down.cols();
        Inputs in;
        Tensor out = Tensor.empty(x.device(), x.dtype(), x.size(0), h);
        try (var g = Autograd.noGrad()) {
            check(x, ids, weights, null, null, new int[] {experts, 2 * i, h}, new int[] {experts, h, i}, gateUpLora, downLora);
            in = new Inputs(x.contiguous(), ids.contiguous(), weights.contiguous(), null, null,
                    contiguous(gateUpLora), contiguous(downLora), gateUp, down, experts);
            Kernels k = Backend.of(x).kernels(Kernels.class);
            k.forward(k.takesNf4() ? in : in.dequantized(), out);
        }
        return Autograd.record("moeExperts", out, new Saved(in), x, ids, weights, null, null,
                gateUpLora == null ? null : gateUpLora.a(), gateUpLora == null ? null : gateUpLora.b(),
                downLora == null ? null : downLora.a(), downLora == null ? null : downLora.b());
    }

    /**
     * What backward needs: the inputs themselves (x, ids, weights the only activations; gateUp, down and the
     * LoRA tensors are parameters the model holds anyway). Contiguous copies made for the kernels, if any, are
     * what is held instead of the caller's views.
     */
    record Saved(Inputs in) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dy, boolean[] needs) {       // inputs: x, ids, weights, gateUp, down, guA, guB, dA, dB
            Lora gu = in.gateUpLora(), dn = in.downLora();
            var grads = new Grads(like(needs[0], in.x()), like(needs[2], in.weights()), like(needs[3], in.gateUp()),
                    like(needs[4], in.down()), like(needs[5], gu == null ? null : gu.a()), like(needs[6], gu == null ? null : gu.b()),
                    like(needs[7], dn == null ? null : dn.a()), like(needs[8], dn == null ? null : dn.b()));
            Tensor g = dy.contiguous();
            Kernels k = Backend.of(in.x()).kernels(Kernels.class);
            k.backward(k.takesNf4() ? in : in.dequantized(), g.dtype() == in.x().dtype() ? g : g.to(in.x().dtype()), grads);
            return new Tensor[] {grads.x(), null, grads.weights(), grads.gateUp(), grads.down(),
                                 grads.gateUpA(), grads.gateUpB(), grads.downA(), grads.downB()};
        }

        private static Tensor like(boolean need, Tensor t) {
            return need && t != null ? Tensor.empty(t.device(), t.dtype(), t.shape()) : null;
        }
    }

    private static Lora contiguous(Lora l) {
        return l == null ? null : new Lora(l.a().contiguous(), l.b().contiguous(), l.scaling());
    }

    private static void check(Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, Lora gateUpLora, Lora downLora) {
        check(x, ids, weights, gateUp, down, gateUp.shape(), down.shape(), gateUpLora, downLora);
    }

    /** gateUp and down may be null (NF4 experts, checked by the caller), their shapes not. */
    private static void check(Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, int[] gateUpShape, int[] downShape,
                              Lora gateUpLora, Lora downLora) {
        String gus = Arrays.toString(gateUpShape), dns = Arrays.toString(downShape);
        if (x.rank() != 2 || gateUpShape.length != 3 || downShape.length != 3)
            throw fail("x %s, gateUp %s, down %s must be [N, H], [E, 2I, H], [E, H, I]", x, gus, dns);
        int n = x.size(0), h = x.size(1), e = gateUpShape[0], i2 = gateUpShape[1];
        if (e == 0 || i2 % 2 != 0 || gateUpShape[2] != h || downShape[0] != e || downShape[1] != h || downShape[2] != i2 / 2)
            throw fail("gateUp %s and down %s do not fit [E, 2I, H] and [E, H, I] for x %s (H = %d)", gus, dns, x, h);
        if (ids.dtype() != DType.I64 && ids.dtype() != DType.I32)
            throw fail("ids must be i64 or i32, got %s %s", ids.dtype().lower(), Arrays.toString(ids.shape()));
        if (ids.rank() != 2 || ids.size(0) != n || !Arrays.equals(ids.shape(), weights.shape()))
            throw fail("ids %s and weights %s must both be [N, K] for x %s", ids, weights, x);
        if (!x.dtype().floating) throw fail("x must be floating, got %s %s", x.dtype().lower(), Arrays.toString(x.shape()));
        Tensor[] floats = {weights, gateUp, down, gateUpLora == null ? null : gateUpLora.a(), gateUpLora == null ? null : gateUpLora.b(),
                           downLora == null ? null : downLora.a(), downLora == null ? null : downLora.b()};
        String[] names = {"weights", "gateUp", "down", "gateUp LoRA A", "gateUp LoRA B", "down LoRA A", "down LoRA B"};
        for (int j = 0; j < floats.length; j++) {
            Tensor t = floats[j];
            if (t == null) continue;
            if (t.dtype() != x.dtype())
                throw fail("%s is %s %s, x is %s: every floating input has x's dtype", names[j], t.dtype().lower(), Arrays.toString(t.shape()), x.dtype().lower());
            if (!t.device().equals(x.device())) throw fail("%s is on %s, x on %s", names[j], t.device(), x.device());
        }
        if (!ids.device().equals(x.device())) throw fail("ids are on %s, x on %s", ids.device(), x.device());
        checkLora("gateUp", gateUpLora, e, i2, h);
        checkLora("down", downLora, e, h, i2 / 2);
    }

    private static void checkLora(String which, Lora l, int experts, int out, int in) {
        if (l == null) return;
        if (l.a().size(0) != experts || l.a().size(2) != in || l.b().size(1) != out)
            throw fail("%s LoRA A %s, B %s do not fit [%d, r, %d] and [%d, %d, r]", which, l.a(), l.b(), experts, in, experts, out);
    }

    private static IllegalArgumentException fail(String format, Object... args) {
        for (int i = 0; i < args.length; i++) if (args[i] instanceof Tensor t) args[i] = Arrays.toString(t.shape());
        return new IllegalArgumentException("moeExperts: " + String.format(format, args));
    }
}

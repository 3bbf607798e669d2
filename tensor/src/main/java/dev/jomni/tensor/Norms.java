package dev.jomni.tensor;

/** LayerNorm over the last axis, composed from primitives (computed in at least f32). RMSNorm: {@link dev.jomni.tensor.ops.RmsNorm}. */
final class Norms {
    private Norms() {}

    static Tensor layerNorm(Tensor x, Tensor w, Tensor b, double eps) {
        Check.floating("layerNorm", x);
        int n = x.shape()[x.rank() - 1];
        for (Tensor p : new Tensor[] {w, b})
            if (p != null && (p.rank() != 1 || p.shape()[0] != n))
                throw Check.fail("layerNorm", "parameter %s does not match the last axis of %s", Check.str(p.shape()), Check.str(x.shape()));
        DType compute = x.dtype().atLeastF32();
        Tensor h = x.to(compute);
        Tensor centered = h.sub(h.mean(-1, true));
        Tensor y = centered.mul(centered.square().mean(-1, true).add(eps).rsqrt()).to(x.dtype());
        if (w != null) y = y.mul(w);
        if (b != null) y = y.add(b);
        return y;
    }
}

package dev.jomni.tensor;

/** RMSNorm and LayerNorm over the last axis, composed from primitives (computed in at least f32). */
final class Norms {
    private Norms() {}

    /** y = x · rsqrt(mean(x²) + eps) · w, as transformers' Qwen3 RMSNorm: in f32, cast back before the weight. */
    static Tensor rmsNorm(Tensor x, Tensor w, double eps) {
        Check.floating("rmsNorm", x);
        int n = x.shape()[x.rank() - 1];
        if (w.rank() != 1 || w.shape()[0] != n)
            throw Check.fail("rmsNorm", "weight %s does not match the last axis of %s", Check.str(w.shape()), Check.str(x.shape()));
        DType compute = x.dtype() == DType.F64 ? DType.F64 : DType.F32;
        Tensor h = x.to(compute);
        Tensor normed = h.mul(h.square().mean(-1, true).add(eps).rsqrt());
        return w.mul(normed.to(x.dtype()));
    }

    static Tensor layerNorm(Tensor x, Tensor w, Tensor b, double eps) {
        Check.floating("layerNorm", x);
        int n = x.shape()[x.rank() - 1];
        for (Tensor p : new Tensor[] {w, b})
            if (p != null && (p.rank() != 1 || p.shape()[0] != n))
                throw Check.fail("layerNorm", "parameter %s does not match the last axis of %s", Check.str(p.shape()), Check.str(x.shape()));
        DType compute = x.dtype() == DType.F64 ? DType.F64 : DType.F32;
        Tensor h = x.to(compute);
        Tensor centered = h.sub(h.mean(-1, true));
        Tensor y = centered.mul(centered.square().mean(-1, true).add(eps).rsqrt()).to(x.dtype());
        if (w != null) y = y.mul(w);
        if (b != null) y = y.add(b);
        return y;
    }
}

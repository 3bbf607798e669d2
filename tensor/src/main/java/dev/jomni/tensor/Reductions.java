package dev.jomni.tensor;

import dev.jomni.tensor.spi.ReduceOp;
import java.util.Arrays;

/** Reductions over axes. The backend reduces the last axis of [rows, n]; axes are moved there first. */
final class Reductions {
    private Reductions() {}

    static Tensor sum(Tensor x, int[] dims, boolean keepdim) {
        int rank = x.rank();
        boolean[] reduce = axes("sum", dims, rank);
        int[] kept = keptShape(x.shape(), reduce), outShape = keepdim ? kept : squeezed(x.shape(), reduce);
        DType outType = x.dtype().floating ? x.dtype() : DType.I64;
        Tensor out = Tensor.empty(x.device(), outType, outShape);
        if (x.numel() == 0) x.backend().fill(out, 0);
        else try (var g = Autograd.noGrad()) {
            int n = (int) (x.numel() / Tensor.numel(kept));
            x.backend().reduce(ReduceOp.SUM, moveLast(x, reduce).reshape(-1, n), out.reshape((int) Tensor.numel(kept)));
        }
        if (!outType.floating) return out;
        return Autograd.record("sum", out, new SumBackward(kept, x.shape()), x);
    }

    /** dx = dy broadcast back over the summed axes; only shapes are kept (mean is sum / n). */
    record SumBackward(int[] keptShape, int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {dy.reshape(keptShape).expand(inputShape)};
        }
    }

    static Tensor mean(Tensor x, int[] dims, boolean keepdim) {
        Check.floating("mean", x);
        boolean[] reduce = axes("mean", dims, x.rank());
        long n = 1;
        for (int i = 0; i < reduce.length; i++) if (reduce[i]) n *= x.shape()[i];
        return sum(x, dims, keepdim).div(n);
    }

    /** Values of the maximum along dim (gradient to the first maximum only: the gather's backward keeps the argmax indices). */
    static Tensor max(Tensor x, int dim, boolean keepdim) {
        int d = Check.dim("max", dim, x.rank());
        if (x.shape()[d] == 0) throw Check.fail("max", "dim %d of %s is empty", d, Check.str(x.shape()));
        Tensor idx = arg(ReduceOp.ARGMAX, x, d, true);
        Tensor v = x.gather(d, idx);
        return keepdim ? v : v.squeeze(d);
    }

    static Tensor arg(ReduceOp op, Tensor x, int dim, boolean keepdim) {
        int d = Check.dim(op.name().toLowerCase(), dim, x.rank());
        boolean[] reduce = new boolean[x.rank()];
        reduce[d] = true;
        int[] kept = keptShape(x.shape(), reduce);
        Tensor out = Tensor.empty(x.device(), DType.I64, keepdim ? kept : squeezed(x.shape(), reduce));
        try (var g = Autograd.noGrad()) {
            x.backend().reduce(op, moveLast(x, reduce).reshape(-1, x.shape()[d]), out.reshape((int) Tensor.numel(kept)));
        }
        return out;
    }

    /** log Σ exp(x) along dim, shifted by the (detached) maximum so that it cannot overflow. */
    static Tensor logsumexp(Tensor x, int dim, boolean keepdim) {
        Check.floating("logsumexp", x);
        Tensor m;
        try (var g = Autograd.noGrad()) {
            m = x.max(dim, true);
            m = Tensor.where(m.abs().eq(Double.POSITIVE_INFINITY), Elementwise.constant(m, 0), m);   // all −inf rows stay −inf
        }
        Tensor out = x.sub(m).exp().sum(dim, true).log().add(m);
        return keepdim ? out : out.squeeze(dim);
    }

    static Tensor var(Tensor x, int dim, boolean keepdim, int correction) {
        Check.floating("var", x);
        int d = Check.dim("var", dim, x.rank());
        long n = x.shape()[d];
        Tensor centered = x.sub(x.mean(d, true));
        return centered.square().sum(d, keepdim).div(Math.max(0, n - correction));
    }

    /** Sums a broadcast gradient back to {@code shape}: over added leading axes and axes that were 1. */
    static Tensor sumTo(Tensor g, int[] shape) {
        int[] gs = g.shape();
        if (Arrays.equals(gs, shape)) return g;
        int lead = gs.length - shape.length;
        int[] dims = new int[gs.length];
        int count = 0;
        for (int i = 0; i < gs.length; i++)
            if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) dims[count++] = i;
        Tensor s = sum(g, Arrays.copyOf(dims, count), true);
        return s.reshape(shape);
    }

    private static boolean[] axes(String op, int[] dims, int rank) {
        boolean[] r = new boolean[rank];
        for (int d : dims) {
            int a = Check.dim(op, d, rank);
            if (r[a]) throw Check.fail(op, "dim %d repeated in %s", a, Arrays.toString(dims));
            r[a] = true;
        }
        return r;
    }

    private static int[] keptShape(int[] shape, boolean[] reduce) {
        int[] k = shape.clone();
        for (int i = 0; i < k.length; i++) if (reduce[i]) k[i] = 1;
        return k;
    }

    private static int[] squeezed(int[] shape, boolean[] reduce) {
        return java.util.stream.IntStream.range(0, shape.length).filter(i -> !reduce[i]).map(i -> shape[i]).toArray();
    }

    /** x permuted so the reduced axes come last (a view; no gradient is recorded through it here). */
    private static Tensor moveLast(Tensor x, boolean[] reduce) {
        int[] p = new int[reduce.length];
        int j = 0;
        for (int i = 0; i < reduce.length; i++) if (!reduce[i]) p[j++] = i;
        for (int i = 0; i < reduce.length; i++) if (reduce[i]) p[j++] = i;
        try (var g = Autograd.noGrad()) {
            return x.permute(p);
        }
    }
}

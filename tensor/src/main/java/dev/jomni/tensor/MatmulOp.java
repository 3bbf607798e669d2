package dev.jomni.tensor;

import java.util.Arrays;

/** Matrix product with PyTorch's matmul rules: 1-D operands, broadcast batch axes. */
final class MatmulOp {
    private MatmulOp() {}

    static Tensor matmul(Tensor a, Tensor b) {
        Check.sameDevice("matmul", a, b);
        if (a.rank() == 0 || b.rank() == 0)
            throw Check.fail("matmul", "%s @ %s: both operands need at least one dim", Check.str(a.shape()), Check.str(b.shape()));
        if (a.dtype() != b.dtype())
            throw Check.fail("matmul", "%s @ %s: dtypes %s and %s differ", Check.str(a.shape()), Check.str(b.shape()), a.dtype().lower(), b.dtype().lower());
        if (a.rank() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
        if (b.rank() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
        int[] as = a.shape(), bs = b.shape();
        int m = as[as.length - 2], k = as[as.length - 1], k2 = bs[bs.length - 2], n = bs[bs.length - 1];
        if (k != k2)
            throw Check.fail("matmul", "%s @ %s: inner dimensions %d and %d differ", Check.str(as), Check.str(bs), k, k2);
        int[] batch = Check.broadcast("matmul", Arrays.copyOf(as, as.length - 2), Arrays.copyOf(bs, bs.length - 2));
        int[] outShape = Arrays.copyOf(batch, batch.length + 2);
        outShape[batch.length] = m;
        outShape[batch.length + 1] = n;
        Tensor out = Tensor.empty(a.device(), a.dtype(), outShape);
        try (var g = Autograd.noGrad()) {
            int batchCount = (int) Tensor.numel(batch);
            if (b.rank() == 2 && a.isContiguous()) {
                // [..., m, k] @ [k, n]: fold the batch into m (a linear layer), one big product.
                a.backend().matmul(a.reshape(1, batchCount * m, k), b.unsqueeze(0), out.reshape(1, batchCount * m, n));
            } else {
                Tensor a3 = a.expand(concat(batch, m, k)).reshape(batchCount, m, k);
                Tensor b3 = b.expand(concat(batch, k, n)).reshape(batchCount, k, n);
                a.backend().matmul(a3, b3, out.reshape(batchCount, m, n));
            }
        }
        if (!a.dtype().floating) return out;
        return Autograd.record("matmul", out, new MatmulBackward(a, b), a, b);
    }

    /** out = a @ b: da = dy @ bᵀ, db = aᵀ @ dy, each summed back over broadcast batch axes. */
    record MatmulBackward(Tensor a, Tensor b) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {
                    needs[0] ? Reductions.sumTo(dy.matmul(b.mT()), a.shape()) : null,
                    needs[1] ? Reductions.sumTo(a.mT().matmul(dy), b.shape()) : null};
        }
    }

    private static int[] concat(int[] batch, int r, int c) {
        int[] s = Arrays.copyOf(batch, batch.length + 2);
        s[batch.length] = r;
        s[batch.length + 1] = c;
        return s;
    }
}

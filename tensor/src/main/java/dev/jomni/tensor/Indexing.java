package dev.jomni.tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Gathering, scattering, joining, splitting and ordering. */
final class Indexing {
    private Indexing() {}

    static Tensor indexSelect(Tensor x, int dim, Tensor index) {
        int d = Check.dim("indexSelect", dim, x.rank());
        Check.index("indexSelect", index);
        if (index.rank() != 1) throw Check.fail("indexSelect", "index must be 1-D, got %s", Check.str(index.shape()));
        checkRange("indexSelect", index, x.shape()[d]);
        int[] s = x.shape();
        s[d] = index.shape()[0];
        Tensor out = Tensor.empty(x.device(), x.dtype(), s);
        x.backend().indexSelect(x, d, index, out);
        if (!x.dtype().floating) return out;
        return Autograd.record("indexSelect", out, new IndexSelectBackward(d, index, x.shape()), x, index);
    }

    /** dx = zeros(x) with dy's slices added at index along dim. */
    record IndexSelectBackward(int dim, Tensor index, int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = Tensor.zeros(dy.device(), dy.dtype(), inputShape);
            dx.backend().indexAdd(dx, dim, index, dy);
            return new Tensor[] {dx, null};
        }
    }

    /** x with src's slices added at index along dim (out of place index_add). */
    static Tensor indexAdd(Tensor x, int dim, Tensor index, Tensor src) {
        int d = Check.dim("indexAdd", dim, x.rank());
        Check.index("indexAdd", index);
        int[] want = x.shape();
        if (index.rank() != 1) throw Check.fail("indexAdd", "index must be 1-D, got %s", Check.str(index.shape()));
        want[d] = index.shape()[0];
        if (!Arrays.equals(want, src.shape()))
            throw Check.fail("indexAdd", "src %s should be %s for input %s and %d indices on dim %d",
                    Check.str(src.shape()), Check.str(want), Check.str(x.shape()), want[d], d);
        checkRange("indexAdd", index, x.shape()[d]);
        Tensor out;
        try (var g = Autograd.noGrad()) {
            out = x.to(DType.promote(x.dtype(), src.dtype())).copy();
        }
        out.backend().indexAdd(out, d, index, src);
        if (!out.dtype().floating) return out;
        return Autograd.record("indexAdd", out, new IndexAddBackward(d, index), x, index, src);
    }

    /** out = x + src added at index: dx = dy, dsrc = dy's slices at index. */
    record IndexAddBackward(int dim, Tensor index) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {dy, null, needs[2] ? dy.indexSelect(dim, index) : null};
        }
    }

    static Tensor embedding(Tensor weight, Tensor ids) {
        if (weight.rank() < 1) throw Check.fail("embedding", "weight must have a first (vocabulary) axis");
        Tensor rows = indexSelect(weight, 0, ids.reshape(-1));
        int[] s = Arrays.copyOf(ids.shape(), ids.rank() + weight.rank() - 1);
        System.arraycopy(weight.shape(), 1, s, ids.rank(), weight.rank() - 1);
        return rows.reshape(s);
    }

    static Tensor gather(Tensor x, int dim, Tensor index) {
        int d = Check.dim("gather", dim, x.rank());
        Check.index("gather", index);
        if (index.rank() != x.rank()) throw Check.fail("gather", "index %s and input %s differ in rank", Check.str(index.shape()), Check.str(x.shape()));
        for (int i = 0; i < x.rank(); i++)
            if (i != d && index.shape()[i] > x.shape()[i])
                throw Check.fail("gather", "index %s exceeds input %s on axis %d", Check.str(index.shape()), Check.str(x.shape()), i);
        checkRange("gather", index, x.shape()[d]);
        Tensor out = Tensor.empty(x.device(), x.dtype(), index.shape());
        x.backend().gather(x, d, index, out);
        if (!x.dtype().floating) return out;
        return Autograd.record("gather", out, new GatherBackward(d, index, x.shape()), x, index);
    }

    /** dx = zeros(x) with dy scattered (added) at index along dim. */
    record GatherBackward(int dim, Tensor index, int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = Tensor.zeros(dy.device(), dy.dtype(), inputShape);
            dx.backend().scatterAdd(dx, dim, index, dy);
            return new Tensor[] {dx, null};
        }
    }

    static Tensor scatterAdd(Tensor x, int dim, Tensor index, Tensor src) {
        int d = Check.dim("scatterAdd", dim, x.rank());
        Check.index("scatterAdd", index);
        if (!Arrays.equals(index.shape(), src.shape()))
            throw Check.fail("scatterAdd", "index %s and src %s must have one shape", Check.str(index.shape()), Check.str(src.shape()));
        if (index.rank() != x.rank()) throw Check.fail("scatterAdd", "index %s and input %s differ in rank", Check.str(index.shape()), Check.str(x.shape()));
        checkRange("scatterAdd", index, x.shape()[d]);
        Tensor out;
        try (var g = Autograd.noGrad()) {                    // a plain copy to write into: the record below is the op's
            out = x.to(DType.promote(x.dtype(), src.dtype())).copy();
        }
        out.backend().scatterAdd(out, d, index, src);
        if (!out.dtype().floating) return out;
        return Autograd.record("scatterAdd", out, new ScatterAddBackward(d, index), x, index, src);
    }

    /** out = x + src scattered at index: dx = dy, dsrc = dy gathered at index. */
    record ScatterAddBackward(int dim, Tensor index) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {dy, null, needs[2] ? dy.gather(dim, index) : null};
        }
    }

    static Tensor cat(List<Tensor> tensors, int dim) {
        if (tensors.isEmpty()) throw Check.fail("cat", "no tensors");
        Tensor first = tensors.get(0);
        int d = Check.dim("cat", dim, first.rank());
        int[] s = first.shape();
        int total = 0;
        DType type = first.dtype();
        for (Tensor t : tensors) {
            Check.sameDevice("cat", first, t);
            int[] ts = t.shape();
            if (ts.length != s.length) throw Check.fail("cat", "tensors %s and %s differ in rank", Check.str(s), Check.str(ts));
            for (int i = 0; i < s.length; i++)
                if (i != d && ts[i] != s[i]) throw Check.fail("cat", "tensors %s and %s differ on axis %d (joining axis %d)", Check.str(s), Check.str(ts), i, d);
            total += ts[d];
            type = DType.promote(type, t.dtype());
        }
        s[d] = total;
        Tensor out = Tensor.empty(first.device(), type, s);
        int[] starts = new int[tensors.size()];
        try (var g = Autograd.noGrad()) {
            int at = 0;
            for (int i = 0; i < tensors.size(); i++) {
                Tensor t = tensors.get(i);
                starts[i] = at;
                Tensor slot = out.narrow(d, at, t.shape()[d]);
                out.backend().copy(t, slot);
                at += t.shape()[d];
            }
        }
        if (!type.floating) return out;
        Tensor[] inputs = tensors.toArray(new Tensor[0]);
        int[] lengths = new int[inputs.length];
        DType[] types = new DType[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            lengths[i] = inputs[i].shape()[d];
            types[i] = inputs[i].dtype();
        }
        return Autograd.record("cat", out, new CatBackward(d, starts, lengths, types), inputs);
    }

    /** dx_i = dy's slice [start_i, start_i + length_i) along dim, in input i's dtype. */
    record CatBackward(int dim, int[] starts, int[] lengths, DType[] dtypes) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor[] dx = new Tensor[starts.length];
            for (int i = 0; i < starts.length; i++)
                if (needs[i]) dx[i] = dy.narrow(dim, starts[i], lengths[i]).to(dtypes[i]);
            return dx;
        }
    }

    static Tensor stack(List<Tensor> tensors, int dim) {
        if (tensors.isEmpty()) throw Check.fail("stack", "no tensors");
        int d = Check.dim("stack", dim, tensors.get(0).rank() + 1);
        List<Tensor> parts = new ArrayList<>();
        for (Tensor t : tensors) {
            if (!Arrays.equals(t.shape(), tensors.get(0).shape()))
                throw Check.fail("stack", "tensors %s and %s differ in shape", Check.str(tensors.get(0).shape()), Check.str(t.shape()));
            parts.add(t.unsqueeze(d));
        }
        return cat(parts, d);
    }

    static List<Tensor> split(Tensor x, int size, int dim) {
        int d = Check.dim("split", dim, x.rank());
        if (size <= 0) throw Check.fail("split", "size %d must be positive", size);
        List<Tensor> out = new ArrayList<>();
        for (int at = 0; at < x.shape()[d]; at += size) out.add(x.narrow(d, at, Math.min(size, x.shape()[d] - at)));
        return out;
    }

    static List<Tensor> chunk(Tensor x, int chunks, int dim) {
        int d = Check.dim("chunk", dim, x.rank());
        if (chunks <= 0) throw Check.fail("chunk", "chunks %d must be positive", chunks);
        int n = x.shape()[d];
        return split(x, Math.max(1, (n + chunks - 1) / chunks), d);
    }

    static Tensor argsort(Tensor x, int dim, boolean descending) {
        int d = Check.dim("argsort", dim, x.rank());
        try (var g = Autograd.noGrad()) {
            Tensor last = x.transpose(d, -1).contiguous();
            Tensor idx = Tensor.empty(x.device(), DType.I64, last.shape());
            x.backend().argsort(last, descending, idx);
            return idx.transpose(d, -1).contiguous();
        }
    }

    static Tensor.Sorted sort(Tensor x, int dim, boolean descending) {
        Tensor idx = argsort(x, dim, descending);
        return new Tensor.Sorted(x.gather(dim, idx), idx);
    }

    static Tensor.Sorted topk(Tensor x, int k, int dim, boolean largest) {
        int d = Check.dim("topk", dim, x.rank());
        if (k < 0 || k > x.shape()[d]) throw Check.fail("topk", "k=%d for dim %d of size %d", k, d, x.shape()[d]);
        Tensor idx = argsort(x, d, largest).narrow(d, 0, k).contiguous();
        return new Tensor.Sorted(x.gather(d, idx), idx);
    }

    static Tensor cumsum(Tensor x, int dim) {
        int d = Check.dim("cumsum", dim, x.rank());
        DType type = x.dtype().floating ? x.dtype() : DType.I64;
        Tensor out;
        try (var g = Autograd.noGrad()) {
            Tensor last = x.transpose(d, -1).contiguous();
            Tensor y = Tensor.empty(x.device(), type, last.shape());
            x.backend().cumsum(last, y, false);
            out = y.transpose(d, -1).contiguous();
        }
        if (!type.floating) return out;
        return Autograd.record("cumsum", out, new CumsumBackward(d), x);
    }

    /** dx_i = Σ_{j ≥ i} dy_j along dim: a reversed running sum. */
    record CumsumBackward(int dim) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor last = dy.transpose(dim, -1).contiguous();
            Tensor r = Tensor.empty(dy.device(), dy.dtype(), last.shape());
            dy.backend().cumsum(last, r, true);
            return new Tensor[] {r.transpose(dim, -1).contiguous()};
        }
    }

    static Tensor oneHot(Tensor ids, int classes) {
        Check.index("oneHot", ids);
        checkRange("oneHot", ids, classes);
        return ids.unsqueeze(-1).eq(Tensor.arange(classes).to(ids.device())).to(DType.I64);
    }

    /** Zero padding; amounts pair up from the last axis backwards, as in torch.nn.functional.pad. */
    static Tensor pad(Tensor x, int[] amounts) {
        if (amounts.length % 2 != 0 || amounts.length / 2 > x.rank())
            throw Check.fail("pad", "%d amounts for a tensor of rank %d", amounts.length, x.rank());
        int[] s = x.shape();
        int[] before = new int[s.length];
        for (int i = 0; i < amounts.length / 2; i++) {
            int axis = s.length - 1 - i;
            if (amounts[2 * i] < 0 || amounts[2 * i + 1] < 0) throw Check.fail("pad", "negative amount in %s", Arrays.toString(amounts));
            before[axis] = amounts[2 * i];
            s[axis] += amounts[2 * i] + amounts[2 * i + 1];
        }
        Tensor out = Tensor.zeros(x.device(), x.dtype(), s);
        int[] xs = x.shape();
        try (var g = Autograd.noGrad()) {
            Tensor slot = out;
            for (int a = 0; a < xs.length; a++) slot = slot.narrow(a, before[a], xs[a]);
            out.backend().copy(x, slot);
        }
        if (!x.dtype().floating) return out;
        return Autograd.record("pad", out, new PadBackward(before, xs), x);
    }

    /** dx = the unpadded window of dy. */
    record PadBackward(int[] before, int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor g = dy;
            for (int a = 0; a < inputShape.length; a++) g = g.narrow(a, before[a], inputShape[a]);
            return new Tensor[] {g};
        }
    }

    /** Every index in [0, size): checked by the index's backend, on a device without a host synchronisation. */
    private static void checkRange(String op, Tensor index, long size) {
        index.backend().checkIndex(op, index, size);
    }
}

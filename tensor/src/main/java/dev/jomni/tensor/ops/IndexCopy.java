package dev.jomni.tensor.ops;

import dev.jomni.tensor.Check;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import java.util.Arrays;

/**
 * dst[index[i]] ← src[i] along the first axis, in place (PyTorch's {@code index_copy_(0, index, src)}): the
 * writes of a step's new keys and values into the slots of a paged KV cache, one launch for the whole batch.
 * Inference only: no gradient is recorded. Indices must be distinct (which of two writes to one row lands is
 * left to the backend) and in [0, dst.size(0)); the index's backend checks the range (on a device without a
 * host synchronisation, raised at the next one).
 *
 * <p>Shapes: dst [N, ...] contiguous; src [n, ...] with dst's trailing shape and dtype; index [n] I64 or I32.
 */
public final class IndexCopy {
    private IndexCopy() {}

    /** What a backend implements: dst [N, R] row-major (R elements a row), src [n, R] contiguous, index [n] contiguous. */
    public interface Kernels {
        /** For i in [0, n): row index[i] of dst ← row i of src, bit for bit. */
        void indexCopy(Tensor dst, Tensor index, Tensor src);
    }

    /** Copies the rows of {@code src} into the rows {@code index} of {@code dst}; returns dst. */
    public static Tensor indexCopy(Tensor dst, Tensor index, Tensor src) {
        Check.index("indexCopy", index);
        Check.sameDevice("indexCopy", dst, src);
        Check.sameDevice("indexCopy", dst, index);
        if (dst.rank() < 1 || src.rank() != dst.rank() || index.rank() != 1 || src.size(0) != index.size(0)
                || !Arrays.equals(Arrays.copyOfRange(dst.shape(), 1, dst.rank()), Arrays.copyOfRange(src.shape(), 1, src.rank())))
            throw Check.fail("indexCopy", "needs dst [N, ...], src [n, ...] of dst's trailing shape and index [n]; got dst %s, src %s, index %s",
                    Check.str(dst.shape()), Check.str(src.shape()), Check.str(index.shape()));
        if (dst.dtype() != src.dtype())
            throw Check.fail("indexCopy", "dst is %s, src %s: one dtype", dst.dtype().lower(), src.dtype().lower());
        if (!dst.isContiguous()) throw Check.fail("indexCopy", "dst %s must be contiguous (it is written in place)", Check.str(dst.shape()));
        if (index.numel() == 0) return dst;
        Backend backend = Backend.of(dst);
        backend.checkIndex("indexCopy", index, dst.size(0));
        Tensor s = src.contiguous(), i = index.contiguous();
        backend.kernels(Kernels.class).indexCopy(dst, i, s);
        if (s != src) s.close();
        if (i != index) i.close();
        return dst;
    }
}

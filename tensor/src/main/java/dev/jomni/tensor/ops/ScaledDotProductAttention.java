package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.TensorAccess;
import java.util.Arrays;

/**
 * O = softmax(scale · Q Kᵀ + mask) V per batch row and query head, with grouped-query attention:
 * query head h reads kv head ⌊h / (nh / nkv)⌋, without expanding or copying K and V. The mask is
 * described ({@link AttentionMask}: causal with an offset, key padding, block-diagonal segments),
 * never a dense [T, S] tensor. Forward saves O and the log-sum-exp L = m + log Σ exp(s − m) of each
 * query row (f32; f64 for f64 inputs), and backward recomputes the scores blockwise from them
 * (FlashAttention-2, arXiv:2307.08691): D = rowsum(dO ∘ O), P = exp(S − L), dS = P ∘ (dP − D).
 *
 * <p>Shapes: q [B, nh, T, d]; k, v [B, nkv, S, d] (nh a multiple of nkv); out [B, nh, T, d].
 * Numerics, as the composition it replaced (scores → f32 softmax → probabilities cast to the
 * activation dtype → probs @ v): scores and softmax statistics in at least f32, the probabilities
 * rounded to the activation dtype before they multiply V, products accumulated in at least f32,
 * the output rounded once.
 */
public final class ScaledDotProductAttention {
    private ScaledDotProductAttention() {}

    /**
     * A backend's attention kernels. Every tensor argument has unit stride on its last axis (d) and
     * any strides on the others (q and the output are transposed views of [B, T, nh, d] in the
     * decoder; k, v may be the first S positions of a preallocated cache [B, nkv, capacity, d]).
     * Results must not depend on the thread count (split by (batch, head, block), never across a
     * reduction). The mask's keyMask is a contiguous bool [B, S] on the same device; its segment
     * offsets are host ints (a launcher copies them to the device with the launch).
     */
    public interface Kernels {
        /**
         * out ← attention(q, k, v), lse ← the log-sum-exp of each query row's scaled, masked scores
         * (+∞ where the row sees no key, whose output is 0).
         *
         * @param out [B, nh, T, d], q's dtype
         * @param lse [B, nh, T] contiguous, f32 (f64 for f64 inputs)
         */
        void forward(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale, Tensor out, Tensor lse);

        /**
         * The gradients from the saved out and lse. A null output is not needed: skip its work.
         *
         * @param dOut [B, nh, T, d]
         * @param dq   null, or [B, nh, T, d] contiguous, q's dtype
         * @param dk   null, or [B, nkv, S, d] contiguous, k's dtype (summed over the heads of its group)
         * @param dv   null, or [B, nkv, S, d] contiguous, v's dtype
         */
        void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, AttentionMask mask, double scale,
                      Tensor dq, Tensor dk, Tensor dv);

        /**
         * One query per (batch row, head) over a paged cache: out[b, h] = softmax(scale · q[b, h] · Kᵀ) V over
         * the first seqLens[b] tokens of row b, token j at row j % blockSize of block blockTable[b, j / blockSize]
         * of kCache and vCache (query head h reads kv head h / (nh / nkv)). Probabilities are not rounded to
         * the activation dtype (f32 or better throughout); a row with no token gives out 0 and lse +∞.
         *
         * @param q          [B, nh, 1, d]
         * @param kCache     [blocks, nkv, blockSize, d] (vCache alike)
         * @param blockTable int32 [B, maxBlocks] contiguous, entries in [0, blocks) where read
         * @param seqLens    int32 [B] contiguous, each in [0, maxBlocks · blockSize]
         * @param out        [B, nh, 1, d], q's dtype
         * @param lse        [B, nh, 1] contiguous, f32 (f64 for f64 inputs)
         */
        void decode(Tensor q, Tensor kCache, Tensor vCache, Tensor blockTable, Tensor seqLens, double scale, Tensor out, Tensor lse);

        /** Whether {@link #decode} takes caches of this dtype and head size (a device's kernels may cover only some). */
        default boolean decodes(DType dtype, int headDim) { return true; }
    }

    /** Whether {@link #decode} runs on {@code device} for caches of {@code dtype} with heads of {@code headDim}. */
    public static boolean decodes(dev.jomni.tensor.Device device, DType dtype, int headDim) {
        return Backend.of(device).kernels(Kernels.class).decodes(dtype, headDim);
    }

    /** With the default scale 1/√d. */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask) {
        return scaledDotProductAttention(q, k, v, mask, 1 / Math.sqrt(q.size(-1)));
    }

    /**
     * @param q    [B, nh, T, d]
     * @param k    [B, nkv, S, d]
     * @param v    [B, nkv, S, d]
     * @param mask which keys each query sees (null: all)
     * @return [B, nh, T, d], laid out as [B, T, nh, d] (so that merging the heads is a view)
     */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale) {
        AttentionMask m = mask == null ? AttentionMask.none() : mask;
        check(q, k, v, m, scale);
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3);
        Tensor qu = unitLast(q), ku = unitLast(k), vu = unitLast(v);
        Tensor out = Tensor.empty(q.device(), q.dtype(), b, t, nh, d).permute(0, 2, 1, 3);   // [B, nh, T, d] over [B, T, nh, d]
        Tensor lse = Tensor.empty(q.device(), q.dtype().atLeastF32(), b, nh, t);
        Backend.of(q).kernels(Kernels.class).forward(qu, ku, vu, m, scale, out, lse);
        return Autograd.record("scaledDotProductAttention", out, new Saved(qu, ku, vu, out, lse, m, scale), q, k, v);
    }

    /**
     * Decode attention over a paged KV cache (inference: no gradient), as {@link Kernels#decode} describes, with
     * the default scale 1/√d.
     *
     * @param q          [B, nh, 1, d]
     * @param kCache     [blocks, nkv, blockSize, d]
     * @param vCache     [blocks, nkv, blockSize, d]
     * @param blockTable int32 [B, maxBlocks]: the cache blocks of each batch row, in token order
     * @param seqLens    int32 [B]: the tokens of each batch row
     * @return [B, nh, 1, d], q's dtype
     */
    public static Tensor decode(Tensor q, Tensor kCache, Tensor vCache, Tensor blockTable, Tensor seqLens) {
        String shapes = "q " + q.dtype().lower() + Arrays.toString(q.shape()) + ", kCache " + kCache.dtype().lower() + Arrays.toString(kCache.shape())
                + ", vCache " + Arrays.toString(vCache.shape()) + ", blockTable " + blockTable.dtype().lower() + Arrays.toString(blockTable.shape())
                + ", seqLens " + seqLens.dtype().lower() + Arrays.toString(seqLens.shape());
        if (q.rank() != 4 || q.size(2) != 1 || kCache.rank() != 4 || !Arrays.equals(kCache.shape(), vCache.shape()))
            throw decodeFail("needs q [B, nh, 1, d] and kCache, vCache [blocks, nkv, blockSize, d] of one shape; got " + shapes);
        if (!q.dtype().floating || q.dtype() != kCache.dtype() || q.dtype() != vCache.dtype())
            throw decodeFail("q, kCache and vCache must share one floating dtype; got " + shapes);
        int b = q.size(0), nh = q.size(1), d = q.size(3), nkv = kCache.size(1);
        if (kCache.size(3) != d || nkv == 0 || nh % nkv != 0)
            throw decodeFail("kCache must be [blocks, nkv, blockSize, d=" + d + "] with nh=" + nh + " a multiple of nkv; got " + shapes);
        if (blockTable.dtype() != DType.I32 || blockTable.rank() != 2 || blockTable.size(0) != b || !blockTable.isContiguous())
            throw decodeFail("blockTable must be a contiguous int32 [B=" + b + ", maxBlocks]; got " + shapes);
        if (seqLens.dtype() != DType.I32 || seqLens.rank() != 1 || seqLens.size(0) != b || !seqLens.isContiguous())
            throw decodeFail("seqLens must be a contiguous int32 [B=" + b + "]; got " + shapes);
        for (Tensor x : new Tensor[] {kCache, vCache, blockTable, seqLens})
            if (!x.device().equals(q.device())) throw decodeFail("q on " + q.device() + ", an input on " + x.device() + "; got " + shapes);
        Tensor out = Tensor.empty(q.device(), q.dtype(), b, nh, 1, d);
        Tensor lse = Tensor.empty(q.device(), q.dtype().atLeastF32(), b, nh, 1);
        Backend.of(q).kernels(Kernels.class).decode(unitLast(q), unitLast(kCache), unitLast(vCache), blockTable, seqLens, 1 / Math.sqrt(d), out, lse);
        lse.close();
        return out;
    }

    private static IllegalArgumentException decodeFail(String message) {
        return new IllegalArgumentException("scaledDotProductAttention decode: " + message);
    }

    /** What backward reads: the inputs, the output and each query row's log-sum-exp (no scores). */
    record Saved(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionMask mask, double scale) implements Autograd.Backward {
        @Override
        public Tensor[] apply(Tensor dOut, boolean[] needs) {
            Tensor dq = needs[0] ? Tensor.empty(q.device(), q.dtype(), q.shape()) : null;
            Tensor dk = needs[1] ? Tensor.empty(k.device(), k.dtype(), k.shape()) : null;
            Tensor dv = needs[2] ? Tensor.empty(v.device(), v.dtype(), v.shape()) : null;
            if (dq != null || dk != null || dv != null)
                Backend.of(q).kernels(Kernels.class).backward(q, k, v, out, lse, unitLast(dOut), mask, scale, dq, dk, dv);
            return new Tensor[] {dq, dk, dv};
        }
    }

    /** The tensor itself when its last axis has unit stride (what the kernels read), else a contiguous copy. */
    private static Tensor unitLast(Tensor x) {
        return TensorAccess.strides(x)[x.rank() - 1] == 1 || x.size(-1) == 1 ? x : x.contiguous();
    }

    private static void check(Tensor q, Tensor k, Tensor v, AttentionMask m, double scale) {
        String shapes = "q " + q.dtype().lower() + Arrays.toString(q.shape()) + ", k " + k.dtype().lower() + Arrays.toString(k.shape())
                + ", v " + v.dtype().lower() + Arrays.toString(v.shape());
        if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
            throw fail("needs q [B, nh, T, d] and k, v [B, nkv, S, d]; got " + shapes);
        if (!q.dtype().floating || q.dtype() != k.dtype() || q.dtype() != v.dtype())
            throw fail("q, k and v must share one floating dtype; got " + shapes);
        if (!q.device().equals(k.device()) || !q.device().equals(v.device()))
            throw fail("q, k, v on different devices: " + q.device() + ", " + k.device() + ", " + v.device());
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3), nkv = k.size(1), s = k.size(2);
        if (!Arrays.equals(k.shape(), v.shape()))
            throw fail("k and v must have one shape; got " + shapes);
        if (k.size(0) != b || k.size(3) != d)
            throw fail("k, v must be [B=" + b + ", nkv, S, d=" + d + "]; got " + shapes);
        if (nkv == 0 || nh % nkv != 0)
            throw fail("query heads nh=" + nh + " must be a multiple of kv heads nkv=" + nkv + "; got " + shapes);
        if (!(scale > 0) || Double.isInfinite(scale))
            throw fail("scale " + scale + " must be positive and finite");
        if (m.keyMask() != null) {
            Tensor km = m.keyMask();
            if (km.size(0) != b || km.size(1) != s)
                throw fail("keyMask " + Arrays.toString(km.shape()) + " must be [B=" + b + ", S=" + s + "]; " + shapes);
            if (!km.device().equals(q.device()))
                throw fail("keyMask on " + km.device() + ", q on " + q.device());
        }
        if (m.segmentOffsets() != null && (t != s || m.segmentTotal() != t))
            throw fail("segments cover " + m.segmentTotal() + " rows; they need T = S = that, got " + shapes);
    }

    private static IllegalArgumentException fail(String message) {
        return new IllegalArgumentException("scaledDotProductAttention: " + message);
    }
}

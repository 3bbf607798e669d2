package dev.jomni.tensor.ops;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;

/**
 * Which keys each query of {@link ScaledDotProductAttention} may see, described instead of spelled
 * out as a dense [T, S] matrix (so long audio never builds one, and a flash kernel can skip whole
 * blocks). Key j is visible to query i when every part that is present allows it:
 * <ul>
 *   <li>{@code causal}: query i sits at absolute position {@code past + i} and sees keys j ≤ past + i
 *       (decoding after {@code past} cached tokens);</li>
 *   <li>{@code keyMask} [B, S] bool: key j of batch row b is a token (true) or padding (false), as
 *       transformers' {@code attention_mask} rows;</li>
 *   <li>{@code segmentOffsets} [G + 1], 0 = o₀ &lt; o₁ &lt; … &lt; o_G = T = S (flash-attn's
 *       {@code cu_seqlens}): query i in [o_g, o_{g+1}) sees only keys in the same range
 *       (block-diagonal: the audio encoder's windows, packed sequences).</li>
 * </ul>
 * A query that sees no key at all outputs 0 (and its log-sum-exp is +∞), as flash attention does.
 *
 * @param past           positions before the first query; 0 unless causal
 * @param keyMask        null, or [B, S] bool on the queries' device
 * @param segmentOffsets null, or cumulative segment lengths starting at 0
 */
public record AttentionMask(boolean causal, int past, Tensor keyMask, int[] segmentOffsets) {
    private static final AttentionMask NONE = new AttentionMask(false, 0, null, null);

    public AttentionMask {
        if (past < 0 || (!causal && past != 0))
            throw new IllegalArgumentException("AttentionMask: past=" + past + " (must be ≥ 0, and 0 unless causal)");
        if (keyMask != null && (keyMask.dtype() != DType.BOOL || keyMask.rank() != 2))
            throw new IllegalArgumentException("AttentionMask: keyMask must be bool [B, S], got "
                    + keyMask.dtype().lower() + Arrays.toString(keyMask.shape()) + " (use withKeyMask to convert 0/1 rows)");
        if (segmentOffsets != null) {
            segmentOffsets = segmentOffsets.clone();
            if (segmentOffsets.length < 2 || segmentOffsets[0] != 0)
                throw new IllegalArgumentException("AttentionMask: segmentOffsets " + Arrays.toString(segmentOffsets) + " must start at 0 and hold at least one segment");
            for (int g = 1; g < segmentOffsets.length; g++)
                if (segmentOffsets[g] <= segmentOffsets[g - 1])
                    throw new IllegalArgumentException("AttentionMask: segmentOffsets " + Arrays.toString(segmentOffsets) + " must increase (segments are not empty)");
        }
    }

    /** Every query sees every key. */
    public static AttentionMask none() { return NONE; }

    /** Query i sees keys j ≤ past + i. */
    public static AttentionMask causal(int past) { return new AttentionMask(true, past, null, null); }

    /** Block-diagonal over consecutive segments of these lengths (summing to T = S). */
    public static AttentionMask blockDiagonal(int... lengths) {
        int[] offsets = new int[lengths.length + 1];
        for (int g = 0; g < lengths.length; g++) {
            if (lengths[g] <= 0) throw new IllegalArgumentException("AttentionMask.blockDiagonal: segment " + g + " has length " + lengths[g] + " in " + Arrays.toString(lengths));
            offsets[g + 1] = Math.addExact(offsets[g], lengths[g]);
        }
        return new AttentionMask(false, 0, null, offsets);
    }

    /** This mask, also hiding the keys where {@code rows} [B, S] (0/1 of any integer or bool dtype) is 0. */
    public AttentionMask withKeyMask(Tensor rows) {
        Tensor bool = rows.dtype() == DType.BOOL ? rows : rows.ne(0);
        return new AttentionMask(causal, past, bool.contiguous(), segmentOffsets);
    }

    /** Number of rows the segments cover (T = S), or −1 without segments. */
    public int segmentTotal() { return segmentOffsets == null ? -1 : segmentOffsets[segmentOffsets.length - 1]; }

    /** The segment offsets (a copy), or null. */
    @Override public int[] segmentOffsets() { return segmentOffsets == null ? null : segmentOffsets.clone(); }

    /**
     * The keys query i may see lie in [lo[i], hi[i]) (then filtered by keyMask): causal and segments
     * both cut one contiguous range, which lets kernels skip whole key blocks. Host arithmetic only.
     */
    public int[][] keyRanges(int t, int s) {
        int[] lo = new int[t], hi = new int[t];
        int g = 0;
        for (int i = 0; i < t; i++) {
            lo[i] = 0;
            hi[i] = s;
            if (segmentOffsets != null) {
                while (segmentOffsets[g + 1] <= i) g++;
                lo[i] = segmentOffsets[g];
                hi[i] = segmentOffsets[g + 1];
            }
            if (causal) hi[i] = Math.min(hi[i], past + i + 1);
            if (hi[i] < lo[i]) hi[i] = lo[i];
        }
        return new int[][] {lo, hi};
    }

    @Override public String toString() {
        return "AttentionMask[" + (causal ? "causal past=" + past : "bidirectional")
                + (keyMask != null ? ", keyMask " + Arrays.toString(keyMask.shape()) : "")
                + (segmentOffsets != null ? ", segments " + (segmentOffsets.length - 1) : "") + "]";
    }
}

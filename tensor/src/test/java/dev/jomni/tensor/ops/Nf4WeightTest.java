package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The stacking quantizer: pieces in order give quantize()'s bytes; re-stacked NF4 pieces keep their codes. */
class Nf4WeightTest {
    @Test
    void rowsGivenPieceByPieceGiveTheBytesOfTheWholeQuantized() {
        var gen = new Generator(31);
        // 3 pieces of 40 rows × 128: 240 blocks, so the nested blocks of 256 cross the piece boundaries.
        List<Tensor> pieces = List.of(Tensor.randn(gen, DType.BF16, 40, 128).mul(0.02), Tensor.randn(gen, DType.BF16, 40, 128).mul(0.05),
                Tensor.randn(gen, DType.BF16, 40, 128).mul(0.01));
        var b = new Nf4Weight.Builder("experts.gate_up_proj", 120, 128);
        for (Tensor p : pieces) b.add(p);
        Nf4Weight stacked = b.build(DType.BF16), whole = Nf4Weight.quantize("whole", Tensor.cat(pieces, 0));
        assertBytesEqual(whole, stacked);
        // bf16 rows are read as raw bits, f32 ones as floats: the same values give the same bytes.
        assertBytesEqual(whole, Nf4Weight.quantize("f32", Tensor.cat(pieces, 0).to(DType.F32)));
        var e = assertThrows(IllegalStateException.class, () -> new Nf4Weight.Builder("x", 2, 64).add(Tensor.randn(gen, DType.F32, 1, 64)).build(DType.F32));
        assertTrue(e.getMessage().contains("x: 1 of 2 rows given"), e.getMessage());
        var o = assertThrows(IllegalArgumentException.class, () -> new Nf4Weight.Builder("y", 1, 64).add(Tensor.randn(gen, DType.F32, 2, 64)));
        assertTrue(o.getMessage().contains("y: 2 more rows overflow [1, 64]"), o.getMessage());
    }

    /**
     * Pieces quantized on their own (a bnb checkpoint's per-expert weights), then stacked: the codes are the pieces'
     * own, and each absmax moves from the piece's dequantized value by at most half a step of the dynamic map times
     * the stack's nested absmax (plus f32 rounding).
     */
    @Test
    void restackedPiecesKeepTheirCodesAndTheAbsmaxStaysWithinTheBound() {
        var gen = new Generator(32);
        int rows = 48, cols = 192;
        var b = new Nf4Weight.Builder("experts.down_proj", 4 * rows, cols);
        Nf4Weight[] parts = new Nf4Weight[4];
        for (int i = 0; i < 4; i++) b.add(parts[i] = Nf4Weight.quantize("expert " + i, Tensor.randn(gen, DType.BF16, rows, cols).mul(0.01 * (i + 1))));
        Nf4Weight s = b.build(DType.BF16);
        long[] codes = s.packed().toLongArray(), q = s.absmax().toLongArray();
        float[] map = s.nestedCode().toFloatArray(), nested = s.nestedAbsmax().toFloatArray();
        float half = Nf4Weight.dynamicMapHalfStep();
        assertTrue(half > 0.00703f && half < 0.00704f, "half of the widest gap, 0.9/128: " + half);
        int perPart = rows * cols / 64;
        double worst = 0;
        for (int i = 0; i < 4; i++) {
            long[] own = parts[i].packed().toLongArray();
            for (int j = 0; j < own.length; j++) assertEquals(own[j], codes[i * own.length + j], "code byte " + j + " of piece " + i);
            long[] pq = parts[i].absmax().toLongArray();
            float[] pm = parts[i].nestedCode().toFloatArray(), pn = parts[i].nestedAbsmax().toFloatArray();
            for (int k = 0; k < perPart; k++) {
                int blk = i * perPart + k;
                double before = Nf4Weight.absmax(pm, (int) pq[k], pn, k, parts[i].offset());
                double after = Nf4Weight.absmax(map, (int) q[blk], nested, blk, s.offset());
                double bound = half * nested[blk / 256] + 1e-6 * Math.abs(before);
                worst = Math.max(worst, Math.abs(after - before) / (half * nested[blk / 256]));
                assertTrue(Math.abs(after - before) <= bound, String.format("block %d: %.8g re-stacked as %.8g, bound %.3g", blk, before, after, bound));
            }
        }
        System.out.printf("nf4 re-stack: worst absmax change %.3f of the bound%n", worst);
    }

    /**
     * The device quantizer's host step: a sum taken as exact in any order is the sequential one for every shuffle; the
     * test refuses sums that need more than 53 bits (there, two orders differ) and accepts non-finite and zero sums.
     */
    @Test
    void aSumExactInAnyOrderIsTheSequentialSum() {
        var r = new java.util.Random(41);
        int exact = 0;
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + r.nextInt(5000), spread = r.nextInt(40);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) a[i] = Math.scalb(r.nextFloat(), -r.nextInt(spread + 1) - 3);
            double sequential = Nf4Weight.sum(a);
            int lowest = Integer.MAX_VALUE;
            for (float v : a)
                if (v > 0) lowest = Math.min(lowest, Math.getExponent(v) - 23 + Integer.numberOfTrailingZeros(Float.floatToRawIntBits(v) & 0x7fffff | 0x800000));
            float[] shuffled = a.clone();
            for (int i = n - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                float t = shuffled[i];
                shuffled[i] = shuffled[j];
                shuffled[j] = t;
            }
            double pairwise = pairwise(shuffled, 0, n);
            if (Nf4Weight.exactInAnyOrder(pairwise, lowest)) {
                assertEquals(sequential, pairwise, "trial " + trial + ": n " + n + ", spread 2^" + spread);
                exact++;
            }
        }
        assertTrue(exact > 20 && exact < 180, exact + " of 200 sums taken as exact: both kinds should occur");
        // 1 + 2^-60 + 2^-60 …: the sequential sum drops every small term; pairs of them first keep some. Refused.
        float[] wide = new float[1 << 10];
        Arrays.fill(wide, 0x1p-60f);
        wide[0] = 1f;
        assertTrue(Nf4Weight.sum(wide) != pairwise(wide, 0, wide.length), "the two orders differ here");
        assertFalse(Nf4Weight.exactInAnyOrder(pairwise(wide, 0, wide.length), -60));
        assertTrue(Nf4Weight.exactInAnyOrder(Double.NaN, 0));
        assertTrue(Nf4Weight.exactInAnyOrder(Double.POSITIVE_INFINITY, Integer.MAX_VALUE));
        assertTrue(Nf4Weight.exactInAnyOrder(0, Integer.MAX_VALUE));
        assertTrue(Nf4Weight.exactInAnyOrder(0x1p-149 * ((1L << 52) - 1), -149));
        assertFalse(Nf4Weight.exactInAnyOrder(0x1p-149 * (1L << 52), -149));
        assertEquals((float) (3.0 / 7), Nf4Weight.mean(3, 7));
    }

    private static double pairwise(float[] a, int from, int to) {
        if (to - from == 1) return a[from];
        int mid = (from + to) >>> 1;
        return pairwise(a, from, mid) + pairwise(a, mid, to);
    }

    static void assertBytesEqual(Nf4Weight want, Nf4Weight got) {
        assertEquals(want.rows(), got.rows());
        assertEquals(want.cols(), got.cols());
        assertEquals(want.offset(), got.offset());
        assertArrayEquals(want.packed().toLongArray(), got.packed().toLongArray(), "packed codes");
        assertArrayEquals(want.absmax().toLongArray(), got.absmax().toLongArray(), "absmax codes");
        assertArrayEquals(want.nestedAbsmax().toFloatArray(), got.nestedAbsmax().toFloatArray(), "nested absmax");
        assertArrayEquals(want.nestedCode().toFloatArray(), got.nestedCode().toFloatArray(), "nested map");
    }
}

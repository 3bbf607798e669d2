package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * scaledDotProductAttention against hand values, finite differences in f64, and the composition it
 * replaced (GQA by expanding K/V, a dense additive mask of the dtype's most negative value, softmax in
 * f32, probabilities cast back to the activation dtype before probs @ v).
 */
class ScaledDotProductAttentionTest {
    private static final Generator GEN = new Generator(20261203);

    private static Tensor randn(DType t, int... shape) { return Tensor.randn(GEN, DType.F64, shape).to(t).detach(); }

    // ---------------------------------------------------------------- the old composition

    /** [B, 1, T, S]: 0 where the mask lets query i see key j, else the dtype's most negative value. */
    static Tensor dense(AttentionMask m, int b, int t, int s, DType dtype) {
        double min = dtype == DType.F64 ? -Double.MAX_VALUE : dtype == DType.BF16 ? -3.3895313892515355e38 : dtype == DType.F16 ? -65504 : -Float.MAX_VALUE;
        int[][] r = m.keyRanges(t, s);
        double[] km = m.keyMask() == null ? null : m.keyMask().toDoubleArray();
        double[] a = new double[b * t * s];
        for (int x = 0; x < b; x++)
            for (int i = 0; i < t; i++)
                for (int j = 0; j < s; j++)
                    a[(x * t + i) * s + j] = j >= r[0][i] && j < r[1][i] && (km == null || km[x * s + j] != 0) ? 0 : min;
        return Tensor.fromDoubles(dtype, a, b, 1, t, s);
    }

    /** Which query rows [B, T] see at least one key (the composition averages all values on the others). */
    static boolean[] seesAKey(AttentionMask m, int b, int t, int s) {
        double[] d = dense(m, b, t, s, DType.F64).toDoubleArray();
        boolean[] out = new boolean[b * t];
        for (int x = 0; x < b * t; x++) for (int j = 0; j < s; j++) if (d[x * s + j] == 0) out[x] = true;
        return out;
    }

    /** Attention.java before this op: expand K/V to every head, dense scores, f32 softmax, probs in the activation dtype. */
    static Tensor composition(Tensor q, Tensor k, Tensor v, AttentionMask m, double scale) {
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3), nkv = k.size(1), s = k.size(2), group = nh / nkv;
        Tensor ke = k.unsqueeze(2).expand(b, nkv, group, s, d).reshape(b, nh, s, d);
        Tensor ve = v.unsqueeze(2).expand(b, nkv, group, s, d).reshape(b, nh, s, d);
        Tensor scores = q.matmul(ke.mT()).mul(scale).add(dense(m, b, t, s, q.dtype()));
        return scores.to(q.dtype().atLeastF32()).softmax(-1).to(q.dtype()).matmul(ve);
    }

    /** max |a − b| / max |b| over the query rows that see a key ([B, nh, T, d] tensors). */
    static double relError(Tensor got, Tensor want, boolean[] rows) {
        double[] a = got.toDoubleArray(), w = want.toDoubleArray();
        int nh = got.size(1), t = got.size(2), d = got.size(3);
        double num = 0, den = 0;
        for (int x = 0; x < a.length; x++) {
            int bb = x / (nh * t * d), i = x / d % t;
            if (rows != null && !rows[bb * t + i]) continue;
            num = Math.max(num, Math.abs(a[x] - w[x]));
            den = Math.max(den, Math.abs(w[x]));
        }
        return num / den;
    }

    static double relError(Tensor got, Tensor want) {
        double[] a = got.toDoubleArray(), w = want.toDoubleArray();
        double num = 0, den = 0;
        for (int x = 0; x < a.length; x++) {
            num = Math.max(num, Math.abs(a[x] - w[x]));
            den = Math.max(den, Math.abs(w[x]));
        }
        return num / den;
    }

    /** Key rows [B, S] of 0/1 with the given number of trailing (right) padding keys per batch row. */
    static Tensor keyRows(int s, int... padding) {
        long[] a = new long[padding.length * s];
        for (int x = 0; x < padding.length; x++) for (int j = 0; j < s - padding[x]; j++) a[x * s + j] = 1;
        return Tensor.of(a, padding.length, s);
    }

    // ---------------------------------------------------------------- hand values

    @Test
    void handValuesBidirectionalAndCausal() {
        // d = 1, scale 1: q = [1, 2], k = [1, 0], v = [10, 20].
        Tensor q = Tensor.of(new double[] {1, 2}, 1, 1, 2, 1), k = Tensor.of(new double[] {1, 0}, 1, 1, 2, 1);
        Tensor v = Tensor.of(new double[] {10, 20}, 1, 1, 2, 1);
        double e = Math.E, e2 = e * e;
        double[] all = ScaledDotProductAttention.scaledDotProductAttention(q, k, v, AttentionMask.none(), 1).toDoubleArray();
        assertArrayEquals(new double[] {(10 * e + 20) / (e + 1), (10 * e2 + 20) / (e2 + 1)}, all, 1e-12);
        double[] causal = ScaledDotProductAttention.scaledDotProductAttention(q, k, v, AttentionMask.causal(0), 1).toDoubleArray();
        assertArrayEquals(new double[] {10, (10 * e2 + 20) / (e2 + 1)}, causal, 1e-12, "query 0 sees key 0 only");
        // Decoding one query after one cached token sees both keys; padding key 1 leaves key 0.
        double[] decode = ScaledDotProductAttention.scaledDotProductAttention(q.narrow(2, 1, 1), k, v, AttentionMask.causal(1), 1).toDoubleArray();
        assertArrayEquals(new double[] {(10 * e2 + 20) / (e2 + 1)}, decode, 1e-12);
        double[] padded = ScaledDotProductAttention.scaledDotProductAttention(q, k, v, AttentionMask.none().withKeyMask(keyRows(2, 1)), 1).toDoubleArray();
        assertArrayEquals(new double[] {10, 10}, padded, 1e-12);
        // Default scale 1/√d with d = 4: q·k = 4 → score 2.
        Tensor q4 = Tensor.full(DType.F64, 1, 1, 1, 1, 4), k4 = Tensor.of(new double[] {1, 1, 1, 1, 0, 0, 0, 0}, 1, 1, 2, 4);
        Tensor v4 = Tensor.of(new double[] {1, 2, 3, 4, 5, 6, 7, 8}, 1, 1, 2, 4);
        double p0 = e2 / (e2 + 1);
        double[] o4 = q4.scaledDotProductAttention(k4, v4, null).toDoubleArray();
        for (int c = 0; c < 4; c++) assertEquals(p0 * (c + 1) + (1 - p0) * (c + 5), o4[c], 1e-12, "channel " + c);
    }

    @Test
    void queriesThatSeeNoKeyOutputZeroAndGetNoGradient() {
        Tensor q = randn(DType.F64, 1, 2, 3, 4).requiresGrad(true), k = randn(DType.F64, 1, 1, 3, 4).requiresGrad(true);
        Tensor v = randn(DType.F64, 1, 1, 3, 4).requiresGrad(true);
        // Left padding: key 0 is padding, so causal query 0 sees nothing.
        AttentionMask m = AttentionMask.causal(0).withKeyMask(Tensor.of(new long[] {0, 1, 1}, 1, 3));
        Tensor o = q.scaledDotProductAttention(k, v, m);
        double[] out = o.toDoubleArray();
        for (int h = 0; h < 2; h++) for (int c = 0; c < 4; c++) assertEquals(0, out[h * 12 + c], "head " + h + " query 0 channel " + c);
        o.mul(randn(DType.F64, 1, 2, 3, 4)).sum().backward();
        double[] dq = q.grad().toDoubleArray();
        for (int h = 0; h < 2; h++) for (int c = 0; c < 4; c++) assertEquals(0, dq[h * 12 + c]);
        for (double x : k.grad().toDoubleArray()) assertTrue(Double.isFinite(x));
        double[] dv = v.grad().toDoubleArray();
        for (int c = 0; c < 4; c++) assertEquals(0, dv[c], "padding key 0 gets no value gradient");
    }

    // ---------------------------------------------------------------- finite differences (f64)

    /** L = Σ f(x)·R; along a random direction per input, the analytic gradient against the central difference. */
    static void gradCheck(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        Generator gen = new Generator(name.hashCode());
        for (Tensor x : inputs) x.requiresGrad(true);
        Tensor out = f.apply(inputs);
        Tensor r = Tensor.randn(gen, DType.F64, out.shape());
        out.mul(r).sum().backward();
        for (int i = 0; i < inputs.length; i++) {
            Tensor dir = Tensor.randn(gen, DType.F64, inputs[i].shape());
            double analytic = inputs[i].grad().mul(dir).sum().item(), eps = 1e-6;
            double plus, minus;
            try (var g = Autograd.noGrad()) {
                Tensor[] moved = inputs.clone();
                moved[i] = inputs[i].detach().add(dir.mul(eps));
                plus = f.apply(moved).mul(r).sum().item();
                moved[i] = inputs[i].detach().add(dir.mul(-eps));
                minus = f.apply(moved).mul(r).sum().item();
            }
            double numeric = (plus - minus) / (2 * eps), err = Math.abs(analytic - numeric);
            assertTrue(err <= 1e-7 + 1e-6 * Math.abs(numeric),
                    String.format("%s: input %d: analytic %.12g vs numeric %.12g (error %.3g)", name, i, analytic, numeric, err));
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "causal GQA 4/2 keyMask past 0, 2, 4, 2, 9, 9, 5, causal, 0",
            "causal decode past 70 over 2 key blocks, 1, 2, 1, 3, 73, 4, causal, 70",
            "bidirectional MQA 3/1 S=67, 2, 3, 1, 5, 67, 3, none, 0",
            "block diagonal 4+7+2, 1, 2, 2, 13, 13, 6, segments, 0"})
    void gradientsMatchFiniteDifferences(String name, int b, int nh, int nkv, int t, int s, int d, String kind, int past) {
        AttentionMask m = switch (kind) {
            case "causal" -> AttentionMask.causal(past).withKeyMask(keyRows(s, b == 2 ? new int[] {0, 2} : new int[] {1}));
            case "segments" -> AttentionMask.blockDiagonal(4, 7, 2);
            default -> AttentionMask.none().withKeyMask(keyRows(s, b == 2 ? new int[] {3, 0} : new int[] {0}));
        };
        gradCheck(name, x -> ScaledDotProductAttention.scaledDotProductAttention(x[0], x[1], x[2], m, 0.7),
                randn(DType.F64, b, nh, t, d), randn(DType.F64, b, nkv, s, d), randn(DType.F64, b, nkv, s, d));
    }

    // ---------------------------------------------------------------- against the composition

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "T=1 decode after 30, 1, 30, causal, 2",
            "T=31 causal padded, 31, 0, causal, 3",
            "T=257 causal (blocks do not divide S), 257, 0, causal, 0",
            "T=100 bidirectional padded, 100, 0, none, 5",
            "T=100 block diagonal 13+64+23, 100, 0, segments, 0"})
    void f32MatchesTheCompositionForwardAndBackward(String name, int t, int past, String kind, int pad) {
        int b = 2, nh = 4, nkv = 2, d = 16, s = past + t;
        AttentionMask m = mask(kind, past, s, pad);
        Tensor q = randn(DType.F32, b, nh, t, d), k = randn(DType.F32, b, nkv, s, d), v = randn(DType.F32, b, nkv, s, d);
        Tensor q2 = q.detach().requiresGrad(true), k2 = k.detach().requiresGrad(true), v2 = v.detach().requiresGrad(true);
        q.requiresGrad(true);
        k.requiresGrad(true);
        v.requiresGrad(true);
        double scale = 1 / Math.sqrt(d);
        Tensor got = ScaledDotProductAttention.scaledDotProductAttention(q, k, v, m), want = composition(q2, k2, v2, m, scale);
        boolean[] rows = seesAKey(m, b, t, s);
        double e = relError(got, want, rows);
        System.out.printf("%s: f32 output relative error vs the composition %.3g%n", name, e);
        assertTrue(e < 2e-6, name + ": output relative error " + e);
        Tensor dOut = randn(DType.F32, b, nh, t, d);
        // The composition averages every value on rows that see no key; the op gives 0 there: weigh those rows 0.
        double[] wd = dOut.toDoubleArray();
        for (int x = 0; x < wd.length; x++) if (!rows[x / (nh * t * d) * t + x / d % t]) wd[x] = 0;
        dOut = Tensor.fromDoubles(DType.F32, wd, b, nh, t, d);
        got.backward(dOut);
        want.backward(dOut);
        for (String[] g : new String[][] {{"dq"}, {"dk"}, {"dv"}}) {
            Tensor a = g[0].equals("dq") ? q.grad() : g[0].equals("dk") ? k.grad() : v.grad();
            Tensor w = g[0].equals("dq") ? q2.grad() : g[0].equals("dk") ? k2.grad() : v2.grad();
            double ge = relError(a, w);
            assertTrue(ge < 1e-5, name + ": " + g[0] + " relative error " + ge);
        }
    }

    static AttentionMask mask(String kind, int past, int s, int pad) {
        return switch (kind) {
            case "causal" -> AttentionMask.causal(past).withKeyMask(keyRows(s, pad, 0));
            case "segments" -> AttentionMask.blockDiagonal(13, 64, 23);
            default -> AttentionMask.none().withKeyMask(keyRows(s, 0, pad));
        };
    }

    /**
     * bf16 against the old bf16 composition and against exact (f64) attention. The composition rounds
     * each score to bf16 (an error of up to 2⁻⁹·|s|) and the op does not, so the two differ by the
     * bf16 budget, and the op is the closer of the two to exact attention.
     */
    @Test
    void bf16IsWithinTheBf16BudgetOfTheCompositionAndCloserToExact() {
        int b = 2, nh = 4, nkv = 2, t = 97, d = 64;
        AttentionMask m = AttentionMask.causal(0).withKeyMask(keyRows(t, 5, 0));
        Tensor q = randn(DType.BF16, b, nh, t, d), k = randn(DType.BF16, b, nkv, t, d), v = randn(DType.BF16, b, nkv, t, d);
        boolean[] rows = seesAKey(m, b, t, t);
        Tensor got = ScaledDotProductAttention.scaledDotProductAttention(q, k, v, m);
        assertEquals(DType.BF16, got.dtype());
        Tensor old = composition(q, k, v, m, 1 / Math.sqrt(d));
        Tensor exact = composition(q.to(DType.F64), k.to(DType.F64), v.to(DType.F64), m, 1 / Math.sqrt(d));
        double vsOld = relError(got, old, rows), opVsExact = relError(got, exact, rows), oldVsExact = relError(old, exact, rows);
        System.out.printf("bf16 attention, relative error: op vs composition %.3g, op vs exact %.3g, composition vs exact %.3g%n", vsOld, opVsExact, oldVsExact);
        assertTrue(vsOld < 1e-2, "bf16 op vs bf16 composition " + vsOld);
        assertTrue(opVsExact < 5e-3, "bf16 op vs exact " + opVsExact);
        assertTrue(opVsExact <= oldVsExact, "op " + opVsExact + " vs composition " + oldVsExact + " (both against exact)");
    }

    @Test
    void groupedQueryHeadsMatchExplicitlyExpandedKeysAndValues() {
        int b = 2, nh = 6, nkv = 2, t = 11, s = 11, d = 8, group = nh / nkv;
        Tensor q = randn(DType.F64, b, nh, t, d).requiresGrad(true), k = randn(DType.F64, b, nkv, s, d).requiresGrad(true);
        Tensor v = randn(DType.F64, b, nkv, s, d).requiresGrad(true);
        Tensor q2 = q.detach().requiresGrad(true), k2 = k.detach().requiresGrad(true), v2 = v.detach().requiresGrad(true);
        AttentionMask m = AttentionMask.causal(0);
        Tensor gqa = q.scaledDotProductAttention(k, v, m);
        Tensor full = q2.scaledDotProductAttention(k2.unsqueeze(2).expand(b, nkv, group, s, d).reshape(b, nh, s, d),
                v2.unsqueeze(2).expand(b, nkv, group, s, d).reshape(b, nh, s, d), m);
        assertArrayEquals(full.toDoubleArray(), gqa.toDoubleArray(), 0, "head h reads kv head h / group, bit for bit");
        Tensor dOut = randn(DType.F64, b, nh, t, d);
        gqa.backward(dOut);
        full.backward(dOut);
        assertArrayEquals(q2.grad().toDoubleArray(), q.grad().toDoubleArray(), 0);
        assertArrayEquals(k2.grad().toDoubleArray(), k.grad().toDoubleArray(), 1e-12, "dk summed over the group");
        assertArrayEquals(v2.grad().toDoubleArray(), v.grad().toDoubleArray(), 1e-12);
    }

    @Test
    void readsStridedViewsOfACacheBufferAndTransposedQueries() {
        int b = 2, nh = 4, nkv = 2, t = 3, capacity = 40, s = 29, d = 8;
        Tensor kBuf = randn(DType.F32, b, nkv, capacity, d), vBuf = randn(DType.F32, b, nkv, capacity, d);
        Tensor k = kBuf.narrow(2, 0, s), v = vBuf.narrow(2, 0, s);                        // the first S cached positions
        Tensor q = randn(DType.F32, b, t, nh, d).transpose(1, 2);                          // [B, nh, T, d] over [B, T, nh, d]
        assertTrue(!k.isContiguous() && !q.isContiguous());
        AttentionMask m = AttentionMask.causal(s - t).withKeyMask(keyRows(s, 4, 0));
        Tensor views = q.scaledDotProductAttention(k, v, m), copies = q.contiguous().scaledDotProductAttention(k.contiguous(), v.contiguous(), m);
        assertArrayEquals(copies.toDoubleArray(), views.toDoubleArray(), 0);
        // The output is laid out [B, T, nh, d]: merging the heads afterwards is a view.
        Tensor merged = views.transpose(1, 2);
        assertTrue(merged.isContiguous(), "out.transpose(1, 2) is contiguous");
    }

    @Test
    void f16AndF64RunAndAgreeWithTheComposition() {
        int b = 1, nh = 2, nkv = 2, t = 70, d = 8;
        AttentionMask m = AttentionMask.causal(0);
        for (DType dt : new DType[] {DType.F64, DType.F16}) {
            Tensor q = randn(dt, b, nh, t, d), k = randn(dt, b, nkv, t, d), v = randn(dt, b, nkv, t, d);
            double e = relError(q.scaledDotProductAttention(k, v, m), composition(q, k, v, m, 1 / Math.sqrt(d)), null);
            assertTrue(e < (dt == DType.F64 ? 1e-13 : 5e-3), dt + ": relative error " + e);
        }
    }

    @Test
    void checksNameTheOpAndShapes() {
        Tensor q = randn(DType.F32, 1, 4, 3, 8), k = randn(DType.F32, 1, 3, 5, 8), v = randn(DType.F32, 1, 3, 5, 8);
        var e = assertThrows(IllegalArgumentException.class, () -> q.scaledDotProductAttention(k, v, null));
        assertTrue(e.getMessage().startsWith("scaledDotProductAttention: query heads nh=4 must be a multiple of kv heads nkv=3"), e.getMessage());
        assertTrue(e.getMessage().contains("q f32[1, 4, 3, 8]"), e.getMessage());
        Tensor k2 = randn(DType.F32, 1, 2, 5, 8), v2 = randn(DType.F32, 1, 2, 5, 8);
        e = assertThrows(IllegalArgumentException.class, () -> q.scaledDotProductAttention(k2, v2, AttentionMask.none().withKeyMask(keyRows(4, 0))));
        assertTrue(e.getMessage().contains("keyMask [1, 4] must be [B=1, S=5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> q.scaledDotProductAttention(k2, v2, AttentionMask.blockDiagonal(2, 3)));
        assertTrue(e.getMessage().contains("segments cover 5 rows"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> q.scaledDotProductAttention(k2.to(DType.F64), v2, null));
        assertTrue(e.getMessage().contains("share one floating dtype"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> AttentionMask.blockDiagonal(3, 0));
        assertThrows(IllegalArgumentException.class, () -> new AttentionMask(false, 2, null, null));
    }

    // ---------------------------------------------------------------- decode over a paged cache

    /** A cache of {@code blocks} shuffled blocks: row x's tokens through table[x], lens tokens each. */
    record Paged(Tensor k, Tensor v, Tensor table, Tensor lens, int[] tableInts, int[] lensInts, int bs, int maxBlocks) {
        static Paged random(DType t, int nkv, int d, int bs, int... lens) {
            int b = lens.length, maxBlocks = 0;
            for (int n : lens) maxBlocks = Math.max(maxBlocks, (n + bs - 1) / bs);
            maxBlocks += 1;
            int blocks = b * maxBlocks + 2;
            java.util.List<Integer> order = new java.util.ArrayList<>();
            for (int x = 0; x < blocks; x++) order.add(x);
            java.util.Collections.shuffle(order, new java.util.Random(7));
            int[] table = new int[b * maxBlocks];
            for (int x = 0; x < table.length; x++) table[x] = order.get(x);
            return new Paged(randn(t, blocks, nkv, bs, d), randn(t, blocks, nkv, bs, d), Tensor.of(table, b, maxBlocks), Tensor.of(lens, b),
                    table, lens, bs, maxBlocks);
        }

        /** Row x's keys (or values) as a contiguous [1, nkv, lens[x], d] tensor. */
        Tensor gather(Tensor cache, int x) {
            int nkv = cache.size(1), d = cache.size(3), n = lensInts[x];
            double[] c = cache.toDoubleArray(), a = new double[nkv * n * d];
            for (int g = 0; g < nkv; g++)
                for (int j = 0; j < n; j++)
                    System.arraycopy(c, ((tableInts[x * maxBlocks + j / bs] * nkv + g) * bs + j % bs) * d, a, (g * n + j) * d, d);
            return Tensor.fromDoubles(cache.dtype(), a, 1, nkv, n, d);
        }
    }

    /** decode's row x equals the ordinary attention of that row's single query over its gathered tokens (shuffled blocks, GQA 4). */
    @ParameterizedTest
    @CsvSource({"F64, 1e-12", "F32, 1e-5", "BF16, 1e-2"})
    void decodeOverAPagedCacheIsAttentionOverTheGatheredTokens(DType t, double bound) {
        int nh = 8, nkv = 2, d = 16;
        Paged c = Paged.random(t, nkv, d, 16, 1, 37, 70, 16);
        Tensor q = randn(t, 4, nh, 1, d);
        Tensor out = ScaledDotProductAttention.decode(q, c.k, c.v, c.table, c.lens);
        assertArrayEquals(new int[] {4, nh, 1, d}, out.shape());
        for (int x = 0; x < 4; x++) {
            Tensor ref = ScaledDotProductAttention.scaledDotProductAttention(q.narrow(0, x, 1), c.gather(c.k, x), c.gather(c.v, x), null);
            double[] a = out.narrow(0, x, 1).toDoubleArray(), w = ref.toDoubleArray();
            double err = 0, den = 0;
            for (int e = 0; e < w.length; e++) {
                err = Math.max(err, Math.abs(a[e] - w[e]));
                den = Math.max(den, Math.abs(w[e]));
            }
            assertTrue(err <= bound * den, "decode row " + x + " (" + c.lensInts[x] + " tokens) " + t.lower() + ": max error " + err + " vs " + bound * den);
        }
    }

    @Test
    void decodeOfAnEmptyRowIsZeroAndBadTablesAreNamed() {
        Paged c = Paged.random(DType.F32, 1, 8, 4, 0, 5);
        Tensor q = randn(DType.F32, 2, 2, 1, 8);
        double[] o = ScaledDotProductAttention.decode(q, c.k, c.v, c.table, c.lens).toDoubleArray();
        for (int e = 0; e < 16; e++) assertEquals(0.0, o[e], "row 0 has no token");
        int[] bad = c.tableInts.clone();
        bad[c.maxBlocks + 1] = 999;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ScaledDotProductAttention.decode(q, c.k, c.v, Tensor.of(bad, 2, c.maxBlocks), c.lens));
        assertTrue(e.getMessage().contains("blockTable[1, 1] = 999"), e.getMessage());
        IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                () -> ScaledDotProductAttention.decode(q, c.k, c.v, c.table, Tensor.of(new int[] {0, 99}, 2)));
        assertTrue(e2.getMessage().contains("seqLens[1] = 99"), e2.getMessage());
    }
}

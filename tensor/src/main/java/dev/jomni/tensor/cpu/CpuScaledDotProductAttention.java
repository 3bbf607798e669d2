package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.HalfPrecision;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The CPU reference of {@link ScaledDotProductAttention}: chunked over keys with an online softmax
 * (running max m and sum l per query row, rescaled by exp(m_old − m_new) when the max grows), so no
 * T×S matrix is ever built; computed in double for every dtype, rounding the probabilities to the
 * activation dtype before they multiply V (as the composition it replaced, and flash attention, do).
 *
 * <p>Forward tasks are (batch, head, query block); backward runs two passes so that no reduction is
 * split across tasks and bits do not depend on the thread count: dQ by (batch, head, query block),
 * dK and dV by (batch, kv head, key block), each summing over the heads of its group and over every
 * query in order. Blocks of keys are held transposed (kᵀ [d, BLOCK_K]) so the score loops run along
 * keys, element-wise, which the JIT vectorises.
 */
final class CpuScaledDotProductAttention implements ScaledDotProductAttention.Kernels {
    private final int blockQ, blockK;

    CpuScaledDotProductAttention() { this(32, 64); }

    /** Block sizes are free parameters of the algorithm (tests shrink them to cross many blocks). */
    CpuScaledDotProductAttention(int blockQ, int blockK) {
        if (blockQ < 1 || blockK < 1) throw new IllegalArgumentException("CpuScaledDotProductAttention: blocks " + blockQ + ", " + blockK);
        this.blockQ = blockQ;
        this.blockK = blockK;
    }

    /** A [B, heads, rows, d] tensor with unit stride on d: where row (b, h, i) starts. */
    private record View(MemorySegment seg, DType dtype, long offset, long sb, long sh, long si) {
        static View of(Tensor t) {
            long[] st = TensorAccess.strides(t);
            if (t.size(-1) > 1 && st[3] != 1) throw new IllegalArgumentException("scaledDotProductAttention: last axis stride " + st[3] + " (the op passes unit strides)");
            return new View(CpuBackend.seg(t), t.dtype(), TensorAccess.offset(t), st[0], st[1], st[2]);
        }

        long at(int b, int h, int i) { return offset + b * sb + h * sh + i * si; }

        void load(int b, int h, int i, int d, double[] dst, int to) { read(seg, dtype, at(b, h, i), d, dst, to); }

        void store(int b, int h, int i, int d, double[] src, int from) {
            long o = at(b, h, i);
            for (int c = 0; c < d; c++) CpuBackend.set(seg, dtype, o + c, src[from + c]);
        }
    }

    /** Shapes and mask of one call, shared read-only by its tasks. */
    private record Problem(int b, int nh, int nkv, int t, int s, int d, int group, double scale, int[] lo, int[] hi,
                           MemorySegment keyMask, long keyMaskOffset) {
        static Problem of(Tensor q, Tensor k, AttentionMask mask, double scale) {
            int t = q.size(2), s = k.size(2);
            int[][] ranges = mask.keyRanges(t, s);
            Tensor km = mask.keyMask();
            return new Problem(q.size(0), q.size(1), k.size(1), t, s, q.size(3), q.size(1) / k.size(1), scale, ranges[0], ranges[1],
                    km == null ? null : CpuBackend.seg(km), km == null ? 0 : TensorAccess.offset(km));
        }

        /** Key j of batch row b is a token (not padding). */
        boolean valid(int b, int j) { return keyMask == null || keyMask.get(ValueLayout.JAVA_BYTE, keyMaskOffset + (long) b * s + j) != 0; }

        /** The keys that some query in [i0, i1) may see: [min lo, max hi). */
        int[] span(int i0, int i1) {
            int a = Integer.MAX_VALUE, e = Integer.MIN_VALUE;
            for (int i = i0; i < i1; i++)
                if (lo[i] < hi[i]) {
                    a = Math.min(a, lo[i]);
                    e = Math.max(e, hi[i]);
                }
            return a < e ? new int[] {a, e} : null;
        }
    }

    // ---------------------------------------------------------------- forward

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale, Tensor out, Tensor lse) {
        Problem p = Problem.of(q, k, mask, scale);
        View qv = View.of(q), kv = View.of(k), vv = View.of(v), ov = View.of(out);
        MemorySegment ls = CpuBackend.seg(lse);
        DType act = q.dtype(), stat = lse.dtype();
        int qBlocks = (p.t + blockQ - 1) / blockQ;
        Parallel.forEach(p.b * p.nh * qBlocks, task -> {
            int b = task / (p.nh * qBlocks), h = task / qBlocks % p.nh, i0 = task % qBlocks * blockQ;
            forwardBlock(p, b, h, i0, Math.min(p.t, i0 + blockQ), qv, kv, vv, ov, ls, TensorAccess.offset(lse), act, stat);
        });
    }

    private void forwardBlock(Problem p, int b, int h, int i0, int i1, View qv, View kv, View vv, View ov,
                              MemorySegment ls, long lseOffset, DType act, DType stat) {
        int d = p.d, rows = i1 - i0, kvh = h / p.group, bk = blockK;
        double[] qr = new double[rows * d], acc = new double[rows * d], max = new double[rows], sum = new double[rows];
        Arrays.fill(max, Double.NEGATIVE_INFINITY);
        for (int r = 0; r < rows; r++) qv.load(b, h, i0 + r, d, qr, r * d);
        int[] span = p.span(i0, i1);
        if (span != null) {
            double[] kT = new double[d * bk], vb = new double[bk * d], sc = new double[bk], row = new double[d];
            boolean[] valid = new boolean[bk];
            for (int j0 = span[0] / bk * bk; j0 < span[1]; j0 += bk) {
                int ja = Math.max(j0, span[0]), jb = Math.min(j0 + bk, span[1]);
                loadKeys(p, kv, vv, b, kvh, j0, ja, jb, kT, vb, false, null, valid, row);
                for (int r = 0; r < rows; r++) {
                    int a = Math.max(p.lo[i0 + r], ja) - j0, e = Math.min(p.hi[i0 + r], jb) - j0;
                    if (a >= e) continue;
                    scores(qr, r * d, kT, d, bk, a, e, sc);
                    double blockMax = Double.NEGATIVE_INFINITY;
                    for (int j = a; j < e; j++)
                        if (valid[j]) {
                            sc[j] *= p.scale;
                            blockMax = Math.max(blockMax, sc[j]);
                        }
                    if (blockMax == Double.NEGATIVE_INFINITY) continue;          // every key here is padding
                    double mNew = Math.max(max[r], blockMax);
                    if (mNew > max[r] && sum[r] != 0) {                         // the max grew: rescale what was summed
                        double alpha = Math.exp(max[r] - mNew);
                        sum[r] *= alpha;
                        for (int c = 0; c < d; c++) acc[r * d + c] *= alpha;
                    }
                    max[r] = mNew;
                    for (int j = a; j < e; j++) {
                        if (!valid[j]) continue;
                        double pj = Math.exp(sc[j] - mNew);
                        sum[r] += pj;
                        // The probability meets V in the activation dtype, as probs.to(dtype) @ v did.
                        double pr = round(act, pj);
                        int vo = j * d, ao = r * d;
                        for (int c = 0; c < d; c++) acc[ao + c] += pr * vb[vo + c];
                    }
                }
            }
        }
        long lseRow = lseOffset + ((long) b * p.nh + h) * p.t;
        for (int r = 0; r < rows; r++) {
            if (sum[r] == 0) {                                                   // sees no key: output 0, L = +∞
                Arrays.fill(acc, r * d, r * d + d, 0);
                CpuBackend.set(ls, stat, lseRow + i0 + r, Double.POSITIVE_INFINITY);
            } else {
                double inv = 1 / sum[r];
                for (int c = 0; c < d; c++) acc[r * d + c] *= inv;
                CpuBackend.set(ls, stat, lseRow + i0 + r, max[r] + Math.log(sum[r]));
            }
            ov.store(b, h, i0 + r, d, acc, r * d);
        }
    }

    // ---------------------------------------------------------------- backward

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, AttentionMask mask, double scale,
                         Tensor dq, Tensor dk, Tensor dv) {
        Problem p = Problem.of(q, k, mask, scale);
        View qv = View.of(q), kv = View.of(k), vv = View.of(v), ov = View.of(out), gv = View.of(dOut);
        int rowsAll = p.b * p.nh * p.t;
        double[] logSum = new double[rowsAll], delta = new double[rowsAll];
        MemorySegment ls = CpuBackend.seg(lse);
        // D_i = Σ_c dO_ic · O_ic (the saved, rounded O, as FlashAttention-2 uses it).
        Parallel.forEach(p.b * p.nh, bh -> {
            int b = bh / p.nh, h = bh % p.nh;
            double[] o = new double[p.d], g = new double[p.d];
            for (int i = 0; i < p.t; i++) {
                int at = bh * p.t + i;
                logSum[at] = CpuBackend.get(ls, lse.dtype(), TensorAccess.offset(lse) + at);
                ov.load(b, h, i, p.d, o, 0);
                gv.load(b, h, i, p.d, g, 0);
                double s = 0;
                for (int c = 0; c < p.d; c++) s += g[c] * o[c];
                delta[at] = s;
            }
        });
        if (dq != null) {
            View dqv = View.of(dq);
            int qBlocks = (p.t + blockQ - 1) / blockQ;
            Parallel.forEach(p.b * p.nh * qBlocks, task -> {
                int b = task / (p.nh * qBlocks), h = task / qBlocks % p.nh, i0 = task % qBlocks * blockQ;
                backwardQueries(p, b, h, i0, Math.min(p.t, i0 + blockQ), qv, kv, vv, gv, logSum, delta, dqv);
            });
        }
        if (dk != null || dv != null) {
            View dkv = dk == null ? null : View.of(dk), dvv = dv == null ? null : View.of(dv);
            int kBlocks = (p.s + blockK - 1) / blockK;
            Parallel.forEach(p.b * p.nkv * kBlocks, task -> {
                int b = task / (p.nkv * kBlocks), kvh = task / kBlocks % p.nkv, j0 = task % kBlocks * blockK;
                backwardKeys(p, b, kvh, j0, Math.min(p.s, j0 + blockK), qv, kv, vv, gv, logSum, delta, dkv, dvv);
            });
        }
    }

    /** dQ_i = scale · Σ_j dS_ij k_j over the visible keys, dS_ij = P_ij (dP_ij − D_i), dP_ij = dO_i · v_j. */
    private void backwardQueries(Problem p, int b, int h, int i0, int i1, View qv, View kv, View vv, View gv,
                                 double[] logSum, double[] delta, View dqv) {
        int d = p.d, rows = i1 - i0, kvh = h / p.group, bk = blockK, bh = b * p.nh + h;
        double[] qr = new double[rows * d], gr = new double[rows * d], dqr = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            qv.load(b, h, i0 + r, d, qr, r * d);
            gv.load(b, h, i0 + r, d, gr, r * d);
        }
        int[] span = p.span(i0, i1);
        if (span != null) {
            double[] kT = new double[d * bk], vT = new double[d * bk], kb = new double[bk * d], sc = new double[bk], dp = new double[bk], row = new double[d];
            boolean[] valid = new boolean[bk];
            for (int j0 = span[0] / bk * bk; j0 < span[1]; j0 += bk) {
                int ja = Math.max(j0, span[0]), jb = Math.min(j0 + bk, span[1]);
                loadKeys(p, kv, vv, b, kvh, j0, ja, jb, kT, vT, true, kb, valid, row);
                for (int r = 0; r < rows; r++) {
                    int a = Math.max(p.lo[i0 + r], ja) - j0, e = Math.min(p.hi[i0 + r], jb) - j0;
                    double l = logSum[bh * p.t + i0 + r], dd = delta[bh * p.t + i0 + r];
                    if (a >= e || l == Double.POSITIVE_INFINITY) continue;
                    scores(qr, r * d, kT, d, bk, a, e, sc);
                    scores(gr, r * d, vT, d, bk, a, e, dp);
                    for (int j = a; j < e; j++) {
                        if (!valid[j]) continue;
                        double ds = Math.exp(sc[j] * p.scale - l) * (dp[j] - dd);
                        int ko = j * d, qo = r * d;
                        for (int c = 0; c < d; c++) dqr[qo + c] += ds * kb[ko + c];
                    }
                }
            }
        }
        for (int x = 0; x < dqr.length; x++) dqr[x] *= p.scale;
        for (int r = 0; r < rows; r++) dqv.store(b, h, i0 + r, d, dqr, r * d);
    }

    /** dV_j = Σ_{h in group, i} P_ij dO_i;  dK_j = scale · Σ_{h in group, i} dS_ij q_i. */
    private void backwardKeys(Problem p, int b, int kvh, int j0, int j1, View qv, View kv, View vv, View gv,
                              double[] logSum, double[] delta, View dkv, View dvv) {
        int d = p.d, n = j1 - j0, bk = blockK;
        double[] kT = new double[d * bk], vT = new double[d * bk], dkb = new double[n * d], dvb = new double[n * d];
        double[] sc = new double[bk], dp = new double[bk], qrow = new double[d], grow = new double[d], row = new double[d];
        boolean[] valid = new boolean[bk];
        loadKeys(p, kv, vv, b, kvh, j0, j0, j1, kT, vT, true, null, valid, row);
        for (int hh = 0; hh < p.group; hh++) {
            int h = kvh * p.group + hh, bh = b * p.nh + h;
            for (int i = 0; i < p.t; i++) {
                int a = Math.max(p.lo[i], j0) - j0, e = Math.min(p.hi[i], j1) - j0;
                double l = logSum[bh * p.t + i], dd = delta[bh * p.t + i];
                if (a >= e || l == Double.POSITIVE_INFINITY) continue;
                qv.load(b, h, i, d, qrow, 0);
                gv.load(b, h, i, d, grow, 0);
                scores(qrow, 0, kT, d, bk, a, e, sc);
                scores(grow, 0, vT, d, bk, a, e, dp);
                for (int j = a; j < e; j++) {
                    if (!valid[j]) continue;
                    double pj = Math.exp(sc[j] * p.scale - l), ds = pj * (dp[j] - dd);
                    int o = j * d;
                    for (int c = 0; c < d; c++) {
                        dvb[o + c] += pj * grow[c];
                        dkb[o + c] += ds * qrow[c];
                    }
                }
            }
        }
        for (int x = 0; x < dkb.length; x++) dkb[x] *= p.scale;
        for (int j = 0; j < n; j++) {
            if (dkv != null) dkv.store(b, kvh, j0 + j, d, dkb, j * d);
            if (dvv != null) dvv.store(b, kvh, j0 + j, d, dvb, j * d);
        }
    }

    // ---------------------------------------------------------------- blocks

    /**
     * Keys [ja, jb) of the block starting at j0 (slot x = j − j0): kᵀ into kT [d, BLOCK_K], v into vb
     * as vᵀ [d, BLOCK_K] when vTransposed (backward's dP = dO · vᵀ) else by rows [BLOCK_K, d] (forward's
     * P · V), k by rows into kRows when given (dQ += dS · K), and whether each key is a token.
     */
    private void loadKeys(Problem p, View kv, View vv, int b, int kvh, int j0, int ja, int jb,
                          double[] kT, double[] vb, boolean vTransposed, double[] kRows, boolean[] valid, double[] row) {
        int d = p.d, bk = blockK;
        for (int j = ja; j < jb; j++) {
            int x = j - j0;
            valid[x] = p.valid(b, j);
            kv.load(b, kvh, j, d, row, 0);
            for (int c = 0; c < d; c++) kT[c * bk + x] = row[c];
            if (kRows != null) System.arraycopy(row, 0, kRows, x * d, d);
            if (vTransposed) {
                vv.load(b, kvh, j, d, row, 0);
                for (int c = 0; c < d; c++) vb[c * bk + x] = row[c];
            } else vv.load(b, kvh, j, d, vb, x * d);
        }
    }

    /** out[j] = Σ_c x[at + c] · mT[c, j] for j in [a, e): one row against a transposed block. */
    private static void scores(double[] x, int at, double[] mT, int d, int bk, int a, int e, double[] out) {
        Arrays.fill(out, a, e, 0);
        for (int c = 0; c < d; c++) {
            double xc = x[at + c];
            int base = c * bk;
            for (int j = a; j < e; j++) out[j] += xc * mT[base + j];
        }
    }

    /** x rounded to dt (a no-op for f64). */
    // ---------------------------------------------------------------- decode over a paged cache

    /** The direct definition in double, a task per (batch row, head); the block table and lengths checked as read. */
    @Override
    public void decode(Tensor q, Tensor kCache, Tensor vCache, Tensor blockTable, Tensor seqLens, double scale, Tensor out, Tensor lse) {
        int b = q.size(0), nh = q.size(1), d = q.size(3), nkv = kCache.size(1), bs = kCache.size(2), blocks = kCache.size(0);
        int maxBlocks = blockTable.size(1), group = nh / nkv;
        double[] table = blockTable.toDoubleArray(), lens = seqLens.toDoubleArray();
        for (int x = 0; x < b; x++) {
            if (lens[x] < 0 || lens[x] > (long) maxBlocks * bs)
                throw new IllegalArgumentException("scaledDotProductAttention decode: seqLens[" + x + "] = " + (int) lens[x] + " outside [0, maxBlocks · blockSize = "
                        + (long) maxBlocks * bs + "]");
            for (int blk = 0; blk * bs < lens[x]; blk++)
                if (table[x * maxBlocks + blk] < 0 || table[x * maxBlocks + blk] >= blocks)
                    throw new IllegalArgumentException("scaledDotProductAttention decode: blockTable[" + x + ", " + blk + "] = " + (int) table[x * maxBlocks + blk]
                            + " outside the cache's " + blocks + " blocks");
        }
        View qv = View.of(q), kv = View.of(kCache), vv = View.of(vCache), ov = View.of(out);
        MemorySegment ls = CpuBackend.seg(lse);
        Parallel.forEach(b * nh, task -> {
            int x = task / nh, h = task % nh, g = h / group, n = (int) lens[x];
            double[] qr = new double[d], kr = new double[d], o = new double[d], s = new double[n];
            qv.load(x, h, 0, d, qr, 0);
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {
                kv.load((int) table[x * maxBlocks + j / bs], g, j % bs, d, kr, 0);
                double dot = 0;
                for (int c = 0; c < d; c++) dot += qr[c] * kr[c];
                s[j] = scale * dot;
                m = Math.max(m, s[j]);
            }
            double l = 0;
            for (int j = 0; j < n; j++) {
                double p = Math.exp(s[j] - m);
                l += p;
                vv.load((int) table[x * maxBlocks + j / bs], g, j % bs, d, kr, 0);
                for (int c = 0; c < d; c++) o[c] += p * kr[c];
            }
            for (int c = 0; c < d; c++) o[c] = n == 0 ? 0 : o[c] / l;
            ov.store(x, h, 0, d, o, 0);
            CpuBackend.set(ls, lse.dtype(), TensorAccess.offset(lse) + task, n == 0 ? Double.POSITIVE_INFINITY : m + Math.log(l));
        });
    }

    private static double round(DType dt, double x) {
        return switch (dt) {
            case F64 -> x;
            case F32 -> (float) x;
            case BF16 -> HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16((float) x));
            case F16 -> Float.float16ToFloat(Float.floatToFloat16((float) x));
            default -> throw new IllegalArgumentException("scaledDotProductAttention: dtype " + dt.lower());
        };
    }

    /** n elements of a floating dtype from element offset off into dst[to …]. */
    private static void read(MemorySegment s, DType t, long off, int n, double[] dst, int to) {
        switch (t) {
            case F64 -> { for (int c = 0; c < n; c++) dst[to + c] = s.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, off + c); }
            case F32 -> { for (int c = 0; c < n; c++) dst[to + c] = s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, off + c); }
            case BF16 -> { for (int c = 0; c < n; c++) dst[to + c] = HalfPrecision.bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, off + c)); }
            case F16 -> { for (int c = 0; c < n; c++) dst[to + c] = Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, off + c)); }
            default -> throw new IllegalArgumentException("scaledDotProductAttention: dtype " + t.lower());
        }
    }
}

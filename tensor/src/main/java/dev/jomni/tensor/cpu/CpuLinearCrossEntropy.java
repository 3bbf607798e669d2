package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.LinearCrossEntropy;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The CPU reference of {@link LinearCrossEntropy}: valid tokens (ignore_index rows are skipped: in SFT
 * the prompt is most of them) in chunks of {@code tokenChunk}, the vocabulary in chunks of
 * {@code vocabChunk}. Each logit chunk [tn, tv] is one {@link CpuMatmul} product in f32 (f64 for
 * f64), from the token chunk gathered into f32 and, for 16-bit weights, the vocabulary chunk converted
 * to f32. Per-token statistics (online max and Σ exp) are kept in double, one row per task and in
 * vocabulary order, so the bits depend on the chunk sizes but never on the thread count.
 *
 * <p>Scratch, all native and freed before returning: the logit chunk tn×tv, the token chunk tn×H and,
 * in backward, its gradient and a product tn×H, a weight-gradient product tv×H; plus, for 16-bit
 * weights, the converted chunk tv×H and (when dWeight is asked for) an f32 accumulator V×H, since a
 * bf16 running sum over token chunks would stall. Never N×V.
 */
public final class CpuLinearCrossEntropy implements LinearCrossEntropy.Kernels {
    // A [256, 2048] f32 logit chunk is 2 MB (L2/L3-sized); 256 rows keep the matmul's packing of the
    // transposed weight chunk (tv·H per product) small against its tn·tv·H multiply-adds.
    static final int TOKEN_CHUNK = 256, VOCAB_CHUNK = 2048;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;

    private final int tokenChunk, vocabChunk;

    CpuLinearCrossEntropy() { this(TOKEN_CHUNK, VOCAB_CHUNK); }

    /** Kernels with the given chunk sizes (tests use small ones that divide neither N nor V). */
    public CpuLinearCrossEntropy(int tokenChunk, int vocabChunk) {
        if (tokenChunk < 1 || vocabChunk < 1)
            throw new IllegalArgumentException("linearCrossEntropy: chunk sizes must be positive, got tokens " + tokenChunk + ", vocabulary " + vocabChunk);
        this.tokenChunk = tokenChunk;
        this.vocabChunk = vocabChunk;
    }

    @Override
    public void forward(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
        int v = weight.size(0);
        long[] t = CpuCrossEntropy.targets(targets, ignoreIndex, v, "linearCrossEntropy");
        int[] rows = valid(t, ignoreIndex);
        DType st = lse.dtype();
        MemorySegment l = CpuBackend.seg(lse), r = CpuBackend.seg(rowLoss);
        for (int i = 0; i < t.length; i++)
            if (t[i] == ignoreIndex) {
                CpuBackend.set(l, st, TensorAccess.offset(lse) + i, 0);
                CpuBackend.set(r, st, TensorAccess.offset(rowLoss) + i, 0);
            }
        if (rows.length == 0) return;
        try (var c = new Chunks(hidden, weight, rows.length, false, false)) {
            int tn = c.tn;
            double[] m = new double[tn], s = new double[tn], picked = new double[tn];
            for (int c0 = 0; c0 < rows.length; c0 += tn) {
                int len = Math.min(tn, rows.length - c0), from = c0;
                c.gatherTokens(hidden, rows, c0, len);
                java.util.Arrays.fill(m, Double.NEGATIVE_INFINITY);
                java.util.Arrays.fill(s, 0);
                for (int v0 = 0; v0 < v; v0 += c.tv) {
                    int width = Math.min(c.tv, v - v0), vFrom = v0;
                    c.logits(c.weightRows(weight, v0, width), len, width);
                    // One task per row: its running max and sum see the chunks in vocabulary order.
                    Parallel.forRange(len, Math.max(1, (1 << 14) / width), (a, b) -> {
                        for (int i = (int) a; i < b; i++) {
                            long base = (long) i * width;
                            double chunkMax = Double.NEGATIVE_INFINITY;
                            for (int j = 0; j < width; j++) chunkMax = Math.max(chunkMax, c.logit(base + j));
                            double next = Math.max(m[i], chunkMax);
                            long target = t[rows[from + i]];
                            if (target >= vFrom && target < vFrom + width) picked[i] = c.logit(base + target - vFrom);
                            if (next == Double.NEGATIVE_INFINITY) continue;        // all −∞ so far: nothing to add
                            double sum = 0;
                            for (int j = 0; j < width; j++) sum += Math.exp(c.logit(base + j) - next);
                            s[i] = s[i] * Math.exp(m[i] - next) + sum;
                            m[i] = next;
                        }
                    });
                }
                for (int i = 0; i < len; i++) {
                    int row = rows[c0 + i];
                    double rowLse = m[i] + Math.log(s[i]);
                    CpuBackend.set(l, st, TensorAccess.offset(lse) + row, rowLse);
                    CpuBackend.set(r, st, TensorAccess.offset(rowLoss) + row, rowLse - picked[i]);
                }
            }
        }
    }

    @Override
    public void backward(Tensor hidden, Tensor weight, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex,
            Tensor dHidden, Tensor dWeight) {
        int v = weight.size(0), hd = hidden.size(1);
        long[] t = CpuCrossEntropy.targets(targets, ignoreIndex, v, "linearCrossEntropy");
        int[] rows = valid(t, ignoreIndex);
        if (dHidden != null) zero(dHidden);                                   // ignored rows get no gradient
        if (dWeight != null) zero(dWeight);
        if (rows.length == 0 || (dHidden == null && dWeight == null)) return;
        double k = CpuBackend.get(CpuBackend.seg(scale), scale.dtype(), TensorAccess.offset(scale));
        MemorySegment l = CpuBackend.seg(lse);
        DType st = lse.dtype();
        try (var c = new Chunks(hidden, weight, rows.length, dHidden != null, dWeight != null)) {
            // dWeight accumulates over token chunks: in place when it has the work dtype, else in f32.
            Tensor acc = dWeight == null ? null : dWeight.dtype() == c.work ? dWeight : c.scratch(c.work, v, hd);
            if (acc != null && acc != dWeight) zero(acc);
            for (int c0 = 0; c0 < rows.length; c0 += c.tn) {
                int len = Math.min(c.tn, rows.length - c0), from = c0;
                c.gatherTokens(hidden, rows, c0, len);
                if (dHidden != null) zero(c.dTokens);
                for (int v0 = 0; v0 < v; v0 += c.tv) {
                    int width = Math.min(c.tv, v - v0), vFrom = v0;
                    Rows w = c.weightRows(weight, v0, width);
                    c.logits(w, len, width);
                    // g = (softmax − onehot)·scale, in place of the logits
                    Parallel.forRange(len, Math.max(1, (1 << 14) / width), (a, b) -> {
                        for (int i = (int) a; i < b; i++) {
                            double rowLse = CpuBackend.get(l, st, TensorAccess.offset(lse) + rows[from + i]);
                            long base = (long) i * width, target = t[rows[from + i]] - vFrom;
                            for (int j = 0; j < width; j++) {
                                double p = Math.exp(c.logit(base + j) - rowLse);
                                c.setLogit(base + j, (j == target ? p - 1 : p) * k);
                            }
                        }
                    });
                    if (dHidden != null) c.addHiddenGradient(w, len, width);
                    if (acc != null) c.addWeightGradient(acc, len, v0, width);
                }
                if (dHidden != null) c.scatterTokens(dHidden, rows, c0, len);
            }
            if (acc != null && acc != dWeight) Backend.of(acc).copy(acc, dWeight);
        }
    }

    /** The positions whose target is not ignoreIndex, in order. */
    private static int[] valid(long[] t, long ignoreIndex) {
        int count = 0;
        for (long x : t) if (x != ignoreIndex) count++;
        int[] rows = new int[count];
        for (int i = 0, j = 0; i < t.length; i++) if (t[i] != ignoreIndex) rows[j++] = i;
        return rows;
    }

    /** Weight rows in the work dtype: a segment and the element offset of the first row. */
    private record Rows(MemorySegment segment, long offset) {}

    private static void zero(Tensor x) {
        long w = x.dtype().byteSize;
        CpuBackend.seg(x).asSlice(TensorAccess.offset(x) * w, x.numel() * w).fill((byte) 0);   // 0.0 is all-zero bits in every float dtype
    }

    /** The scratch of one call, in the work dtype (f32, or f64 for f64), and the chunk products. */
    private final class Chunks implements AutoCloseable {
        final DType work;
        final boolean f64;
        final int tn, tv, hd;
        final Tensor tokens, logits, dTokens, product, weightProduct, weightChunk;
        private final java.util.List<Tensor> owned = new java.util.ArrayList<>();
        private final MemorySegment tokensSeg, logitsSeg;

        Chunks(Tensor hidden, Tensor weight, int validRows, boolean dHidden, boolean dWeight) {
            f64 = hidden.dtype() == DType.F64;
            work = f64 ? DType.F64 : DType.F32;
            hd = hidden.size(1);
            tn = Math.min(tokenChunk, validRows);
            tv = Math.min(vocabChunk, weight.size(0));
            tokens = scratch(work, tn, hd);                                      // [tn, H]
            logits = scratch(work, tn, tv);                                      // [tn, tv]: the logit chunk, then g
            dTokens = dHidden ? scratch(work, tn, hd) : null;                    // [tn, H]: Σ over vocabulary chunks of g·W_chunk
            product = dHidden ? scratch(work, tn, hd) : null;                    // [tn, H]: one g·W_chunk
            weightProduct = dWeight ? scratch(work, tv, hd) : null;              // [tv, H]: one gᵀ·tokens
            weightChunk = weight.dtype() == work ? null : scratch(work, tv, hd); // [tv, H]: a 16-bit weight chunk in f32
            tokensSeg = CpuBackend.seg(tokens);
            logitsSeg = CpuBackend.seg(logits);
        }

        Tensor scratch(DType t, int... shape) {
            Tensor x = Tensor.empty(Device.cpu(), t, shape);
            owned.add(x);
            return x;
        }

        double logit(long i) { return f64 ? logitsSeg.getAtIndex(F64, i) : logitsSeg.getAtIndex(F32, i); }

        void setLogit(long i, double x) {
            if (f64) logitsSeg.setAtIndex(F64, i, x);
            else logitsSeg.setAtIndex(F32, i, (float) x);
        }

        /** tokens[0, len) ← hidden[rows[c0 + i]], converted to the work dtype. */
        void gatherTokens(Tensor hidden, int[] rows, int c0, int len) {
            MemorySegment h = CpuBackend.seg(hidden);
            DType ht = hidden.dtype();
            long w = ht.byteSize;
            Parallel.forRange(len, Math.max(1, (1 << 14) / hd), (a, b) -> {
                for (int i = (int) a; i < b; i++) {
                    long src = TensorAccess.offset(hidden) + (long) rows[c0 + i] * hd, dst = (long) i * hd;
                    if (ht == work) MemorySegment.copy(h, src * w, tokensSeg, dst * w, hd * w);
                    else for (int j = 0; j < hd; j++) CpuBackend.set(tokensSeg, work, dst + j, CpuBackend.get(h, ht, src + j));
                }
            });
        }

        /** dHidden[rows[c0 + i]] ← dTokens[i], rounded to dHidden's dtype. */
        void scatterTokens(Tensor dHidden, int[] rows, int c0, int len) {
            MemorySegment d = CpuBackend.seg(dHidden), g = CpuBackend.seg(dTokens);
            DType dt = dHidden.dtype();
            Parallel.forRange(len, Math.max(1, (1 << 14) / hd), (a, b) -> {
                for (int i = (int) a; i < b; i++) {
                    long dst = TensorAccess.offset(dHidden) + (long) rows[c0 + i] * hd, src = (long) i * hd;
                    for (int j = 0; j < hd; j++) CpuBackend.set(d, dt, dst + j, CpuBackend.get(g, work, src + j));
                }
            });
        }

        /** The weight rows [v0, v0 + width) in the work dtype: in place, or converted into weightChunk. */
        Rows weightRows(Tensor weight, int v0, int width) {
            if (weightChunk == null) return new Rows(CpuBackend.seg(weight), TensorAccess.offset(weight) + (long) v0 * hd);
            MemorySegment w = CpuBackend.seg(weight), dst = CpuBackend.seg(weightChunk);
            DType wt = weight.dtype();
            Parallel.forRange(width, Math.max(1, (1 << 14) / hd), (a, b) -> {
                for (long i = a; i < b; i++)
                    for (int j = 0; j < hd; j++)
                        CpuBackend.set(dst, work, i * hd + j, CpuBackend.get(w, wt, TensorAccess.offset(weight) + (v0 + i) * hd + j));
            });
            return new Rows(dst, 0);
        }

        /** logits[len, width] = tokens[len] · w[width]ᵀ, row stride width. */
        void logits(Rows w, int len, int width) {
            // B = W_chunkᵀ [H, width]: B[p][j] = W[v0 + j][p], row stride 1, column stride H.
            gemm(len, width, hd, tokensSeg, 0, hd, 1, w.segment(), w.offset(), 1, hd, logitsSeg, 0, width);
        }

        /** dTokens += g · W_chunk: [len, width] · [width, H]. */
        void addHiddenGradient(Rows w, int len, int width) {
            MemorySegment p = CpuBackend.seg(product), d = CpuBackend.seg(dTokens);
            gemm(len, hd, width, logitsSeg, 0, width, 1, w.segment(), w.offset(), hd, 1, p, 0, hd);
            addInto(d, 0, p, (long) len * hd);
        }

        /** acc[v0, v0 + width) += gᵀ · tokens: [width, len] · [len, H]. */
        void addWeightGradient(Tensor acc, int len, int v0, int width) {
            MemorySegment p = CpuBackend.seg(weightProduct), a = CpuBackend.seg(acc);
            // A = gᵀ [width, len]: A[i][p] = g[p][i], row stride 1, column stride width.
            gemm(width, hd, len, logitsSeg, 0, 1, width, tokensSeg, 0, hd, 1, p, 0, hd);
            addInto(a, TensorAccess.offset(acc) + (long) v0 * hd, p, (long) width * hd);
        }

        /** dst[at, at + n) += src[0, n), element-wise in the work dtype. */
        private void addInto(MemorySegment dst, long at, MemorySegment src, long n) {
            Parallel.forRange(n, 1 << 14, (a, b) -> {
                for (long i = a; i < b; i++)
                    if (f64) dst.setAtIndex(F64, at + i, dst.getAtIndex(F64, at + i) + src.getAtIndex(F64, i));
                    else dst.setAtIndex(F32, at + i, dst.getAtIndex(F32, at + i) + src.getAtIndex(F32, i));
            });
        }

        /** C[m, n] = A[m, k] · B[k, n], offsets and strides in elements; C has column stride 1. */
        private void gemm(int m, int n, int k, MemorySegment a, long aOff, long aRow, long aCol,
                MemorySegment b, long bOff, long bRow, long bCol, MemorySegment c, long cOff, long cRow) {
            if (f64) CpuMatmul.dgemm(1, m, n, k, a, aOff, 0, aRow, aCol, b, bOff, 0, bRow, bCol, c, cOff, 0, cRow);
            else CpuMatmul.sgemm(1, m, n, k, a, aOff, 0, aRow, aCol, b, bOff, 0, bRow, bCol, c, cOff, 0, cRow);
        }

        @Override
        public void close() { for (Tensor x : owned) x.close(); }
    }
}

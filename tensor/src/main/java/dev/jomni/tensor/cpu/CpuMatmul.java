package dev.jomni.tensor.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.IntConsumer;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Batched general matrix multiply on the CPU: C[b] = A[b]·B[b], f32 and f64.
 *
 * <p>Operands are addressed BLIS-style: an element offset plus a batch, row and column stride per
 * operand, all in elements, so transposed, sliced and broadcast (batch stride 0) views need no copy.
 * C has column stride 1 and any row stride, and must not overlap A or B. Segments confined to the
 * calling thread are computed on that thread alone; shared, global and automatic ones on all of
 * {@link Parallel}'s threads.
 *
 * <p>Every element of C is one fused multiply-add chain in ascending k, started from zero:
 * {@code c = fma(a[i][p], b[p][j], c)} for p = 0 … k−1. Blocking, packing, the thread count and
 * the vector width decide only where that chain runs, never its order, so the result is the same
 * bits as that scalar loop, on 1 thread or 16, whatever the tile sizes.
 *
 * <p>sgemm is GotoBLAS/BLIS-shaped: for each NC-wide column block and KC-deep slice of k, B is
 * packed once into NR-wide micro-panels (shared by all threads), each task packs an MC×KC block
 * of A into MR-row micro-panels (kept in L2), and a register-blocked
 * MR×NR micro-kernel accumulates one C tile. Between k slices the partial C tile lives in C
 * itself and is reloaded into the accumulators, which keeps the single fma chain.
 *
 * <p>Cost to know: a B that is a transposed view (row stride 1, as in x·Wᵀ with W stored [out, in]) is
 * transposed element by element while packing, k·n work per call; negligible for many rows of A, but
 * it dominates when A has only a few rows (decoding one token). Keep such weights [in, out] where that matters.
 */
public final class CpuMatmul {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;
    private static final int LANES = FS.length();
    private static final long VBYTES = (long) LANES * Float.BYTES;
    private static final FloatVector FZERO = FloatVector.zero(FS);

    // Micro-tile MR rows × NR columns (NV vectors); see docs/benchmarks.md for the shapes tried. MR·NV = 16
    // accumulators on purpose: at 24 (6×4, 8×3) C1 gives up on the method ("out of virtual registers"),
    // and a kernel first compiled while small calls ran could then stay in C1's tier 2 for good (2 GFLOP/s).
    static final int MR = 4;
    private static final int NV = 4;
    static final int NR = NV * LANES;
    // Cache blocks (sizes at 16 lanes): an MC×KC block of A (128 KB) and a KC×NR micro-panel of B (64 KB) in L2 (1 MB on
    // Zen 5), the KC×NC panel of B (4 MB) in L3. The hot loop reads 4 B vectors per 16 fma, so L2 feeds it.
    static final int KC = 256;
    static final int MC = MR * 32;
    static final int NC = NR * 64;
    /** Below this many multiply-adds per batch element, one task does a whole batch element. */
    private static final long SMALL = 1L << 21;
    /** Large problems are cut into at least this many tasks per (column block, k slice). */
    private static final int MIN_TASKS = 16;
    /** Never started: a confined segment is not accessible by it, a shared or global one is. */
    private static final Thread NOT_THIS_THREAD = Thread.ofPlatform().unstarted(() -> {});

    private CpuMatmul() {}

    /** C[b] = A[b]·B[b] for b in [0,batch): A[b] is m×k, B[b] is k×n, C[b] is m×n; f32 in native-order memory. Overwrites C. */
    public static void sgemm(int batch, int m, int n, int k,
            MemorySegment a, long aOff, long aBatchStride, long aRowStride, long aColStride,
            MemorySegment b, long bOff, long bBatchStride, long bRowStride, long bColStride,
            MemorySegment c, long cOff, long cBatchStride, long cRowStride) {
        var g = new Gemm(batch, m, n, k, a, aOff, aBatchStride, aRowStride, aColStride,
                b, bOff, bBatchStride, bRowStride, bColStride, c, cOff, cBatchStride, cRowStride);
        g.check("sgemm", Float.BYTES);
        if (g.empty()) return;
        if (k == 0) { g.zeroC(Float.BYTES); return; }
        if ((long) m * n * k < SMALL) {
            g.forEach(batch, bi -> sgemmBatchElement(g, bi));
        } else {
            for (int bi = 0; bi < batch; bi++) sgemmLarge(g, bi);
        }
    }

    /** The same in f64 (float64 gradient checks): one fma chain per element in ascending k, rows split across threads. */
    public static void dgemm(int batch, int m, int n, int k,
            MemorySegment a, long aOff, long aBatchStride, long aRowStride, long aColStride,
            MemorySegment b, long bOff, long bBatchStride, long bRowStride, long bColStride,
            MemorySegment c, long cOff, long cBatchStride, long cRowStride) {
        var g = new Gemm(batch, m, n, k, a, aOff, aBatchStride, aRowStride, aColStride,
                b, bOff, bBatchStride, bRowStride, bColStride, c, cOff, cBatchStride, cRowStride);
        g.check("dgemm", Double.BYTES);
        if (g.empty()) return;
        // Each task packs B once, so it takes at least 16 rows (packing ≤ 1/16 of its work), more when B is small.
        int rowsPerTask = (int) Math.min(m, Math.max(16, (1L << 18) / Math.max(1L, (long) n * k)));
        int rowTasks = (m + rowsPerTask - 1) / rowsPerTask;
        g.forEach(Math.multiplyExact(batch, rowTasks),
                t -> dgemmRows(g, t / rowTasks, (t % rowTasks) * rowsPerTask, Math.min(m, (t % rowTasks + 1) * rowsPerTask)));
    }

    /** The operands of one call; offsets and strides in elements. */
    record Gemm(int batch, int m, int n, int k,
            MemorySegment a, long aOff, long aBatchStride, long aRowStride, long aColStride,
            MemorySegment b, long bOff, long bBatchStride, long bRowStride, long bColStride,
            MemorySegment c, long cOff, long cBatchStride, long cRowStride) {

        boolean empty() { return batch == 0 || m == 0 || n == 0; }

        void check(String op, int elementBytes) {
            if (batch < 0 || m < 0 || n < 0 || k < 0)
                throw new IllegalArgumentException(op + ": negative size batch=" + batch + " m=" + m + " n=" + n + " k=" + k);
            if (empty()) return;
            inBounds(op, "A", a, aOff, aBatchStride, aRowStride, aColStride, m, k, elementBytes);
            inBounds(op, "B", b, bOff, bBatchStride, bRowStride, bColStride, k, n, elementBytes);
            inBounds(op, "C", c, cOff, cBatchStride, cRowStride, 1, m, n, elementBytes);
        }

        private void inBounds(String op, String name, MemorySegment s, long off, long batchStride, long rowStride,
                long colStride, int rows, int cols, int elementBytes) {
            if (rows == 0 || cols == 0) return;
            long lo = off, hi = off;
            for (long[] d : new long[][] {{batchStride, batch}, {rowStride, rows}, {colStride, cols}}) {
                long span = Math.multiplyExact(d[0], d[1] - 1);
                if (span < 0) lo += span; else hi += span;
            }
            long elements = s.byteSize() / elementBytes;
            if (lo < 0 || hi >= elements)
                throw new IndexOutOfBoundsException(String.format(
                        "%s: %s [%d, %d, %d] at offset %d, strides (%d, %d, %d) reaches elements %d..%d of a segment of %d",
                        op, name, batch, rows, cols, off, batchStride, rowStride, colStride, lo, hi, elements));
        }

        /**
         * Parallel.forEach, or a plain loop on this thread when a segment is confined to it (the
         * result is the same bits either way).
         */
        void forEach(int count, IntConsumer task) {
            if (a.isAccessibleBy(NOT_THIS_THREAD) && b.isAccessibleBy(NOT_THIS_THREAD) && c.isAccessibleBy(NOT_THIS_THREAD))
                Parallel.forEach(count, task);
            else
                for (int t = 0; t < count; t++) task.accept(t);
        }

        void zeroC(int elementBytes) {
            for (int bi = 0; bi < batch; bi++)
                for (int i = 0; i < m; i++)
                    c.asSlice((cOff + bi * cBatchStride + i * cRowStride) * elementBytes, (long) n * elementBytes).fill((byte) 0);
        }
    }

    // ---- sgemm -------------------------------------------------------------------------------

    /** Per-thread packing buffers and the C tile that edge micro-tiles are computed in. */
    private static final class Scratch {
        float[] a = new float[0];
        float[] b = new float[0];
        float[] row = new float[0];
        final MemorySegment edge = Arena.ofAuto().allocate((long) MR * NR * Float.BYTES, 64);

        float[] a(int size) { return a.length >= size ? a : (a = new float[size]); }
        float[] b(int size) { return b.length >= size ? b : (b = new float[size]); }
        float[] row(int size) { return row.length >= size ? row : (row = new float[size]); }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** One whole batch element on this thread (small matrices, many of them). */
    private static void sgemmBatchElement(Gemm g, int bi) {
        Scratch s = SCRATCH.get();
        for (int jc = 0; jc < g.n; jc += NC) {
            int nc = Math.min(NC, g.n - jc);
            int panels = (nc + NR - 1) / NR;
            for (int pc = 0; pc < g.k; pc += KC) {
                int kc = Math.min(KC, g.k - pc);
                float[] bp = s.b(panels * kc * NR);
                for (int jp = 0; jp < panels; jp++) packB(g, bi, pc, kc, jc + jp * NR, bp, jp * kc * NR, s);
                for (int ic = 0; ic < g.m; ic += MC)
                    blockTask(g, bi, ic, Math.min(MC, g.m - ic), jc, 0, panels, pc, kc, bp, s);
            }
        }
    }

    /** One large batch element: B panels packed once and shared, tasks over (MC row block × column range). */
    private static void sgemmLarge(Gemm g, int bi) {
        int rowBlocks = (g.m + MC - 1) / MC;
        for (int jc = 0; jc < g.n; jc += NC) {
            int nc = Math.min(NC, g.n - jc);
            int panels = (nc + NR - 1) / NR;
            int colSplits = Math.min(panels, (MIN_TASKS + rowBlocks - 1) / rowBlocks);
            int panelsPerSplit = (panels + colSplits - 1) / colSplits;
            int jcc = jc;
            float[] bp = new float[panels * Math.min(KC, g.k) * NR];
            for (int pc = 0; pc < g.k; pc += KC) {
                int kc = Math.min(KC, g.k - pc), pcc = pc;
                int packGroup = 4;
                g.forEach((panels + packGroup - 1) / packGroup, t -> {
                    Scratch s = SCRATCH.get();
                    for (int jp = t * packGroup; jp < Math.min(panels, (t + 1) * packGroup); jp++)
                        packB(g, bi, pcc, kc, jcc + jp * NR, bp, jp * kc * NR, s);
                });
                g.forEach(rowBlocks * colSplits, t -> {
                    int ic = (t / colSplits) * MC;
                    int p0 = (t % colSplits) * panelsPerSplit, p1 = Math.min(panels, p0 + panelsPerSplit);
                    if (p0 < p1) blockTask(g, bi, ic, Math.min(MC, g.m - ic), jcc, p0, p1, pcc, kc, bp, SCRATCH.get());
                });
            }
        }
    }

    /** C[ic:ic+mc, jc+p0·NR : jc+p1·NR) (+)= A[ic:ic+mc, pc:pc+kc] · (packed B micro-panels p0 … p1−1). */
    private static void blockTask(Gemm g, int bi, int ic, int mc, int jc, int p0, int p1, int pc, int kc, float[] bp, Scratch s) {
        int rowPanels = (mc + MR - 1) / MR;
        float[] ap = s.a(rowPanels * MR * kc);
        for (int ip = 0; ip < rowPanels; ip++) packA(g, bi, ic + ip * MR, pc, kc, ap, ip * MR * kc);
        boolean first = pc == 0;
        long cRowBytes = g.cRowStride * Float.BYTES;
        for (int jp = p0; jp < p1; jp++) {
            int j = jc + jp * NR, nr = Math.min(NR, g.n - j);
            for (int ip = 0; ip < rowPanels; ip++) {
                int i = ic + ip * MR, mr = Math.min(MR, g.m - i);
                long cByte = (g.cOff + bi * g.cBatchStride + i * g.cRowStride + j) * Float.BYTES;
                if (mr == MR && nr == NR) {
                    if (first) zeroTile(g.c, cByte, cRowBytes);
                    kernel(ap, ip * MR * kc, kc, bp, jp * kc * NR, g.c, cByte, cRowBytes);
                } else {
                    // Edge tile: run the same kernel on a full tile in scratch, move only the valid part.
                    long tileRow = (long) NR * Float.BYTES;
                    if (first) zeroTile(s.edge, 0, tileRow);
                    else for (int r = 0; r < mr; r++)
                            copyFloats(g.c, cByte + r * cRowBytes, s.edge, r * tileRow, nr);
                    kernel(ap, ip * MR * kc, kc, bp, jp * kc * NR, s.edge, 0, tileRow);
                    for (int r = 0; r < mr; r++)
                        copyFloats(s.edge, r * tileRow, g.c, cByte + r * cRowBytes, nr);
                }
            }
        }
    }

    // Packing copies runs of tens of floats: a vector loop beats MemorySegment.copy's per-call cost there.

    private static void copyFloats(MemorySegment src, long srcByte, float[] dst, int at, int count) {
        int i = 0;
        for (; i <= count - LANES; i += LANES)
            FloatVector.fromMemorySegment(FS, src, srcByte + (long) i * Float.BYTES, NATIVE).intoArray(dst, at + i);
        if (i < count) {
            var tail = FS.indexInRange(i, count);
            FloatVector.fromMemorySegment(FS, src, srcByte + (long) i * Float.BYTES, NATIVE, tail).intoArray(dst, at + i, tail);
        }
    }

    private static void copyFloats(MemorySegment src, long srcByte, MemorySegment dst, long dstByte, int count) {
        int i = 0;
        for (; i <= count - LANES; i += LANES)
            FloatVector.fromMemorySegment(FS, src, srcByte + (long) i * Float.BYTES, NATIVE)
                    .intoMemorySegment(dst, dstByte + (long) i * Float.BYTES, NATIVE);
        if (i < count) {
            var tail = FS.indexInRange(i, count);
            FloatVector.fromMemorySegment(FS, src, srcByte + (long) i * Float.BYTES, NATIVE, tail)
                    .intoMemorySegment(dst, dstByte + (long) i * Float.BYTES, NATIVE, tail);
        }
    }

    private static void zeroTile(MemorySegment c, long cByte, long cRowBytes) {
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++) FZERO.intoMemorySegment(c, cByte + r * cRowBytes + v * VBYTES, NATIVE);
    }

    /** Packs A[i0:i0+MR, pc:pc+kc] row by row (row r at dst[at + r·kc]); rows past m are zero. */
    private static void packA(Gemm g, int bi, int i0, int pc, int kc, float[] dst, int at) {
        int mr = Math.min(MR, g.m - i0);
        long base = g.aOff + bi * g.aBatchStride + i0 * g.aRowStride + pc * g.aColStride;
        if (g.aColStride == 1) {
            for (int r = 0; r < mr; r++)
                copyFloats(g.a, (base + r * g.aRowStride) * Float.BYTES, dst, at + r * kc, kc);
        } else {
            // Transposed or strided A: walk memory along its smaller stride.
            if (Math.abs(g.aRowStride) <= Math.abs(g.aColStride)) {
                for (int p = 0; p < kc; p++)
                    for (int r = 0; r < mr; r++)
                        dst[at + r * kc + p] = g.a.getAtIndex(F32, base + r * g.aRowStride + p * g.aColStride);
            } else {
                for (int r = 0; r < mr; r++)
                    for (int p = 0; p < kc; p++)
                        dst[at + r * kc + p] = g.a.getAtIndex(F32, base + r * g.aRowStride + p * g.aColStride);
            }
        }
        Arrays.fill(dst, at + mr * kc, at + MR * kc, 0f);
    }

    /** Packs B[pc:pc+kc, j0:j0+NR] as kc rows of NR (row p at dst[at + p·NR]); columns past n are zero. */
    private static void packB(Gemm g, int bi, int pc, int kc, int j0, float[] dst, int at, Scratch s) {
        int nr = Math.min(NR, g.n - j0);
        long base = g.bOff + bi * g.bBatchStride + pc * g.bRowStride + j0 * g.bColStride;
        if (g.bColStride == 1) {
            for (int p = 0; p < kc; p++)
                copyFloats(g.b, (base + p * g.bRowStride) * Float.BYTES, dst, at + p * NR, nr);
        } else if (g.bRowStride == 1) {
            // B is a transposed view (x·Wᵀ): each column is contiguous along k.
            float[] col = s.row(kc);
            for (int j = 0; j < nr; j++) {
                copyFloats(g.b, (base + j * g.bColStride) * Float.BYTES, col, 0, kc);
                for (int p = 0; p < kc; p++) dst[at + p * NR + j] = col[p];
            }
        } else {
            for (int p = 0; p < kc; p++)
                for (int j = 0; j < nr; j++)
                    dst[at + p * NR + j] = g.b.getAtIndex(F32, base + p * g.bRowStride + j * g.bColStride);
        }
        if (nr < NR)
            for (int p = 0; p < kc; p++) Arrays.fill(dst, at + p * NR + nr, at + (p + 1) * NR, 0f);
    }

    /**
     * The MR×NR micro-kernel: C tile (at cByte, row stride cRowBytes) += Σp a[:,p]·b[p,:], each element
     * one fma chain in ascending p. A is MR packed rows of kc, B kc packed rows of NR. Written out
     * register by register (MR·NV accumulators, generated): C2 keeps such vector locals in registers.
     * The caller zeroes the tile before the first k slice: choosing between a zero constant and a load
     * here merged two vector values at the loop entry, and C2 then boxed every accumulator
     * (10 GFLOP/s instead of 200).
     */
    private static void kernel(float[] a, int aBase, int kc, float[] b, int bBase,
            MemorySegment c, long cByte, long cRowBytes) {
        long o0 = cByte;
        long o1 = cByte + 1 * cRowBytes;
        long o2 = cByte + 2 * cRowBytes;
        long o3 = cByte + 3 * cRowBytes;
        FloatVector c00 = FloatVector.fromMemorySegment(FS, c, o0, NATIVE);
        FloatVector c01 = FloatVector.fromMemorySegment(FS, c, o0 + 1 * VBYTES, NATIVE);
        FloatVector c02 = FloatVector.fromMemorySegment(FS, c, o0 + 2 * VBYTES, NATIVE);
        FloatVector c03 = FloatVector.fromMemorySegment(FS, c, o0 + 3 * VBYTES, NATIVE);
        FloatVector c10 = FloatVector.fromMemorySegment(FS, c, o1, NATIVE);
        FloatVector c11 = FloatVector.fromMemorySegment(FS, c, o1 + 1 * VBYTES, NATIVE);
        FloatVector c12 = FloatVector.fromMemorySegment(FS, c, o1 + 2 * VBYTES, NATIVE);
        FloatVector c13 = FloatVector.fromMemorySegment(FS, c, o1 + 3 * VBYTES, NATIVE);
        FloatVector c20 = FloatVector.fromMemorySegment(FS, c, o2, NATIVE);
        FloatVector c21 = FloatVector.fromMemorySegment(FS, c, o2 + 1 * VBYTES, NATIVE);
        FloatVector c22 = FloatVector.fromMemorySegment(FS, c, o2 + 2 * VBYTES, NATIVE);
        FloatVector c23 = FloatVector.fromMemorySegment(FS, c, o2 + 3 * VBYTES, NATIVE);
        FloatVector c30 = FloatVector.fromMemorySegment(FS, c, o3, NATIVE);
        FloatVector c31 = FloatVector.fromMemorySegment(FS, c, o3 + 1 * VBYTES, NATIVE);
        FloatVector c32 = FloatVector.fromMemorySegment(FS, c, o3 + 2 * VBYTES, NATIVE);
        FloatVector c33 = FloatVector.fromMemorySegment(FS, c, o3 + 3 * VBYTES, NATIVE);
        int a0 = aBase;
        int a1 = aBase + 1 * kc;
        int a2 = aBase + 2 * kc;
        int a3 = aBase + 3 * kc;
        for (int p = 0, bi = bBase; p < kc; p++, bi += NR) {
            FloatVector b0 = FloatVector.fromArray(FS, b, bi);
            FloatVector b1 = FloatVector.fromArray(FS, b, bi + 1 * LANES);
            FloatVector b2 = FloatVector.fromArray(FS, b, bi + 2 * LANES);
            FloatVector b3 = FloatVector.fromArray(FS, b, bi + 3 * LANES);
            FloatVector x0 = FloatVector.broadcast(FS, a[a0 + p]);
            c00 = x0.fma(b0, c00);
            c01 = x0.fma(b1, c01);
            c02 = x0.fma(b2, c02);
            c03 = x0.fma(b3, c03);
            FloatVector x1 = FloatVector.broadcast(FS, a[a1 + p]);
            c10 = x1.fma(b0, c10);
            c11 = x1.fma(b1, c11);
            c12 = x1.fma(b2, c12);
            c13 = x1.fma(b3, c13);
            FloatVector x2 = FloatVector.broadcast(FS, a[a2 + p]);
            c20 = x2.fma(b0, c20);
            c21 = x2.fma(b1, c21);
            c22 = x2.fma(b2, c22);
            c23 = x2.fma(b3, c23);
            FloatVector x3 = FloatVector.broadcast(FS, a[a3 + p]);
            c30 = x3.fma(b0, c30);
            c31 = x3.fma(b1, c31);
            c32 = x3.fma(b2, c32);
            c33 = x3.fma(b3, c33);
        }
        c00.intoMemorySegment(c, o0, NATIVE);
        c01.intoMemorySegment(c, o0 + 1 * VBYTES, NATIVE);
        c02.intoMemorySegment(c, o0 + 2 * VBYTES, NATIVE);
        c03.intoMemorySegment(c, o0 + 3 * VBYTES, NATIVE);
        c10.intoMemorySegment(c, o1, NATIVE);
        c11.intoMemorySegment(c, o1 + 1 * VBYTES, NATIVE);
        c12.intoMemorySegment(c, o1 + 2 * VBYTES, NATIVE);
        c13.intoMemorySegment(c, o1 + 3 * VBYTES, NATIVE);
        c20.intoMemorySegment(c, o2, NATIVE);
        c21.intoMemorySegment(c, o2 + 1 * VBYTES, NATIVE);
        c22.intoMemorySegment(c, o2 + 2 * VBYTES, NATIVE);
        c23.intoMemorySegment(c, o2 + 3 * VBYTES, NATIVE);
        c30.intoMemorySegment(c, o3, NATIVE);
        c31.intoMemorySegment(c, o3 + 1 * VBYTES, NATIVE);
        c32.intoMemorySegment(c, o3 + 2 * VBYTES, NATIVE);
        c33.intoMemorySegment(c, o3 + 3 * VBYTES, NATIVE);
    }

    // ---- dgemm -------------------------------------------------------------------------------

    private static final ThreadLocal<double[][]> DSCRATCH = ThreadLocal.withInitial(() -> new double[2][0]);

    /** C[bi][i0:i1, :] = A[bi][i0:i1, :]·B[bi] with B packed row-major once per task. */
    private static void dgemmRows(Gemm g, int bi, int i0, int i1) {
        int n = g.n, k = g.k;
        double[][] s = DSCRATCH.get();
        if (s[0].length < (long) k * n) s[0] = new double[Math.multiplyExact(k, n)];
        if (s[1].length < n) s[1] = new double[n];
        double[] bp = s[0], acc = s[1];
        long bBase = g.bOff + bi * g.bBatchStride;
        for (int p = 0; p < k; p++) {
            long row = bBase + p * g.bRowStride;
            if (g.bColStride == 1) MemorySegment.copy(g.b, F64, row * Double.BYTES, bp, p * n, n);
            else for (int j = 0; j < n; j++) bp[p * n + j] = g.b.getAtIndex(F64, row + j * g.bColStride);
        }
        int lanes = DS.length(), nv = n - n % lanes;
        for (int i = i0; i < i1; i++) {
            Arrays.fill(acc, 0, n, 0.0);
            long aRow = g.aOff + bi * g.aBatchStride + i * g.aRowStride;
            for (int p = 0; p < k; p++) {
                double x = g.a.getAtIndex(F64, aRow + p * g.aColStride);
                DoubleVector xv = DoubleVector.broadcast(DS, x);
                int off = p * n, j = 0;
                for (; j < nv; j += lanes)
                    xv.fma(DoubleVector.fromArray(DS, bp, off + j), DoubleVector.fromArray(DS, acc, j)).intoArray(acc, j);
                for (; j < n; j++) acc[j] = Math.fma(x, bp[off + j], acc[j]);
            }
            MemorySegment.copy(acc, 0, g.c, F64, (g.cOff + bi * g.cBatchStride + i * g.cRowStride) * Double.BYTES, n);
        }
    }
}

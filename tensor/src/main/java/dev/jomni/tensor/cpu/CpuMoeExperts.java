package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.HalfPrecision;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.spi.UnaryOp;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reference for {@link MoeExperts}: transformers' eager loop over experts in increasing index, each over
 * its tokens (slots t·K + k in increasing order) gathered into rows. Forward rounds every intermediate to x's
 * dtype exactly where the per-expert composition of Linear, silu, mul and index_add did, so its output is the
 * same bits as that composition (SparseMoe before this op). Backward computes in f32 (f64 for f64) from the
 * recomputed, rounded forward intermediates and rounds each gradient once.
 *
 * <p>Matrix products are one fma chain per element in ascending k (see {@link CpuMatmul}); with
 * {@code vector} they run in CpuMatmul's blocked Vector API kernels, else in plain loops: the same bits. Work
 * inside one expert is split by CpuMatmul (never across a reduction), so bits do not depend on the thread count.
 */
public final class CpuMoeExperts implements MoeExperts.Kernels {
    private final boolean vector;

    public CpuMoeExperts() { this(true); }

    /** @param vector false: the plain scalar loops (the reference the vector path is tested against) */
    public CpuMoeExperts(boolean vector) { this.vector = vector; }

    // ------------------------------------------------------------------------------------------ forward

    @Override
    public void forward(MoeExperts.Inputs in, Tensor out) {
        int n = in.tokens(), h = in.hidden();
        try (Arena arena = Arena.ofShared()) {
            var c = new Ctx(in, arena);
            Buf acc = c.buf((long) n * h);                               // [N, H], each token's running sum in x's dtype
            for (int e = 0; e < c.experts; e++) {
                int rows = c.count[e];
                if (rows == 0) continue;
                try (Scratch scratch = c.scratch()) {
                Expert x = c.forward(e);
                for (int r = 0; r < rows; r++) {
                    int slot = c.slots[c.start[e] + r], t = slot / c.k;
                    double w = c.weight(slot);
                    for (int j = 0; j < h; j++) {
                        long at = (long) t * h + j;
                        double y = c.round(x.down.get((long) r * h + j) * w);
                        acc.set(at, c.round(acc.get(at) + y));           // index_add in x's dtype, experts in order
                    }
                }
                }
            }
            store(acc, out, c.type);
        }
    }

    // ------------------------------------------------------------------------------------------ backward

    @Override
    public void backward(MoeExperts.Inputs in, Tensor dy, MoeExperts.Grads g) {
        int n = in.tokens(), h = in.hidden(), i = in.intermediate();
        MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
        try (Arena arena = Arena.ofShared()) {
            var c = new Ctx(in, arena);
            Buf dx = g.x() != null ? c.buf((long) n * h) : null;
            Buf dw = g.weights() != null ? c.buf((long) n * c.k) : null;
            Mat dyM = Mat.of(dy, 0, h);
            for (int e = 0; e < c.experts; e++) {
                int rows = c.count[e];
                if (rows == 0) {
                    zeroExpert(g, e);
                    continue;
                }
                try (Scratch scratch = c.scratch()) {
                Expert x = c.forward(e);
                Buf dY = c.gather(dyM, e, h);                           // [n, H]
                // G = dy·down[e] (+ s·(dy·B)·A): ∂(dy·down_e(h))/∂h, shared by dh and the weight's gradient
                Buf gm = c.mm(dY.mat(h), c.w(in.down(), e, h, i, false), rows, i, h);
                Buf p2 = null;
                if (dn != null) {
                    int r2 = dn.rank();
                    p2 = c.mm(dY.mat(h), c.w(dn.b(), e, h, r2, false), rows, r2, h);          // [n, r2]
                    Buf back = c.mm(p2.mat(r2), c.w(dn.a(), e, r2, i, false), rows, i, r2);   // [n, I]
                    for (long q = 0; q < (long) rows * i; q++) gm.set(q, gm.get(q) + dn.scaling() * back.get(q));
                }
                double[] w = new double[rows];
                for (int r = 0; r < rows; r++) {
                    int slot = c.slots[c.start[e] + r];
                    w[r] = c.weight(slot);
                    if (dw != null) {
                        double s = 0;
                        for (int j = 0; j < i; j++) s += gm.get((long) r * i + j) * x.h.get((long) r * i + j);
                        dw.set(slot, s);
                    }
                }
                boolean needDown = g.down() != null || (dn != null && (g.downA() != null || g.downB() != null));
                boolean needUpstream = g.x() != null || g.gateUp() != null || (gu != null && (g.gateUpA() != null || g.gateUpB() != null));
                Buf dD = null;
                if (needDown) {                                          // ∂L/∂down_e(h) = w·dy
                    dD = c.buf((long) rows * h);
                    for (int r = 0; r < rows; r++) for (int j = 0; j < h; j++) dD.set((long) r * h + j, w[r] * dY.get((long) r * h + j));
                }
                if (g.down() != null) storeExpert(c.mm(dD.mat(h).t(), x.h.mat(i), h, i, rows), g.down(), e);       // [H, I]
                if (dn != null && (g.downA() != null || g.downB() != null)) {
                    int r2 = dn.rank();
                    if (g.downB() != null) storeExpert(scale(c.mm(dD.mat(h).t(), x.t2.mat(r2), h, r2, rows), dn.scaling()), g.downB(), e);
                    if (g.downA() != null) {
                        Buf du = c.buf((long) rows * r2);                // s·(w·dy)·B = s·w·p2
                        for (int r = 0; r < rows; r++) for (int j = 0; j < r2; j++) du.set((long) r * r2 + j, dn.scaling() * w[r] * p2.get((long) r * r2 + j));
                        storeExpert(c.mm(du.mat(r2).t(), x.h.mat(i), r2, i, rows), g.downA(), e);
                    }
                }
                if (!needUpstream) continue;                             // closes this expert's scratch
                Buf dgu = c.buf((long) rows * 2 * i);                    // [n, 2I]: d gate ‖ d up
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < i; j++) {
                        long gi = (long) r * 2 * i + j, ui = gi + i, hi = (long) r * i + j;
                        double dh = w[r] * gm.get(hi), gate = x.gateUp.get(gi), up = x.gateUp.get(ui);
                        dgu.set(gi, dh * up * UnaryOp.SILU_GRAD.apply(gate, 0, 0));
                        dgu.set(ui, dh * x.act.get(hi));
                    }
                if (g.gateUp() != null) storeExpert(c.mm(dgu.mat(2 * i).t(), x.x.mat(h), 2 * i, h, rows), g.gateUp(), e);   // [2I, H]
                Buf du1 = null;
                if (gu != null && (g.gateUpA() != null || g.gateUpB() != null || g.x() != null)) {
                    int r1 = gu.rank();
                    if (g.gateUpB() != null) storeExpert(scale(c.mm(dgu.mat(2 * i).t(), x.t1.mat(r1), 2 * i, r1, rows), gu.scaling()), g.gateUpB(), e);
                    if (g.gateUpA() != null || g.x() != null) {
                        du1 = scale(c.mm(dgu.mat(2 * i), c.w(gu.b(), e, 2 * i, r1, false), rows, r1, 2 * i), gu.scaling());   // [n, r1]
                        if (g.gateUpA() != null) storeExpert(c.mm(du1.mat(r1).t(), x.x.mat(h), r1, h, rows), g.gateUpA(), e);
                    }
                }
                if (dx != null) {
                    Buf rowsDx = c.mm(dgu.mat(2 * i), c.w(in.gateUp(), e, 2 * i, h, false), rows, h, 2 * i);        // [n, H]
                    Buf lora = du1 == null ? null : c.mm(du1.mat(gu.rank()), c.w(gu.a(), e, gu.rank(), h, false), rows, h, gu.rank());
                    for (int r = 0; r < rows; r++) {
                        int t = c.slots[c.start[e] + r] / c.k;
                        for (int j = 0; j < h; j++) {
                            long q = (long) r * h + j, at = (long) t * h + j;
                            dx.set(at, dx.get(at) + rowsDx.get(q) + (lora == null ? 0 : lora.get(q)));
                        }
                    }
                }
                }
            }
            if (dx != null) store(dx, g.x(), g.x().dtype());
            if (dw != null) store(dw, g.weights(), g.weights().dtype());   // slots routed to no expert stay 0
        }
    }

    // ------------------------------------------------------------------------------------------ one expert's forward

    /** Expert e's rows and its rounded intermediates: x [n, H], gateUp [n, 2I], act = silu(gate), h [n, I], down [n, H]; LoRA t1 = x·Aᵀ, t2 = h·Aᵀ. */
    private record Expert(Buf x, Buf gateUp, Buf act, Buf h, Buf down, Buf t1, Buf t2) {}

    /** One call's routing (slots grouped by expert, by counting sort) and scratch memory. */
    private final class Ctx {
        final MoeExperts.Inputs in;
        private final Arena call;
        private Arena arena;                                             // where buf allocates: the call's, or one expert's
        final DType type;
        final boolean f64;
        final int experts, k;
        final int[] count, start, slots;
        final MemorySegment weights;

        Ctx(MoeExperts.Inputs in, Arena arena) {
            this.in = in;
            call = this.arena = arena;
            type = in.x().dtype();
            f64 = type == DType.F64;
            experts = in.experts();
            k = in.topK();
            int n = in.tokens(), slotCount = n * k;
            MemorySegment ids = CpuBackend.seg(in.ids());
            DType idType = in.ids().dtype();
            long idOff = TensorAccess.offset(in.ids());
            int[] id = new int[slotCount];
            count = new int[experts];
            for (int s = 0; s < slotCount; s++) {
                long v = (long) CpuBackend.get(ids, idType, idOff + s);
                if (v < -1 || v >= experts)
                    throw new IllegalArgumentException("moeExperts: ids[" + s / k + ", " + s % k + "] = " + v + " is out of range for "
                            + experts + " experts (−1: no expert)");
                id[s] = (int) v;
                if (v >= 0) count[(int) v]++;
            }
            start = new int[experts + 1];
            for (int e = 0; e < experts; e++) start[e + 1] = start[e] + count[e];
            slots = new int[start[experts]];
            int[] fill = start.clone();
            for (int s = 0; s < slotCount; s++) if (id[s] >= 0) slots[fill[id[s]]++] = s;   // ascending slot order per expert
            weights = CpuBackend.seg(in.weights());
        }

        /** A shared arena (CpuMatmul's threads read it) for one expert's scratch; closing it returns to the call's. */
        Scratch scratch() {
            Arena expert = Arena.ofShared();
            arena = expert;
            return () -> {
                arena = call;
                expert.close();
            };
        }

        double weight(int slot) { return CpuBackend.get(weights, type, TensorAccess.offset(in.weights()) + slot); }

        /** v rounded to x's dtype, as storing it in a tensor of that dtype would. */
        double round(double v) {
            return switch (type) {
                case F64 -> v;
                case F32 -> (float) v;
                case BF16 -> HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16((float) v));
                case F16 -> Float.float16ToFloat(Float.floatToFloat16((float) v));
                default -> throw new IllegalStateException(type.name());
            };
        }

        Buf buf(long elements) { return new Buf(arena.allocate(Math.max(1, elements) * (f64 ? 8 : 4), 64), f64); }

        /** Rows of m ([N·?, width] addressed by token) for expert e's slots: [n, width]. */
        Buf gather(Mat m, int e, int width) {
            int rows = count[e];
            Buf out = buf((long) rows * width);
            for (int r = 0; r < rows; r++) {
                long t = slots[start[e] + r] / k;
                for (int j = 0; j < width; j++) out.set((long) r * width + j, m.get(t, j));
            }
            return out;
        }

        /** Expert e's matrix of a stacked [E, rows, cols] tensor, or its transpose. */
        Mat w(Tensor t, int e, int rows, int cols, boolean transpose) {
            Mat m = new Mat(CpuBackend.seg(t), t.dtype(), TensorAccess.offset(t) + (long) e * rows * cols, cols, 1);
            return transpose ? m.t() : m;
        }

        /** [m, n] = a [m, kk] · b [kk, n], unrounded (f32 or f64). */
        Buf mm(Mat a, Mat b, int m, int n, int kk) {
            Buf out = buf((long) m * n);
            if (vector) blocked(a, b, m, n, kk, out);
            else
                for (int r = 0; r < m; r++)
                    for (int j = 0; j < n; j++) {
                        if (f64) {
                            double acc = 0;
                            for (int p = 0; p < kk; p++) acc = Math.fma(a.get(r, p), b.get(p, j), acc);
                            out.set((long) r * n + j, acc);
                        } else {
                            float acc = 0;
                            for (int p = 0; p < kk; p++) acc = Math.fma((float) a.get(r, p), (float) b.get(p, j), acc);
                            out.set((long) r * n + j, acc);
                        }
                    }
            return out;
        }

        private void blocked(Mat a, Mat b, int m, int n, int kk, Buf out) {
            Mat a2 = compute(a, m, kk), b2 = compute(b, kk, n);
            if (f64)
                CpuMatmul.dgemm(1, m, n, kk, a2.seg(), a2.off(), 0, a2.rs(), a2.cs(), b2.seg(), b2.off(), 0, b2.rs(), b2.cs(), out.seg(), 0, 0, n);
            else
                CpuMatmul.sgemm(1, m, n, kk, a2.seg(), a2.off(), 0, a2.rs(), a2.cs(), b2.seg(), b2.off(), 0, b2.rs(), b2.cs(), out.seg(), 0, 0, n);
        }

        /** m itself when its memory holds the compute type, else a row-major copy in it (16-bit weights). */
        private Mat compute(Mat m, int rows, int cols) {
            if (m.type() == (f64 ? DType.F64 : DType.F32)) return m;
            Buf copy = buf((long) rows * cols);
            for (int r = 0; r < rows; r++) for (int j = 0; j < cols; j++) copy.set((long) r * cols + j, m.get(r, j));
            return copy.mat(cols);
        }

        /** Expert e's forward, every intermediate rounded to x's dtype where the composition rounded it. */
        Expert forward(int e) {
            int rows = count[e], h = in.hidden(), i = in.intermediate();
            MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
            Buf x = gather(Mat.of(in.x(), 0, h), e, h);
            Buf gateUp = roundAll(mm(x.mat(h), w(in.gateUp(), e, 2 * i, h, true), rows, 2 * i, h));
            Buf t1 = gu == null ? null : roundAll(mm(x.mat(h), w(gu.a(), e, gu.rank(), h, true), rows, gu.rank(), h));
            if (gu != null) addLora(gateUp, t1, w(gu.b(), e, 2 * i, gu.rank(), true), rows, 2 * i, gu.rank(), gu.scaling());
            Buf act = buf((long) rows * i), hm = buf((long) rows * i);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < i; j++) {
                    long q = (long) r * i + j, gi = (long) r * 2 * i + j;
                    double a = round(UnaryOp.SILU.apply(gateUp.get(gi), 0, 0));
                    act.set(q, a);
                    hm.set(q, round(a * gateUp.get(gi + i)));
                }
            Buf down = roundAll(mm(hm.mat(i), w(in.down(), e, h, i, true), rows, h, i));
            Buf t2 = dn == null ? null : roundAll(mm(hm.mat(i), w(dn.a(), e, dn.rank(), i, true), rows, dn.rank(), i));
            if (dn != null) addLora(down, t2, w(dn.b(), e, h, dn.rank(), true), rows, h, dn.rank(), dn.scaling());
            return new Expert(x, gateUp, act, hm, down, t1, t2);
        }

        /** y ← round(y + round(s·round(t·Bᵀ))): Linear + Lora as composed (the scaling is mul(double), a·x + 0). */
        private void addLora(Buf y, Buf t, Mat bT, int rows, int n, int r, double s) {
            Buf u = mm(t.mat(r), bT, rows, n, r);
            for (long q = 0; q < (long) rows * n; q++) y.set(q, round(y.get(q) + round(s * round(u.get(q)) + 0.0)));
        }

        private Buf roundAll(Buf b) {
            if (type == DType.F64 || type == DType.F32) return b;           // the buffer's own precision already
            for (long q = 0; q < b.seg().byteSize() / 4; q++) b.set(q, round(b.get(q)));
            return b;
        }
    }

    /** An expert's scratch memory, freed when closed. */
    private interface Scratch extends AutoCloseable {
        @Override void close();
    }

    private static Buf scale(Buf b, double s) {
        for (long q = 0; q < b.seg().byteSize() / (b.f64() ? 8 : 4); q++) b.set(q, b.get(q) * s);
        return b;
    }

    // ------------------------------------------------------------------------------------------ memory

    /** Scratch in the compute type (f32, or f64 for f64 inputs), row-major. */
    private record Buf(MemorySegment seg, boolean f64) {
        double get(long i) { return f64 ? seg.getAtIndex(ValueLayout.JAVA_DOUBLE, i) : seg.getAtIndex(ValueLayout.JAVA_FLOAT, i); }

        void set(long i, double v) {
            if (f64) seg.setAtIndex(ValueLayout.JAVA_DOUBLE, i, v);
            else seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) v);
        }

        Mat mat(int cols) { return new Mat(seg, f64 ? DType.F64 : DType.F32, 0, cols, 1); }
    }

    /** A strided matrix over some memory: element (r, c) at off + r·rs + c·cs, in elements of type. */
    private record Mat(MemorySegment seg, DType type, long off, long rs, long cs) {
        static Mat of(Tensor t, long off, int cols) { return new Mat(CpuBackend.seg(t), t.dtype(), TensorAccess.offset(t) + off, cols, 1); }

        double get(long r, long c) { return CpuBackend.get(seg, type, off + r * rs + c * cs); }

        Mat t() { return new Mat(seg, type, off, cs, rs); }
    }

    /** Writes b (rounded to the tensor's dtype) into expert e's [rows, cols] slice of a stacked gradient. */
    private static void storeExpert(Buf b, Tensor grad, int e) {
        long per = grad.numel() / grad.size(0), base = TensorAccess.offset(grad) + e * per;
        MemorySegment s = CpuBackend.seg(grad);
        for (long q = 0; q < per; q++) CpuBackend.set(s, grad.dtype(), base + q, b.get(q));
    }

    private static void zeroExpert(MoeExperts.Grads g, int e) {
        for (Tensor t : new Tensor[] {g.gateUp(), g.down(), g.gateUpA(), g.gateUpB(), g.downA(), g.downB()}) {
            if (t == null) continue;
            long per = t.numel() / t.size(0);
            CpuBackend.seg(t).asSlice((TensorAccess.offset(t) + e * per) * t.dtype().byteSize, per * t.dtype().byteSize).fill((byte) 0);
        }
    }

    private static void store(Buf b, Tensor t, DType type) {
        MemorySegment s = CpuBackend.seg(t);
        for (long q = 0; q < t.numel(); q++) CpuBackend.set(s, type, TensorAccess.offset(t) + q, b.get(q));
    }
}

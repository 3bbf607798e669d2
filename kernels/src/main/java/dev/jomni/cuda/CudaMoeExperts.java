package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.ArrayList;
import java.util.List;

/**
 * MoeExperts' CUDA kernels (moe_experts.cu). Routing is computed on the device (histogram, prefix sum, stable
 * scatter into expert-sorted order), so the host never learns how many tokens each expert got: every launch's
 * grid is a bound from the shapes (ceil(S/64) + min(E, S) row tiles, S = N·K slots), and blocks past an expert's rows
 * exit. Then grouped GEMMs (f32 accumulation, f64 for f64) with silu·up and the LoRA terms in their epilogues,
 * and a combine that sums each token's expert outputs in the reference's (expert, k) order, without atomics.
 * Backward recomputes the forward intermediates, as CpuMoeExperts does. bf16, f16, f32 (f32 compute) and f64.
 * GEMMs whose A and B are both bf16 run on tensor cores (f32 accumulation, 128×128 tiles): the row GEMMs on
 * mma.sync m16n8k16 with ldmatrix and 4 cp.async stages ({@code -Djomni.moe.kernel=wmma}: the older wmma 16×16×16
 * kernels with 2 stages, a benchmark variant), the weight gradients likewise (one block per expert and output tile,
 * walking the expert's rows in order: deterministic). For bf16 x the backward's intermediate gradients that feed
 * GEMMs (dgu, du1 = s·dgu·B, p2 = dy·B) are kept in bf16 so those GEMMs run on tensor cores too; the reference
 * keeps them in f32, and the extra rounding (a relative 2^-9 per element) stays well inside the bf16 bounds of
 * CudaMoeExpertsTest. {@code -Djomni.moe.simt=true} runs every GEMM on the SIMT kernels with f32 scratch (a
 * diagnosis switch). NF4 experts (frozen: no base gradients): with bf16 x the tensor-core GEMMs read the codes
 * (32-bit words a step ahead into registers, decoded to bf16 into the shared-memory B tile: the reference's bits);
 * otherwise the call dequantizes dense copies first. Decode (at most 512 slots, bf16): the forward's x·Wᵀ GEMMs stream
 * each selected expert's weight rows once (moe_gemm_rows_decode, f32 FMA; {@code -Djomni.moe.decode=mma16}: tensor
 * cores with 16-row tiles instead).
 *
 * <p>Scratch (freed at the end of each call, stream-ordered): int32 routing (S·2 + C·E + 4E + 4 ints) and
 * per-slot rows of S = N·K (the bound on routed slots): forward gate/up products h [S, I] and y [S, H] in x's
 * dtype; backward also gate ‖ up [S, 2I], f32 (f64) g [S, I] and dx rows [S, H], and dgu [S, 2I] in bf16 (tensor
 * cores) or f32 (f64).
 */
final class CudaMoeExperts implements MoeExperts.Kernels {
    private static final String FILE = "moe_experts", OP = "moeExperts";
    private static final int THREADS = 256;
    /** moe_experts.cu's BM = BN: the SIMT GEMMs' 64×64 output tiles (SWIGLU tiles: 32 gate and 32 up columns). */
    private static final int TILE = 64;
    /** moe_experts.cu's TBM = TBN: the tensor-core GEMMs' 128×128 output tiles (SWIGLU: 64 gate and 64 up columns). */
    private static final int TILE_TC = 128;
    /** moe_scan is one block of 512 threads, one per expert. */
    private static final int MAX_EXPERTS = 512;
    /** moe_combine ranks a token's slots with one thread each. */
    private static final int MAX_TOPK = THREADS;
    private static final int MODE_STORE = 0, MODE_SWIGLU = 1;

    /** moe_experts.cu's MMA_SMEM and WGRAD_SMEM: the mma.sync kernels' dynamic shared memory (4 stages of tiles). */
    private static final int MMA_SMEM = 81920, WGRAD_SMEM = 69632;

    /** moe_experts.cu's DEC_ROWS and DEC_COLS: the decode kernel's row group and column slice; its shared memory bound. */
    private static final int DEC_ROWS = 8, DEC_COLS = 32, DECODE_SMEM_MAX = 160 * 1024;
    /** moe_experts.cu's MMA16_SMEM: moe_gemm_rows_mma16's dynamic shared memory; its 16-row tiles. */
    private static final int MMA16_SMEM = 46080, TILE_16 = 16;

    /** The decode path's kernel: f32 FMA over streamed weight rows (the default) or tensor cores with 16-row tiles. */
    enum DecodeKernel { SIMT, MMA16 }

    /** Which kernels run the bf16 GEMMs: mma.sync + ldmatrix with 4 stages (the default) or the older wmma ones. */
    enum TcKernel { MMA, WMMA }

    private final CudaBackend backend;
    /** Row GEMMs whose A and B are both bf16 run on tensor cores (f32 accumulation); false: all SIMT. */
    private final boolean tensorCores;
    private final TcKernel tcKernel;
    /** Calls with at most this many slots (N·K) run the forward's x·Wᵀ GEMMs on the decode kernel (bandwidth-bound). */
    private final int decodeSlots;
    private final DecodeKernel decodeKernel;
    /** Kernels already allowed their dynamic shared memory above 48 KiB (once per kernel, per context). */
    private final java.util.concurrent.ConcurrentHashMap<Kernel, Boolean> optedIn = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * -Djomni.moe.simt=true: SIMT GEMMs only; -Djomni.moe.kernel=wmma: the wmma GEMMs; -Djomni.moe.decodeSlots=n: the
     * decode kernel up to n slots (default 512: 64 tokens of top-8; 0: never); -Djomni.moe.decode=mma16: the decode
     * path on tensor cores. Benchmark variants.
     */
    CudaMoeExperts(CudaBackend backend) {
        this(backend, !Boolean.getBoolean("jomni.moe.simt"),
                TcKernel.valueOf(System.getProperty("jomni.moe.kernel", "mma").toUpperCase(java.util.Locale.ROOT)),
                Integer.getInteger("jomni.moe.decodeSlots", DECODE_SLOTS),
                DecodeKernel.valueOf(System.getProperty("jomni.moe.decode", "simt").toUpperCase(java.util.Locale.ROOT)));
    }

    CudaMoeExperts(CudaBackend backend, boolean tensorCores) {
        this(backend, tensorCores, TcKernel.MMA, DECODE_SLOTS, DecodeKernel.SIMT);
    }

    CudaMoeExperts(CudaBackend backend, boolean tensorCores, TcKernel tcKernel, int decodeSlots, DecodeKernel decodeKernel) {
        this.backend = backend;
        this.tensorCores = tensorCores;
        this.tcKernel = tcKernel;
        this.decodeSlots = decodeSlots;
        this.decodeKernel = decodeKernel;
    }

    static final int DECODE_SLOTS = 512;

    /**
     * NF4 experts: the bf16 tensor-core GEMMs read the codes themselves (decoded into their shared-memory tiles);
     * other dtypes, and the SIMT switch, get dense copies of the weights made for the call.
     */
    @Override
    public boolean takesNf4() { return true; }

    // ------------------------------------------------------------------------------------------ forward

    @Override
    public void forward(MoeExperts.Inputs in, Tensor out) {
        int n = in.tokens(), h = in.hidden(), i = in.intermediate();
        if (n == 0 || h == 0) return;
        Call c = new Call(in);
        try {
            MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
            int s = c.slots;
            Tensor t1 = null;
            if (gu != null) {                                            // t1 = round(x·Aᵀ) [S, r1]
                t1 = c.temp(c.type, s, gu.rank());
                c.rows(Rows.of(gu.rank(), h).a(in.x(), h, true).b(gu.a(), h, (long) gu.rank() * h, true).c(t1, gu.rank()));
            }
            Tensor hm = c.temp(c.type, s, i);                            // h = round(silu(gate)·up) [S, I]
            c.rows(Rows.of(i, h).a(in.x(), h, true).b(c.gateUp, c.gateUpNf4, h, 2L * i * h, true).c(hm, i).swiglu(i, null)
                    .lora(t1, gu, 2 * i));
            Tensor t2 = null;
            if (dn != null) {                                            // t2 = round(h·Aᵀ) [S, r2]
                t2 = c.temp(c.type, s, dn.rank());
                c.rows(Rows.of(dn.rank(), i).a(hm, i, false).b(dn.a(), i, (long) dn.rank() * i, true).c(t2, dn.rank()));
            }
            Tensor y = c.temp(c.type, s, h);                             // y = round(h·downᵀ (+ LoRA)) [S, H]
            c.rows(Rows.of(h, i).a(hm, i, false).b(c.down, c.downNf4, i, (long) h * i, true).c(y, h).lora(t2, dn, h));
            c.combine(y, true, out);
        } finally {
            c.close();
        }
    }

    // ------------------------------------------------------------------------------------------ backward

    @Override
    public void backward(MoeExperts.Inputs in, Tensor dy, MoeExperts.Grads g) {
        int n = in.tokens(), h = in.hidden(), i = in.intermediate();
        MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
        boolean needUpstream = g.x() != null || g.gateUp() != null || g.gateUpA() != null || g.gateUpB() != null;
        boolean needG = g.weights() != null || needUpstream;
        boolean needDown = g.down() != null || g.downA() != null || g.downB() != null;
        if (!needG && !needDown) return;
        if (in.nf4() && (g.gateUp() != null || g.down() != null))
            throw new IllegalArgumentException("moeExperts on CUDA: NF4 experts are frozen; a gradient of gateUp or down was asked for");
        Call c = new Call(in);
        try {
            int s = c.slots;
            // gradients that feed GEMMs: bf16 where those GEMMs run on tensor cores, else the compute type
            DType gt = tensorCores && c.type == DType.BF16 ? DType.BF16 : c.compute;
            // the forward's intermediates, recomputed: t1, gate ‖ up, h (t2 only for down's LoRA B)
            Tensor t1 = null;
            if (gu != null) {
                t1 = c.temp(c.type, s, gu.rank());
                c.rows(Rows.of(gu.rank(), h).a(in.x(), h, true).b(gu.a(), h, (long) gu.rank() * h, true).c(t1, gu.rank()));
            }
            Tensor gateUp = needUpstream ? c.temp(c.type, s, 2 * i) : null, hm = c.temp(c.type, s, i);
            c.rows(Rows.of(i, h).a(in.x(), h, true).b(c.gateUp, c.gateUpNf4, h, 2L * i * h, true).c(hm, i).swiglu(i, gateUp)
                    .lora(t1, gu, 2 * i));
            Tensor t2 = null;
            if (dn != null && g.downB() != null) {
                t2 = c.temp(c.type, s, dn.rank());
                c.rows(Rows.of(dn.rank(), i).a(hm, i, false).b(dn.a(), i, (long) dn.rank() * i, true).c(t2, dn.rank()));
            }
            // G = dy·down[e] (+ s·(dy·B)·A) [S, I]: ∂(dy·down_e(h))/∂h before the routing weight
            Tensor gm = null, p2 = null;
            if (dn != null && (needG || g.downA() != null)) {           // p2 = dy·B [S, r2]
                p2 = c.temp(gt, s, dn.rank());
                c.rows(Rows.of(dn.rank(), h).a(dy, h, true).b(dn.b(), dn.rank(), (long) h * dn.rank(), false).c(p2, dn.rank()));
            }
            if (needG) {
                gm = c.temp(c.compute, s, i);
                c.rows(Rows.of(i, h).a(dy, h, true).b(c.down, c.downNf4, i, (long) h * i, false).c(gm, i));
                if (dn != null)
                    c.rows(Rows.of(i, dn.rank()).a(p2, dn.rank(), false).b(dn.a(), i, (long) dn.rank() * i, false).c(gm, i)
                            .accumulate(dn.scaling()));
            }
            if (g.weights() != null) c.dweights(gm, hm, g.weights());
            // down's gradients: Σ over the expert's rows of (w·dy)ᵀ·h, (w·dy)ᵀ·t2, (s·w·p2)ᵀ·h
            if (g.down() != null) c.wgrad(Wgrad.of(h, i).a(dy, h, true, true).b(hm, i, false).c(g.down()));
            if (g.downB() != null) c.wgrad(Wgrad.of(h, dn.rank()).a(dy, h, true, true).b(t2, dn.rank(), false).c(g.downB()).alpha(dn.scaling()));
            if (g.downA() != null) c.wgrad(Wgrad.of(dn.rank(), i).a(p2, dn.rank(), false, true).b(hm, i, false).c(g.downA()).alpha(dn.scaling()));
            if (!needUpstream) return;
            Tensor dgu = c.temp(gt, s, 2 * i);                            // d gate ‖ d up [S, 2I]
            c.swigluBackward(gm, gateUp, dgu);
            if (g.gateUp() != null) c.wgrad(Wgrad.of(2 * i, h).a(dgu, 2 * i, false, false).b(in.x(), h, true).c(g.gateUp()));
            if (g.gateUpB() != null)
                c.wgrad(Wgrad.of(2 * i, gu.rank()).a(dgu, 2 * i, false, false).b(t1, gu.rank(), false).c(g.gateUpB()).alpha(gu.scaling()));
            Tensor du1 = null;
            if (gu != null && (g.gateUpA() != null || g.x() != null)) {   // du1 = s·dgu·B [S, r1]
                du1 = c.temp(gt, s, gu.rank());
                c.rows(Rows.of(gu.rank(), 2 * i).a(dgu, 2 * i, false).b(gu.b(), gu.rank(), 2L * i * gu.rank(), false).c(du1, gu.rank())
                        .alpha(gu.scaling()));
            }
            if (g.gateUpA() != null) c.wgrad(Wgrad.of(gu.rank(), h).a(du1, gu.rank(), false, false).b(in.x(), h, true).c(g.gateUpA()));
            if (g.x() != null && n > 0) {                                 // dx rows = dgu·gateUp[e] (+ du1·A) [S, H], summed per token
                Tensor rows = c.temp(c.compute, s, h);
                c.rows(Rows.of(h, 2 * i).a(dgu, 2 * i, false).b(c.gateUp, c.gateUpNf4, h, 2L * i * h, false).c(rows, h));
                if (du1 != null)
                    c.rows(Rows.of(h, gu.rank()).a(du1, gu.rank(), false).b(gu.a(), h, (long) gu.rank() * h, false).c(rows, h).accumulate(1));
                c.combine(rows, false, g.x());
            }
        } finally {
            c.close();
        }
    }

    // ------------------------------------------------------------------------------------------ launches

    /** One row GEMM's operands (moe_experts.cu's GemmArgs): C[p, n] = α·Σ_q A(row(p), q)·B_e(q, n) (+ C). */
    private static final class Rows {
        final int n, kdim;
        Tensor a, b, cc, gu, lt, lb;
        Nf4Weight q;
        long lda, ldb, strideB, ldc, inter, rank, lbStride;
        boolean gatherA, transB, accumulate;
        int mode = MODE_STORE;
        double alpha = 1, lscale;

        private Rows(int n, int kdim) {
            this.n = n;
            this.kdim = kdim;
        }

        /** n output columns, a reduction over kdim. */
        static Rows of(int n, int kdim) { return new Rows(n, kdim); }

        /** A [·, lda] row-major, its row for p the token of sorted slot p (gather) or p. */
        Rows a(Tensor t, long ld, boolean gather) { a = t; lda = ld; gatherA = gather; return this; }

        /** B stacked by expert (strideB elements apart): transB, B(q, n) = b_e[n·ld + q]; else b_e[q·ld + n]. */
        Rows b(Tensor t, long ld, long stride, boolean trans) { b = t; ldb = ld; strideB = stride; transB = trans; return this; }

        /** B as above from the dense t, or (t null) decoded from the NF4 weight nf4 (flat: ld its columns). */
        Rows b(Tensor t, Nf4Weight nf4, long ld, long stride, boolean trans) {
            q = t == null ? nf4 : null;
            return b(t, ld, stride, trans);
        }

        Rows c(Tensor t, long ld) { cc = t; ldc = ld; return this; }

        Rows alpha(double v) { alpha = v; return this; }

        Rows accumulate(double v) { alpha = v; accumulate = true; return this; }

        /** n is I; columns j and I + j of b_e are gate and up; the rounded pair goes to gateUp [S, 2I] if not null. */
        Rows swiglu(int i, Tensor gateUp) { mode = MODE_SWIGLU; inter = i; gu = gateUp; return this; }

        /** Adds LoRA's s·(t·Bᵀ) (t [S, r], B [E, out, r]) in the epilogue; nothing where l is null. */
        Rows lora(Tensor t, MoeExperts.Lora l, int out) {
            if (l == null) return this;
            lt = t;
            lb = l.b();
            rank = l.rank();
            lbStride = (long) out * l.rank();
            lscale = l.scaling();
            return this;
        }
    }

    /** One weight-gradient GEMM's operands (WgradArgs): C_e[m, n] = α·Σ_{p of e} scale(p)·A(p, m)·B(p, n). */
    private static final class Wgrad {
        final int md, nd;
        Tensor a, b, cc;
        long lda, ldb;
        boolean gatherA, gatherB, scaled;
        double alpha = 1;

        private Wgrad(int md, int nd) {
            this.md = md;
            this.nd = nd;
        }

        static Wgrad of(int md, int nd) { return new Wgrad(md, nd); }

        /** A [·, lda]; gather: its row for p is the token of sorted slot p; scaled: times that slot's routing weight. */
        Wgrad a(Tensor t, long ld, boolean gather, boolean scale) { a = t; lda = ld; gatherA = gather; scaled = scale; return this; }

        Wgrad b(Tensor t, long ld, boolean gather) { b = t; ldb = ld; gatherB = gather; return this; }

        Wgrad c(Tensor t) { cc = t; return this; }

        Wgrad alpha(double v) { alpha = v; return this; }
    }

    /** One call: its device, dtypes, routing (queued on construction) and scratch. */
    private final class Call implements AutoCloseable {
        final MoeExperts.Inputs in;
        final CudaDevice d;
        final DType type, compute;
        final String suffix;
        final int slots, experts, topK, chunks;
        /** moe_gemm_rows' grid: Σ_e ceil(count_e / 64) ≤ ceil(S / 64) + min(E, S), whatever the counts; _tc's with 128. */
        final int tileBound, tileBoundTc;
        /** The experts: dense (given, or NF4 decoded for this call) or NF4 read by the tensor-core GEMMs (dense null). */
        final Tensor gateUp, down;
        final Nf4Weight gateUpNf4, downNf4;
        final long counts, offsets, tiles, sorted, pos, tilesTc, tiles16;
        /** moe_gemm_rows_mma16's grid bound, as tileBound with 16-row tiles. */
        final int tileBound16;
        private final List<Tensor> temps = new ArrayList<>();

        Call(MoeExperts.Inputs in) {
            this.in = in;
            type = in.x().dtype();
            if (type != DType.BF16 && type != DType.F16 && type != DType.F32 && type != DType.F64)
                throw new IllegalArgumentException("moeExperts on CUDA: x is " + type.lower() + ", kernels exist for bf16, f16, f32 and f64");
            compute = type == DType.F64 ? DType.F64 : DType.F32;
            suffix = type == DType.F64 ? "_f64" : "";
            experts = in.experts();
            topK = in.topK();
            if (experts > MAX_EXPERTS)
                throw new UnsupportedOperationException("moeExperts on CUDA: gateUp has " + experts + " experts; moe_experts.cu's moe_scan handles at most "
                        + MAX_EXPERTS + " (one block)");
            if (topK > MAX_TOPK)
                throw new UnsupportedOperationException("moeExperts on CUDA: ids [" + in.tokens() + ", " + topK + "] has more than " + MAX_TOPK
                        + " choices per token (moe_combine ranks them with one thread each)");
            long s = (long) in.tokens() * topK;
            if (s > Integer.MAX_VALUE / 2) throw new IllegalArgumentException("moeExperts on CUDA: " + s + " slots (N·K) do not fit int32 routing");
            slots = (int) s;
            chunks = (slots + THREADS - 1) / THREADS;
            // Σ_e ceil(count_e / tile) ≤ S / tile + (experts with rows) ≤ ceil(S / tile) + min(E, S): tight for decode;
            // at least one block (no slots: it exits), a grid is never empty
            tileBound = Math.max(1, Dim3.blocks(slots, TILE) + Math.min(experts, slots));
            tileBoundTc = Math.max(1, Dim3.blocks(slots, TILE_TC) + Math.min(experts, slots));
            tileBound16 = Math.max(1, Dim3.blocks(slots, TILE_16) + Math.min(experts, slots));
            d = backend.on(in.x().device());
            if (!in.nf4()) {
                gateUp = in.gateUp();
                down = in.down();
                gateUpNf4 = downNf4 = null;
            } else if (tensorCores && type == DType.BF16) {
                gateUp = down = null;
                gateUpNf4 = aligned(in.gateUpNf4());
                downNf4 = aligned(in.downNf4());
            } else {                                          // the SIMT GEMMs read dense weights only
                int e = experts, h = in.hidden(), i = in.intermediate();
                gateUp = dequantized(in.gateUpNf4(), e, 2 * i, h);
                down = dequantized(in.downNf4(), e, h, i);
                gateUpNf4 = downNf4 = null;
            }
            long ints = (long) chunks * experts + 4L * (experts + 1) + 2L * slots;
            Tensor r = temp(DType.I32, (int) ints);
            long base = CudaBackend.address(r);
            counts = base;
            offsets = counts + 4L * chunks * experts;
            tiles = offsets + 4L * (experts + 1);
            sorted = tiles + 4L * (experts + 1);
            pos = sorted + 4L * slots;
            tilesTc = pos + 4L * slots;
            tiles16 = tilesTc + 4L * (experts + 1);
            Tensor ids = in.ids();
            // moe_experts.cu's RouteArgs
            Launch l = Launch.begin().struct().i64(slots).i64(experts).i64(chunks).i64(CudaBackend.address(ids)).i64(ids.dtype().code)
                    .i64(counts).i64(offsets).i64(tiles).i64(sorted).i64(pos).i64(d.indexErrorAddress()).i64(d.opId(OP)).i64(tilesTc)
                    .i64(tiles16);
            if (slots > 0) l.launch(d.kernel(FILE, "moe_hist"), d.stream, chunks, THREADS);
            l.launch(d.kernel(FILE, "moe_scan"), d.stream, 1, MAX_EXPERTS);   // the packed parameters are reused
            if (slots > 0) l.launch(d.kernel(FILE, "moe_scatter"), d.stream, chunks, THREADS);
        }

        private Nf4Weight aligned(Nf4Weight w) {
            if (CudaBackend.address(w.packed()) % 4 != 0)
                throw new IllegalArgumentException("moeExperts on CUDA: NF4 codes of [" + w.rows() + ", " + w.cols() + "] at 0x"
                        + Long.toHexString(CudaBackend.address(w.packed())) + " are not 4-byte aligned (the GEMMs read 32-bit words)");
            return w;
        }

        private Tensor dequantized(Nf4Weight w, int... shape) {
            Tensor flat = w.dequantize();
            temps.add(flat);
            if (flat.dtype() == type) return flat.reshape(shape);
            Tensor t = flat.to(type);
            temps.add(t);
            return t.reshape(shape);
        }

        Tensor temp(DType t, int... shape) {
            Tensor x = Tensor.empty(in.x().device(), t, shape);
            temps.add(x);
            return x;
        }

        private Launch buf(Launch l, Tensor t) {
            return t == null ? l.i64(0).i64(DType.F32.code) : l.i64(CudaBackend.address(t)).i64(t.dtype().code);
        }

        void rows(Rows r) {
            if (r.n == 0) return;                            // no output columns: nothing to write (and no empty grid)
            boolean tc = tensorCores && r.a.dtype() == DType.BF16 && (r.q != null || r.b.dtype() == DType.BF16);
            boolean decode = tc && slots <= decodeSlots && r.transB && aligned(r.a, r.lda) && r.kdim % 8 == 0
                    && (r.q != null || aligned(r.b, r.ldb) && r.strideB % 8 == 0) && (long) DEC_ROWS * r.kdim * 2 <= DECODE_SMEM_MAX;
            int tile = tc ? TILE_TC : TILE;                  // the tile schedule must be the kernel's tile rows
            boolean mma16 = decode && decodeKernel == DecodeKernel.MMA16;
            long schedule = mma16 ? tiles16 : tc && !decode ? tilesTc : tiles;   // the launched kernel's row tiles
            Launch l = Launch.begin().struct().i64(r.n).i64(r.kdim).i64(experts).i64(topK).i64(offsets).i64(schedule).i64(sorted);
            buf(l, r.a).i64(r.lda).i64(r.gatherA ? 1 : 0);
            buf(l, r.b).i64(r.ldb).i64(r.strideB).i64(r.transB ? 1 : 0);
            buf(l, r.cc).i64(r.ldc).i64(r.accumulate ? 1 : 0).i64(r.mode).i64(r.inter).i64(type.code).f64(r.alpha);
            buf(buf(buf(l, r.gu), r.lt), r.lb).i64(r.rank).i64(r.lbStride).f64(r.lscale);
            if (r.q != null) {                               // only on tensor cores: the Call made dense copies otherwise
                if (!tc || r.ldb != r.q.cols()) throw new IllegalStateException("moeExperts on CUDA: NF4 B needs the bf16 tensor-core GEMM, ldb = its columns");
                l.i64(CudaBackend.address(r.q.packed())).i64(CudaBackend.address(r.q.absmax())).i64(CudaBackend.address(r.q.nestedAbsmax()))
                        .i64(CudaBackend.address(r.q.nestedCode())).f64(r.q.offset());
            } else {
                l.i64(0).i64(0).i64(0).i64(0).f64(0);
            }
            if (mma16) {                                     // one grid dimension: 16-row tile · columns + column tile
                int columns = r.mode == MODE_SWIGLU ? Dim3.blocks(r.inter, TILE_TC / 2) : Dim3.blocks(r.n, TILE_TC);
                l.launch(optedIn("moe_gemm_rows_mma16", MMA16_SMEM), d.stream, Math.multiplyExact(tileBound16, columns), THREADS, MMA16_SMEM);
                return;
            }
            if (decode) {                                    // one grid dimension: 64-row tile · columns + column slice
                int columns = r.mode == MODE_SWIGLU ? Dim3.blocks(r.inter, DEC_COLS / 2) : Dim3.blocks(r.n, DEC_COLS);
                int smem = DEC_ROWS * r.kdim * 2;            // + its static shared memory: always opted in
                l.launch(optedIn("moe_gemm_rows_decode", DECODE_SMEM_MAX), d.stream, Math.multiplyExact(tileBound, columns), THREADS, smem);
                return;
            }
            int columns = r.mode == MODE_SWIGLU ? Dim3.blocks(r.inter, tile / 2) : Dim3.blocks(r.n, tile);
            if (tc && tcKernel == TcKernel.MMA) {       // one grid dimension: row tile · columns + column tile
                long blocks = (long) tileBoundTc * columns;
                if (blocks > Integer.MAX_VALUE) throw new IllegalArgumentException("moeExperts on CUDA: " + blocks + " row GEMM blocks exceed 2^31 − 1");
                l.launch(optedIn("moe_gemm_rows_mma", MMA_SMEM), d.stream, (int) blocks, THREADS, MMA_SMEM);
                return;
            }
            if (columns > 65535) throw new IllegalArgumentException("moeExperts on CUDA: " + r.n + " output columns need " + columns + " column tiles (gridDim.y ≤ 65535)");
            l.launch(d.kernel(FILE, tc ? "moe_gemm_rows_bf16_tc" : "moe_gemm_rows" + suffix), d.stream, Dim3.of(tc ? tileBoundTc : tileBound, columns),
                    Dim3.of(THREADS));
        }

        /** Whether t's rows (ld elements apart) can be read 16 bytes at a time. */
        private static boolean aligned(Tensor t, long ld) { return CudaBackend.address(t) % 16 == 0 && ld % 8 == 0; }

        /** The kernel, allowed smem bytes of dynamic shared memory (once): above 48 KiB with its static, it must opt in. */
        private Kernel optedIn(String name, int smem) {
            Kernel k = d.kernel(FILE, name);
            optedIn.computeIfAbsent(k, kn -> {
                kn.setMaxDynamicSharedMemory(smem);
                return Boolean.TRUE;
            });
            return k;
        }

        void wgrad(Wgrad w) {
            Launch l = Launch.begin().struct().i64(w.md).i64(w.nd).i64(topK).i64(offsets).i64(sorted);
            buf(l, w.a).i64(w.lda).i64(w.gatherA ? 1 : 0);
            buf(l, w.b).i64(w.ldb).i64(w.gatherB ? 1 : 0);
            buf(buf(l, w.scaled ? in.weights() : null), w.cc).f64(w.alpha);
            if (tensorCores && w.a.dtype() == DType.BF16 && w.b.dtype() == DType.BF16) {
                // one block per (output tile, expert): x walks an expert's tiles, y the experts (E ≤ 512)
                long tilesXy = (long) Dim3.blocks(w.md, TILE_TC) * Dim3.blocks(w.nd, TILE_TC);
                if (tilesXy * experts > Integer.MAX_VALUE) throw new IllegalArgumentException("moeExperts on CUDA: a weight gradient of [" + w.md + ", " + w.nd + "] has too many tiles");
                if (tcKernel == TcKernel.MMA) {              // one grid dimension: e · tiles + tile
                    l.launch(optedIn("moe_gemm_wgrad_mma", WGRAD_SMEM), d.stream, (int) (tilesXy * experts), THREADS, WGRAD_SMEM);
                    return;
                }
                l.launch(d.kernel(FILE, "moe_gemm_wgrad_bf16_tc"), d.stream, new Dim3((int) tilesXy, experts, 1), Dim3.of(THREADS));
                return;
            }
            int rowsT = Dim3.blocks(w.md, TILE);
            if (rowsT > 65535) throw new IllegalArgumentException("moeExperts on CUDA: a weight gradient of " + w.md + " rows needs more than 65535 row tiles");
            l.launch(d.kernel(FILE, "moe_gemm_wgrad" + suffix), d.stream, new Dim3(Dim3.blocks(w.nd, TILE), rowsT, experts), Dim3.of(THREADS));
        }

        /** out [N, H] = per token, its slots' rows summed in (expert, k) order: weighted and rounded as forward, or plain (dx). */
        void combine(Tensor rows, boolean weighted, Tensor out) {
            Tensor ids = in.ids();
            Launch l = Launch.begin().struct().i64(in.hidden()).i64(topK).i64(weighted ? 1 : 0).i64(pos).i64(CudaBackend.address(ids))
                    .i64(ids.dtype().code);
            buf(buf(buf(l, rows), in.weights()), out).launch(d.kernel(FILE, "moe_combine" + suffix), d.stream, in.tokens(), THREADS);
        }

        void swigluBackward(Tensor gm, Tensor gateUp, Tensor dgu) {
            long total = (long) slots * in.intermediate();
            if (total == 0) return;
            Launch l = Launch.begin().struct().i64(slots).i64(in.intermediate()).i64(offsets + 4L * experts).i64(sorted).i64(type.code);
            buf(buf(buf(buf(l, gm), gateUp), in.weights()), dgu)
                    .launch(d.kernel(FILE, "moe_swiglu_bwd" + suffix), d.stream, (int) Math.min(Dim3.blocks(total, THREADS), d.maxBlocks), THREADS);
        }

        void dweights(Tensor gm, Tensor hm, Tensor dw) {
            if (slots == 0) return;
            Launch l = Launch.begin().struct().i64(slots).i64(in.intermediate()).i64(pos);
            buf(buf(buf(l, gm), hm), dw).launch(d.kernel(FILE, "moe_dweights" + suffix), d.stream, Dim3.blocks(slots, THREADS / 32), THREADS);
        }

        @Override
        public void close() {
            for (Tensor t : temps) t.close();              // stream-ordered: later work on the stream may reuse them
        }
    }
}

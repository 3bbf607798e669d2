package dev.jomni.cuda;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Nf4Matmul's CUDA kernels (nf4.cu). Forward for M ≤ 16 is a decode GEMV, above it a fused dequant GEMM; the
 * input gradient is the GEMM's dx. bf16 and f16 run on tensor cores; f32 runs the SIMT GEMV up to M = 16 and
 * dequantize-then-matmul above (a [N, K] temporary), as f64 always does.
 *
 * <p>Kernel variants, chosen per call by system properties (for benchmarks). The defaults are {@code tcs}, the versions
 * measured on an H200 (2026-12-04: GEMV 1656 GB/s on the lm_head, GEMM 244 TFLOP/s); the others are newer and
 * checked only in host emulation until the GPU suite and benchmark have run them (f16 takes {@code tc}):
 * <ul>
 *   <li>{@code jomni.nf4.gemv}: {@code tc} (tensor cores, 4 blocks of a row in flight per lane with their scales),
 *       {@code tc8} (8 blocks), {@code tc2} (2), {@code tcs} (as tc, each block's scale loaded after its codes: the
 *       first version), {@code tcp} / {@code tcp2} (software-pipelined: the next 4 / 2 blocks load while the current
 *       decode; the first loads overlap the staging of x), {@code tca} (codes and absmax codes by cp.async through a
 *       3-stage ring per warp, one item per block; K ≤ 8192, else tc), {@code simt} (CUDA cores, exact weights). All
 *       but tc exist for bf16 only; f16 runs tc.
 *   <li>{@code jomni.nf4.gemm} (forward above M = 16 and dx): {@code tc} (mma.sync, cp.async ring, 2 blocks per SM,
 *       the next step's dequantization interleaved with the mma), {@code tcs} (the whole dequantization before the
 *       mma: the first version; bf16), {@code tcw} (256×128 tiles, warps of 64×64, 1 block per SM; bf16),
 *       {@code wmma} (64×64 tiles, no overlap). dx needs N % 8 == 0 and dy 16-byte
 *       aligned for the tc kernels, else runs wmma.
 * </ul>
 */
final class CudaNf4Matmul implements Nf4Matmul.Kernels {
    static final int GEMV_MAX_M = 16, GEMV_ROWS_PER_BLOCK = 32, GEMV_THREADS = 256, TILE = 64, GEMM_THREADS = 128;
    /** nf4.cu's gtc and gmm constants: threads, shared-memory layout. */
    static final int TC_THREADS = 256, TC_WARPS = 8, TC_TABLE_BYTES = 256 * 32 * 4 + 256 * 4, TC_X_BYTES = 33792;
    /** gtc::WARP_BYTES of the tca variant: 3 stages of 16 rows × 128 bytes and the rows' absmax codes (≤ 2048 bytes). */
    static final int TCA_WARP_BYTES = 3 * 16 * 128 + 2048, TCA_MAX_K = 8192;
    static final int MMA_TILE = 128;

    /** gmm::smem(bm): 4 stages of the x/dy tile and the packed W tile, two dequantized W tiles, NF4's levels. */
    static int mmaSmem(int bm) {
        return 4 * (bm * 64 * 2 + 4096) + 2 * 128 * 64 * 2 + 64;
    }
    private final CudaBackend backend;
    private final ConcurrentHashMap<Kernel, Boolean> optedIn = new ConcurrentHashMap<>();

    CudaNf4Matmul(CudaBackend backend) {
        this.backend = backend;
    }

    /** The weight's arguments after the output and input: packed, qabs, nabs, ncode, offset[, wdt]. */
    private static Launch weight(Launch l, Nf4Weight w, boolean withDtype) {
        long packed = CudaBackend.address(w.packed());
        if (packed % 16 != 0)
            throw new IllegalArgumentException("nf4Matmul: packed weight [" + w.rows() + ", " + w.cols() + "] at 0x" + Long.toHexString(packed)
                    + " is not 16-byte aligned (the kernels read 16-byte chunks)");
        l.i64(packed).i64(CudaBackend.address(w.absmax())).i64(CudaBackend.address(w.nestedAbsmax()))
                .i64(CudaBackend.address(w.nestedCode())).f64(w.offset());
        return withDtype ? l.i32(w.dtype().code) : l;
    }

    private static Launch weight(Launch l, Nf4Weight w) {
        return weight(l, w, true);
    }

    private static String suffix(DType t) { return suffix("nf4Matmul", t); }

    /** The kernel-name suffix of a floating dtype in nf4.cu and nf4_quantize.cu; {@code op} names the caller in the error. */
    static String suffix(String op, DType t) {
        return switch (t) {
            case BF16, F16, F32, F64 -> t.lower();
            default -> throw new IllegalArgumentException(op + ": dtype " + t.lower() + " is not floating");
        };
    }

    private static boolean aligned(Tensor t) {
        return CudaBackend.address(t) % 16 == 0;
    }

    /** The variant a property names, among those allowed; an unknown name is an error naming the property. */
    private static String variant(String property, String fallback, String... allowed) {
        String v = System.getProperty(property, fallback);
        for (String a : allowed) if (a.equals(v)) return v;
        throw new IllegalArgumentException("nf4Matmul: -D" + property + "=" + v + " is not one of " + String.join(", ", allowed));
    }

    @Override
    public void dequantize(Nf4Weight w, Tensor out) {
        CudaDevice d = backend.on(out.device());
        long n = (long) w.rows() * w.cols();
        int grid = (int) Math.min(Dim3.blocks(n / 2, CudaBackend.THREADS), 65535L * 16);
        weight(Launch.begin().i64(CudaBackend.address(out)), w).i64(n)
                .launch(d.kernel("nf4", "nf4_dequantize_" + suffix(out.dtype())), d.stream, grid, CudaBackend.THREADS);
    }

    @Override
    public void forward(Tensor x, Nf4Weight w, Tensor y) {
        int m = x.size(0), n = w.rows(), k = w.cols();
        DType t = x.dtype();
        CudaDevice d = backend.on(x.device());
        boolean half = t == DType.BF16 || t == DType.F16;
        if (m <= GEMV_MAX_M && t != DType.F64) {
            String v = variant("jomni.nf4.gemv", "tcs", "tc", "tc8", "tc2", "tcs", "tcp", "tcp2", "tca", "simt");
            if (half && !v.equals("simt") && aligned(x)) gemvTc(d, v, x, w, y, m, n, k);
            else {
                int mt = Integer.highestOneBit(m) == m ? m : Integer.highestOneBit(m) << 1;     // 1, 2, 4, 8, 16
                weight(Launch.begin().i64(CudaBackend.address(y)).i64(CudaBackend.address(x)), w).i32(m).i32(n).i32(k)
                        .launch(d.kernel("nf4", "nf4_gemv_" + suffix(t) + "_m" + mt), d.stream, Dim3.blocks(n, GEMV_ROWS_PER_BLOCK), GEMV_THREADS);
            }
        } else if (half) {
            if (!aligned(x)) throw new IllegalArgumentException("nf4Matmul: x " + java.util.Arrays.toString(x.shape()) + " is not 16-byte aligned");
            gemm(d, false, x, w, y, m, n, k);
        } else {
            try (var none = Autograd.noGrad(); Tensor wt = dequantized(w, t)) {
                backend.copy(x.matmul(wt.mT()), y);
            }
        }
    }

    /**
     * The tensor-core GEMV: blocks of 8 warps over items of 16·8/KS rows, the KS warps of a 16-row tile splitting
     * K (KS grows until there are about 16 warps per SM); x staged per tile of KT columns. Persistent (at most 3
     * blocks per SM, each building its code table once) except tca: a block per item.
     */
    private void gemvTc(CudaDevice d, String v, Tensor x, Nf4Weight w, Tensor y, int m, int n, int k) {
        if (x.dtype() == DType.F16 || v.equals("tca") && (k > TCA_MAX_K || CudaBackend.address(w.absmax()) % 16 != 0)) v = "tc";
        boolean async = v.equals("tca");
        int mb = m <= 8 ? 1 : 2;
        int kt = Math.min(k, (TC_X_BYTES / (2 * m) - 8) / 64 * 64);
        int sms = d.ctx.properties().multiprocessorCount();
        long tiles = (n + 15) / 16;
        int ks = 1;
        while (ks < TC_WARPS && tiles * ks < 16L * sms && ks * 2 <= kt / 64) ks *= 2;
        int rows = 16 * TC_WARPS / ks, items = Dim3.blocks(n, rows), grid = async ? items : Math.min(items, 3 * sms);
        int smem = TC_TABLE_BYTES + (async ? TC_WARPS * TCA_WARP_BYTES : 0) + m * (kt + 8) * 2 + (ks > 1 ? TC_WARPS * 16 * 8 * mb * 4 : 0);
        Kernel kn = optIn(d, "nf4_gemv_" + v + "_" + suffix(x.dtype()) + "_mb" + mb, smem);
        weight(Launch.begin().i64(CudaBackend.address(y)).i64(CudaBackend.address(x)), w, false).i32(m).i32(n).i32(k).i32(ks).i32(kt)
                .launch(kn, d.stream, grid, TC_THREADS, smem);
    }

    /** y = x · Wᵀ (dx false) or dx = dy · W (true) by the GEMM variant jomni.nf4.gemm names. */
    private void gemm(CudaDevice d, boolean dx, Tensor a, Nf4Weight w, Tensor out, int m, int n, int k) {
        DType t = a.dtype();
        String v = variant("jomni.nf4.gemm", "tcs", "tc", "tcs", "tcw", "wmma");
        if ((v.equals("tcs") || v.equals("tcw")) && t != DType.BF16) v = "tc";
        if (dx && (n % 8 != 0 || !aligned(a))) v = "wmma";      // the tc kernels read dy in 16-byte rows
        Launch l = weight(Launch.begin().i64(CudaBackend.address(out)).i64(CudaBackend.address(a)), w).i32(m).i32(n).i32(k);
        String name = "nf4_gemm_" + (dx ? "dx_" : "");
        int cols = dx ? k : n;
        if (v.equals("wmma")) {
            l.launch(d.kernel("nf4", name + suffix(t)), d.stream, grid(cols, m, TILE), Dim3.of(GEMM_THREADS));
        } else {
            int bm = v.equals("tcw") ? 256 : 128, smem = mmaSmem(bm);
            Kernel kn = optIn(d, name + v + "_" + suffix(t), smem);
            long tiles = (long) Dim3.blocks(cols, MMA_TILE) * Dim3.blocks(m, bm);                   // a 1-D grid, row of tiles major
            if (tiles > Integer.MAX_VALUE) throw new IllegalArgumentException("nf4Matmul: " + m + " × " + cols + " needs " + tiles + " tiles");
            l.launch(kn, d.stream, (int) tiles, TC_THREADS, smem);
        }
    }

    /** The kernel, allowed {@code smem} bytes of dynamic shared memory (above 48 KiB it must opt in). */
    private Kernel optIn(CudaDevice d, String name, int smem) {
        Kernel kn = d.kernel("nf4", name);
        int max = d.ctx.properties().maxSharedMemoryPerBlockOptin();
        if (smem > max) throw new IllegalArgumentException("nf4Matmul: " + name + " needs " + smem + " bytes of shared memory, " + d + " allows " + max);
        if (smem > 48 * 1024) optedIn.computeIfAbsent(kn, kernel -> {
            kernel.setMaxDynamicSharedMemory(max);
            return Boolean.TRUE;
        });
        return kn;
    }

    @Override
    public void backwardInput(Tensor dy, Nf4Weight w, Tensor dx) {
        int m = dy.size(0), n = w.rows(), k = w.cols();
        DType t = dy.dtype();
        CudaDevice d = backend.on(dy.device());
        if (t == DType.BF16 || t == DType.F16) {
            gemm(d, true, dy, w, dx, m, n, k);
        } else {
            try (var none = Autograd.noGrad(); Tensor wt = dequantized(w, t)) {
                backend.copy(dy.matmul(wt), dx);
            }
        }
    }

    /** (columns / tile, rows / tile) blocks, rounded up; rows within gridDim.y's 65535. */
    private static Dim3 grid(int columns, int rows, int tile) {
        int gy = Dim3.blocks(rows, tile);
        if (gy > 65535) throw new IllegalArgumentException("nf4Matmul: " + rows + " rows exceed 65535 tiles of " + tile);
        return Dim3.of(Dim3.blocks(columns, tile), gy);
    }

    /** W [N, K] of t: dequantized to the weight's dtype and then t, as the kernels round. */
    private Tensor dequantized(Nf4Weight w, DType t) {
        Tensor wd = Tensor.empty(w.device(), t == DType.F64 ? DType.F64 : w.dtype(), w.rows(), w.cols());
        dequantize(w, wd);
        if (wd.dtype() == t) return wd;
        Tensor c = wd.to(t);
        wd.close();
        return c;
    }
}

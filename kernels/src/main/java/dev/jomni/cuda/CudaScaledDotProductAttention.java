package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;

/**
 * ScaledDotProductAttention's CUDA kernels (attention.cu). The forward and backward of bf16/f16 with
 * head_dim 64 or 128 and 16-byte aligned rows run on tensor cores (sdpa_fwd_tc_*, sdpa_bwd_tc_{dq,dkv}_*:
 * FlashAttention-2 with cp.async double buffering; wgmma on sm_90a, mma.sync elsewhere; variants by
 * {@code -Djomni.attention.variant}, see TensorCoreTiles; off with {@code -Djomni.attention.simt=true});
 * every other forward and backward run the simple tiled version of issue 9 (SIMT f32 FMA, shared-memory
 * tiles, online softmax). Forward and dQ take a block per (batch, head, query tile), dK/dV a block per
 * (batch, kv head, key tile) summing the group's heads and every query in order (or, for few kv heads, a
 * block per split of the group writing f32 partials that a second kernel sums in order): deterministic, no
 * atomics. q, k, v, out and dOut are read through their strides (unit stride on d); the segment offsets
 * are uploaded with the launch (a host-to-device copy, no wait) and backward's delta = rowsum(dOut ∘ out)
 * and the partials live in scratch tensors, returned to the stream-ordered cache right after the launches
 * that read them. Decode over a paged cache is flash decoding (sdpa_decode_*, see decode).
 */
final class CudaScaledDotProductAttention implements ScaledDotProductAttention.Kernels {
    /** -Djomni.attention.deltaTc=true: backward's rowsum(dOut ∘ out) by the vectorised tensor-core-row kernel. */
    private static final boolean DELTA_TC = Boolean.getBoolean("jomni.attention.deltaTc");

    /** The widest head the kernels hold (f64: 128). */
    static final int MAX_HEAD_DIM = 256;
    private static final int THREADS = 256;            // attention.cu's NT: 16 × 16 threads per block
    private static final int TC_TILE = 64, TC_THREADS = 128;   // attention.cu's FBK (key tiles) and FNT (the dK/dV block)
    private static final long[] UNIT = {1};

    private final CudaBackend backend;
    /** Kernels already allowed the device's full opt-in dynamic shared memory (once per kernel, per context). */
    private final ConcurrentHashMap<Kernel, Boolean> optedIn = new ConcurrentHashMap<>();

    /** Whether eligible forwards take the tensor-core kernels (tests build one without, to compare both). */
    private final boolean tensorCores;

    CudaScaledDotProductAttention(CudaBackend backend) {
        this(backend, !Boolean.getBoolean("jomni.attention.simt"));
    }

    CudaScaledDotProductAttention(CudaBackend backend, boolean tensorCores) {
        this.backend = backend;
        this.tensorCores = tensorCores;
    }

    /**
     * The tensor-core forward's kernel suffix for these inputs, or null when it does not apply: bf16 or
     * f16, d 64 or 128, and every row of q, k, v and out starting 16-byte aligned (cp.async moves 16 bytes).
     */
    String tensorCoreSuffix(Tensor q, Tensor k, Tensor v, Tensor out) {
        int d = q.size(3);
        if (!tensorCores || TensorCoreTiles.current().simt() || (d != 64 && d != 128) || (q.dtype() != DType.BF16 && q.dtype() != DType.F16)) return null;
        for (Tensor x : new Tensor[] {q, k, v, out}) if (!rowsAligned(x)) return null;
        return (q.dtype() == DType.BF16 ? "bf16" : "f16") + "_d" + d;
    }

    /**
     * The tensor-core backward's kernel suffix, or null when it does not apply: as the forward's, with dOut and
     * the wanted gradients' rows 16-byte aligned too.
     */
    String tensorCoreBackwardSuffix(Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dq, Tensor dk, Tensor dv) {
        String tc = tensorCoreSuffix(q, k, v, dOut);
        if (tc == null) return null;
        for (Tensor x : new Tensor[] {dq, dk, dv}) if (x != null && !rowsAligned(x)) return null;
        return tc;
    }

    /** x [B, heads, rows, d] (2-byte elements): address and the strides of B, heads and rows are multiples of 16 bytes. */
    private static boolean rowsAligned(Tensor x) {
        if (CudaBackend.address(x) % 16 != 0 || TensorAccess.strides(x)[3] != 1) return false;
        for (int a = 0; a < 3; a++) if (x.size(a) > 1 && TensorAccess.strides(x)[a] % 8 != 0) return false;
        return true;
    }

    /** attention.cu's flash_smem: Q [rows][d], K and V [2][64][d] in 2-byte elements, key flags [2][64] bytes. */
    static long tensorCoreBytes(int d, int rows) {
        return 2L * (rows * d + 4L * TC_TILE * d) + 2L * TC_TILE;
    }

    /** attention.cu's bwd_dq_smem: Q, dO [rows][d], K and V [2][64][d] in 2-byte elements, key flags [2][64] bytes. */
    static long tensorCoreDqBytes(int d, int rows) {
        return 2L * (2L * rows * d + 4L * TC_TILE * d) + 2L * TC_TILE;
    }

    /** attention.cu's bwd_dkv_smem for its query tile of {@code rows}: K, V [64][d], Q, dO [2][rows][d], 8 × rows 4-byte, 64 flags. */
    static long tensorCoreDkvBytes(int d, int rows) {
        return 2L * (2L * TC_TILE * d + 4L * rows * d) + 32L * rows + TC_TILE;
    }

    /**
     * The tensor-core kernels' variant (a warp per 16 rows): the forward's and dQ's query rows, 64 or 128, and
     * dK/dV's query tile at d 128 (32 or 64 rows; 64 at d 64); the
     * products on sm_90a by wgmma (the default) or by mma.sync alone. {@code -Djomni.attention.variant} picks
     * them, read at each call (so one process can measure several): tokens {@code q64}, {@code q128} (forward
     * and dQ), {@code f64}, {@code f128} (the forward alone), {@code dkv32}, {@code dkv64} (dK/dV's query rows
     * at d 128: its _b64 kernel; d 64 always takes 64), {@code mma} (the _mma kernels), {@code nosplit}
     * (never split a GQA group over dK/dV blocks, see groupSplits), {@code simt} (the SIMT kernels for
     * everything, as {@code -Djomni.attention.simt=true}), {@code tc} (the default); e.g. {@code q128,mma} or
     * {@code q128+mma}.
     */
    record TensorCoreTiles(int forwardRows, int dqRows, int dkvRows, boolean mma, boolean simt, boolean noSplit) {
        /** wgmma, 128-row forward and dQ tiles (two warpgroups share each K/V tile), 64-row dK/dV query tiles: the fastest measured on an H200. */
        static final TensorCoreTiles DEFAULT = new TensorCoreTiles(128, 128, 64, false, false, false);

        static TensorCoreTiles current() {
            String v = System.getProperty("jomni.attention.variant", "");
            if (v.isEmpty()) return DEFAULT;
            int q = DEFAULT.forwardRows, dq = DEFAULT.dqRows, kv = DEFAULT.dkvRows;
            boolean mma = DEFAULT.mma, simt = false, noSplit = false;
            for (String token : v.split("[,+ ]+")) {
                switch (token) {
                    case "q64" -> q = dq = 64;
                    case "q128" -> q = dq = 128;
                    case "f64" -> q = 64;
                    case "f128" -> q = 128;
                    case "dkv32" -> kv = 32;
                    case "dkv64" -> kv = 64;
                    case "mma" -> mma = true;
                    case "simt" -> simt = true;
                    case "nosplit" -> noSplit = true;
                    case "", "tc" -> { }
                    default -> throw new IllegalArgumentException("jomni.attention.variant: unknown token '" + token
                            + "' in '" + v + "' (known: tc, q64, q128, f64, f128, dkv32, dkv64, mma, nosplit, simt)");
                }
            }
            return new TensorCoreTiles(q, dq, kv, mma, simt, noSplit);
        }

        /** The kernel name's tile suffix: none for 64 rows (the base kernels), _q128 for 128. */
        static String suffix(int rows) {
            return rows == 64 ? "" : "_q" + rows;
        }

        /** dK/dV's query tile rows at head dim d, and its kernel name's suffix (_b64 for 64 rows at d 128; no _mma kernel of it). */
        int dkvTile(int d) {
            return d == 64 || (dkvRows == 64 && !mma) ? 64 : 32;
        }

        String dkvSuffix(int d) {
            return d == 128 && dkvTile(d) == 64 ? "_b64" : engine();
        }

        /** The kernel name's engine suffix: _mma for the mma.sync-only kernels. */
        String engine() {
            return mma ? "_mma" : "";
        }
    }

    /**
     * One of attention.cu's instantiations: kernel suffix, query and key tile rows, compute type bytes.
     * f32 compute (bf16, f16, f32 inputs) up to d 256, f64 up to d 128.
     */
    record Tiles(String suffix, int bq, int bk, int elem) {
        static Tiles of(DType dtype, int d, String shapes) {
            boolean f64 = dtype == DType.F64;
            if (d > MAX_HEAD_DIM || (f64 && d > 128))
                throw new IllegalArgumentException("scaledDotProductAttention on CUDA: head_dim d=" + d + " exceeds the kernels' "
                        + (f64 ? 128 + " for f64" : MAX_HEAD_DIM) + " (attention.cu holds a query tile and its accumulators per block); got " + shapes);
            if (f64) return new Tiles(d <= 64 ? "f64_d64" : "f64_d128", 32, 32, 8);
            if (d <= 64) return new Tiles("f32_d64", 64, 64, 4);
            if (d <= 128) return new Tiles("f32_d128", 64, 64, 4);
            return new Tiles("f32_d256", 32, 32, 4);
        }

        /** attention.cu's fwd_smem. */
        long forwardBytes(int d) {
            return (long) elem * ((long) (bq + 2 * bk) * (d + 1) + (long) bq * (bk + 1) + 3L * bq) + 4L * (2 * bq + bk);
        }

        /** attention.cu's bwd_smem (dq and dkv kernels). */
        long backwardBytes(int d) {
            return (long) elem * ((long) (2 * bq + 2 * bk) * (d + 1) + (long) bq * (bk + 1) + 2L * bq) + 4L * (2 * bq + bk + 2);
        }
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale, Tensor out, Tensor lse) {
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3);
        if ((long) b * nh * t == 0) return;
        String shapes = shapes(q, k);
        CudaDevice dev = backend.on(q.device());
        String tc = tensorCoreSuffix(q, k, v, out);
        if (tc != null) {
            TensorCoreTiles tiling = TensorCoreTiles.current();
            int rows = tiling.forwardRows();
            long smem = tensorCoreBytes(d, rows);
            Kernel kernel = kernel(dev, "sdpa_fwd_tc_" + tc + TensorCoreTiles.suffix(rows) + tiling.engine(), smem, shapes);
            Tensor seg = segments(mask, q.device());
            args(q, k, v, mask, scale, seg, out, lse, null, null, null, null, null)
                    .launch(kernel, dev.stream, grid((long) b * nh, t, rows, shapes), 2 * rows, (int) smem);
            if (seg != null) seg.close();
            return;
        }
        Tiles tiles = Tiles.of(q.dtype(), d, shapes);
        int grid = grid((long) b * nh, t, tiles.bq, shapes);
        long smem = tiles.forwardBytes(d);
        Kernel kernel = kernel(dev, "sdpa_fwd_" + tiles.suffix, smem, shapes);
        Tensor seg = segments(mask, q.device());
        args(q, k, v, mask, scale, seg, out, lse, null, null, null, null, null).launch(kernel, dev.stream, grid, THREADS, (int) smem);
        if (seg != null) seg.close();       // the cache hands it out again only to later work on this stream
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Tensor dOut, AttentionMask mask, double scale,
                         Tensor dq, Tensor dk, Tensor dv) {
        int b = q.size(0), nh = q.size(1), t = q.size(2), d = q.size(3), nkv = k.size(1), s = k.size(2);
        String shapes = shapes(q, k);
        Tiles tiles = Tiles.of(q.dtype(), d, shapes);
        CudaDevice dev = backend.on(q.device());
        boolean keys = (dk != null || dv != null) && (long) b * nkv * s > 0;
        if ((dq == null || (long) b * nh * t == 0) && !keys) return;
        Tensor seg = segments(mask, q.device());
        Tensor delta = Tensor.empty(q.device(), lse.dtype(), b, nh, t);   // [B, nh, T] rowsum(dOut ∘ out), contiguous
        long rows = (long) b * nh * t;
        String tc = tensorCoreBackwardSuffix(q, k, v, dOut, dq, dk, dv);
        // sdpa_bwd_delta_tc_* (16-byte loads) is opt-in until the GPU suite has run it; the row kernel below has passed it
        if (rows > 0 && tc != null && DELTA_TC && out.dtype() == q.dtype() && rowsAligned(out))   // 16-byte loads, d / 8 threads a row
            args(q, k, v, mask, scale, seg, out, lse, dOut, null, null, null, delta)
                    .launch(dev.kernel("attention", "sdpa_bwd_delta_tc_" + tc), dev.stream, Dim3.blocks(rows * (d / 8), THREADS), THREADS, 0);
        else if (rows > 0)
            args(q, k, v, mask, scale, seg, out, lse, dOut, null, null, null, delta)
                    .launch(dev.kernel("attention", lse.dtype() == DType.F64 ? "sdpa_bwd_delta_f64" : "sdpa_bwd_delta_f32"), dev.stream,
                            Dim3.blocks(rows, THREADS / 32), THREADS, 0);
        if (tc != null) {
            TensorCoreTiles tiling = TensorCoreTiles.current();
            if (dq != null && rows > 0) {
                int tile = tiling.dqRows();
                long smem = tensorCoreDqBytes(d, tile);
                args(q, k, v, mask, scale, seg, out, lse, dOut, dq, null, null, delta)
                        .launch(kernel(dev, "sdpa_bwd_tc_dq_" + tc + TensorCoreTiles.suffix(tile) + tiling.engine(), smem, shapes), dev.stream,
                                grid((long) b * nh, t, tile, shapes), 2 * tile, (int) smem);
            }
            if (keys) {
                long smem = tensorCoreDkvBytes(d, tiling.dkvTile(d));
                int blocks = grid((long) b * nkv, s, TC_TILE, shapes), splits = tiling.noSplit() ? 1 : groupSplits(nh / nkv, blocks);
                Kernel kernel = kernel(dev, "sdpa_bwd_tc_dkv_" + tc + tiling.dkvSuffix(d), smem, shapes);
                if (splits == 1) {
                    args(q, k, v, mask, scale, seg, out, lse, dOut, null, dk, dv, delta).launch(kernel, dev.stream, blocks, TC_THREADS, (int) smem);
                } else {   // f32 partials per split of the group, then summed in split order
                    Tensor pk = dk == null ? null : Tensor.empty(q.device(), DType.F32, splits * b, nkv, s, d);
                    Tensor pv = dv == null ? null : Tensor.empty(q.device(), DType.F32, splits * b, nkv, s, d);
                    args(q, k, v, mask, scale, seg, out, lse, dOut, null, pk, pv, delta)
                            .launch(kernel, dev.stream, Dim3.of(blocks, splits), TC_THREADS, (int) smem);
                    Kernel sum = dev.kernel("attention", "sdpa_bwd_tc_split_sum_" + (q.dtype() == DType.BF16 ? "bf16" : "f16"));
                    for (Tensor[] pair : new Tensor[][] {{pk, dk}, {pv, dv}}) {
                        if (pair[0] == null) continue;
                        Launch.begin().struct().i64(b).i64(nkv).i64(s).i64(d).i64(splits)
                                .operand(CudaBackend.address(pair[0]), TensorAccess.strides(pair[0]), 4, DType.F32.code)
                                .operand(CudaBackend.address(pair[1]), TensorAccess.strides(pair[1]), 4, pair[1].dtype().code)
                                .launch(sum, dev.stream, Dim3.blocks((long) b * nkv * s * (d / 2), THREADS), THREADS);
                        pair[0].close();   // back to the stream-ordered cache after the sum that reads it
                    }
                }
            }
            delta.close();
            if (seg != null) seg.close();
            return;
        }
        long smem = tiles.backwardBytes(d);
        if (dq != null && rows > 0) {
            Kernel kernel = kernel(dev, "sdpa_bwd_dq_" + tiles.suffix, smem, shapes);
            args(q, k, v, mask, scale, seg, out, lse, dOut, dq, null, null, delta)
                    .launch(kernel, dev.stream, grid((long) b * nh, t, tiles.bq, shapes), THREADS, (int) smem);
        }
        if (keys) {
            Kernel kernel = kernel(dev, "sdpa_bwd_dkv_" + tiles.suffix, smem, shapes);
            args(q, k, v, mask, scale, seg, out, lse, dOut, null, dk, dv, delta)
                    .launch(kernel, dev.stream, grid((long) b * nkv, s, tiles.bk, shapes), THREADS, (int) smem);
        }
        delta.close();
        if (seg != null) seg.close();
    }

    /**
     * Flash decoding (attention.cu's sdpa_decode_*): blocks of 256 cached tokens per (batch row, kv head, G query
     * heads of the group; G the largest of 8, 4, 2, 1 dividing it) write f32 partials, merged in order per
     * (batch row, head) by sdpa_decode_combine_*. bf16/f16 with head_dim 64 or 128 and 16-byte aligned cache rows.
     */
    @Override
    public void decode(Tensor q, Tensor kCache, Tensor vCache, Tensor blockTable, Tensor seqLens, double scale, Tensor out, Tensor lse) {
        int b = q.size(0), nh = q.size(1), d = q.size(3), nkv = kCache.size(1), bs = kCache.size(2), maxBlocks = blockTable.size(1);
        String shapes = "q " + q.dtype().lower() + Arrays.toString(q.shape()) + ", kCache " + kCache.dtype().lower() + Arrays.toString(kCache.shape());
        if ((d != 64 && d != 128) || (q.dtype() != DType.BF16 && q.dtype() != DType.F16) || !rowsAligned(kCache) || !rowsAligned(vCache))
            throw new IllegalArgumentException("scaledDotProductAttention decode on CUDA: needs bf16 or f16, head_dim 64 or 128 and 16-byte aligned "
                    + "cache rows; got " + shapes);
        if ((long) b * nh == 0) return;
        int group = nh / nkv, g = group % 8 == 0 ? 8 : group % 4 == 0 ? 4 : group % 2 == 0 ? 2 : 1;
        long chunks = Math.max(1, ((long) maxBlocks * bs + DECODE_CHUNK - 1) / DECODE_CHUNK);
        CudaDevice dev = backend.on(q.device());
        String e = (q.dtype() == DType.BF16 ? "bf16" : "f16") + "_d" + d;
        long smem = 4L * ((long) g * d + 4L * 32 * g + 2L * 4 * g + 4L * g * d);   // attention.cu's decode_smem
        Tensor pm = Tensor.empty(q.device(), DType.F32, b, nh, (int) chunks, 2), po = Tensor.empty(q.device(), DType.F32, b, nh, (int) chunks, d);
        Launch chunk = decodeArgs(q, kCache, vCache, blockTable, seqLens, scale, pm, po, out, lse, bs, maxBlocks, chunks);
        chunk.launch(kernel(dev, "sdpa_decode_" + e + "_g" + g, smem, shapes), dev.stream, new Dim3(b * nkv, (int) chunks, group / g), TC_THREADS, (int) smem);
        decodeArgs(q, kCache, vCache, blockTable, seqLens, scale, pm, po, out, lse, bs, maxBlocks, chunks)
                .launch(dev.kernel("attention", "sdpa_decode_combine_" + e), dev.stream, b * nh, TC_THREADS);
        pm.close();
        po.close();
    }

    static final String PAGED_DECODE = "jomni.attention.pagedDecode";

    @Override
    public boolean decodes(DType dtype, int headDim) {
        // opt-in (-Djomni.attention.pagedDecode=true, read at each call) until GenerationEngineCudaTest has passed on a GPU
        return Boolean.getBoolean(PAGED_DECODE) && (headDim == 64 || headDim == 128) && (dtype == DType.BF16 || dtype == DType.F16);
    }

    /** attention.cu's DCH: cached tokens per decode block. */
    private static final int DECODE_CHUNK = 256;

    /** attention.cu's DecodeArgs, in its field order. */
    private static Launch decodeArgs(Tensor q, Tensor k, Tensor v, Tensor table, Tensor lens, double scale, Tensor pm, Tensor po, Tensor out,
                                     Tensor lse, int bs, int maxBlocks, long chunks) {
        Launch l = Launch.begin().struct().i64(q.size(0)).i64(q.size(1)).i64(k.size(1)).i64(bs).i64(maxBlocks).i64(chunks).f64(scale);
        for (Tensor x : new Tensor[] {q, k, v, table, lens, pm, po, out, lse})
            l.operand(CudaBackend.address(x), TensorAccess.strides(x), x.rank(), x.dtype().code);
        return l;
    }

    /**
     * How many blocks share a GQA group's heads in the tensor-core dK/dV kernel: 1 when there are enough key
     * tiles (≥ SPLIT_BLOCKS blocks), else the smallest divisor of the group that reaches that many (or the
     * group). Few kv heads make few, long blocks (under a causal mask the first key tiles see every query), and
     * the slowest of them sets the kernel's time; splits trade that for f32 partials summed in order.
     */
    static int groupSplits(int group, int blocks) {
        if (group == 1 || blocks >= SPLIT_BLOCKS) return 1;
        for (int x = 2; x < group; x++) if (group % x == 0 && (long) blocks * x >= SPLIT_BLOCKS) return x;
        return group;
    }

    /** About four waves of two blocks per multiprocessor on a 132-multiprocessor H100/H200. */
    private static final int SPLIT_BLOCKS = 1024;

    /** heads · ceil(rows / tile) blocks, as an int grid. */
    private static int grid(long heads, int rows, int tile, String shapes) {
        long blocks = heads * (((long) rows + tile - 1) / tile);
        if (blocks > Integer.MAX_VALUE)
            throw new IllegalArgumentException("scaledDotProductAttention on CUDA: " + blocks + " blocks exceed the grid's 2^31 − 1; got " + shapes);
        return (int) blocks;
    }

    /** The kernel, allowed the dynamic shared memory it needs (above the default 48 KiB it must opt in). */
    private Kernel kernel(CudaDevice dev, String name, long smem, String shapes) {
        Kernel kernel = dev.kernel("attention", name);
        int max = dev.ctx.properties().maxSharedMemoryPerBlockOptin();
        if (smem > max)
            throw new IllegalArgumentException("scaledDotProductAttention on CUDA: " + name + " needs " + smem + " bytes of shared memory, "
                    + dev + " allows " + max + "; got " + shapes);
        if (smem > 48 * 1024) optedIn.computeIfAbsent(kernel, kn -> {
            kn.setMaxDynamicSharedMemory(max);
            return Boolean.TRUE;
        });
        return kernel;
    }

    /** The segment offsets as an int32 tensor on the device (null without segments): a copy queued on the stream, no wait. */
    private static Tensor segments(AttentionMask mask, Device device) {
        int[] offsets = mask.segmentOffsets();
        if (offsets == null) return null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(4L * offsets.length, 4);
            MemorySegment.copy(offsets, 0, host, ValueLayout.JAVA_INT, 0, offsets.length);
            return Tensor.fromHost(device, DType.I32, host, offsets.length);
        }
    }

    /** attention.cu's SdpaArgs, in its field order. */
    private static Launch args(Tensor q, Tensor k, Tensor v, AttentionMask mask, double scale, Tensor seg, Tensor out, Tensor lse,
                               Tensor dOut, Tensor dq, Tensor dk, Tensor dv, Tensor delta) {
        Launch l = Launch.begin().struct()
                .i64(q.size(0)).i64(q.size(1)).i64(k.size(1)).i64(q.size(2)).i64(k.size(2)).i64(q.size(3))
                .i64(mask.past()).i64(seg == null ? 0 : seg.size(0)).f64(scale)
                .i32(mask.causal() ? 1 : 0).i32(q.dtype().code);
        for (Tensor x : new Tensor[] {q, k, v, out, lse, dOut, dq, dk, dv, mask.keyMask(), seg, delta}) {
            if (x == null) l.operand(0, UNIT, 1, DType.F32.code);
            else l.operand(CudaBackend.address(x), TensorAccess.strides(x), x.rank(), x.dtype().code);
        }
        return l;
    }

    private static String shapes(Tensor q, Tensor k) {
        return "q " + q.dtype().lower() + Arrays.toString(q.shape()) + ", k/v " + k.dtype().lower() + Arrays.toString(k.shape());
    }
}

package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;

/**
 * Nf4Weight's CUDA quantizer (nf4_quantize.cu): the blocks of 64 (8 lanes a block, 16-byte loads where w is 16-byte
 * aligned), the absmax sum in one block of 1024, the nested blocks of 256 (a warp each). Bit-identical to
 * Nf4Weight.Builder.
 */
final class CudaNf4Quantize implements Nf4Weight.Kernels {
    /** nf4_quantize.cu's Q_THREADS (the blocks and nested kernels' block) and STATS_THREADS (the sum's one block). */
    static final int THREADS = 256, STATS_THREADS = 1024;
    /** Grid-stride above this many blocks (the kernels loop; more blocks only cost launch bookkeeping). */
    static final int MAX_GRID = 1 << 20;

    private final CudaBackend backend;

    CudaNf4Quantize(CudaBackend backend) {
        this.backend = backend;
    }

    private static String suffix(DType t) { return CudaNf4Matmul.suffix("nf4 quantize", t); }

    @Override
    public void quantizeBlocks(Tensor w, Tensor packed, Tensor amax) {
        CudaDevice d = backend.on(w.device());
        long n = w.numel(), lanes = n / 8;
        long out = CudaBackend.address(packed);
        if (out % 4 != 0) throw new IllegalArgumentException("nf4 quantize: packed codes at 0x" + Long.toHexString(out) + " are not 4-byte aligned");
        int vec = CudaBackend.address(w) % 16 == 0 ? 1 : 0;
        int grid = Math.min(Dim3.blocks(lanes, THREADS), MAX_GRID);
        Launch.begin().i64(out).i64(CudaBackend.address(amax)).i64(CudaBackend.address(w)).i64(n).i32(vec)
                .launch(d.kernel("nf4_quantize", "nf4_quantize_blocks_" + suffix(w.dtype())), d.stream, grid, THREADS);
    }

    @Override
    public void absmaxStats(Tensor amax, Tensor stats) {
        CudaDevice d = backend.on(amax.device());
        Launch.begin().i64(CudaBackend.address(stats)).i64(CudaBackend.address(amax)).i64(amax.numel())
                .launch(d.kernel("nf4_quantize", "nf4_absmax_stats"), d.stream, 1, STATS_THREADS);
    }

    @Override
    public void quantizeAbsmax(Tensor amax, float offset, Tensor map, Tensor qabsmax, Tensor nestedAbsmax) {
        CudaDevice d = backend.on(amax.device());
        int grid = Math.min(Dim3.blocks(nestedAbsmax.numel(), THREADS / 32), MAX_GRID);
        Launch.begin().i64(CudaBackend.address(qabsmax)).i64(CudaBackend.address(nestedAbsmax)).i64(CudaBackend.address(amax))
                .i64(CudaBackend.address(map)).f64(offset).i64(amax.numel())
                .launch(d.kernel("nf4_quantize", "nf4_quantize_absmax"), d.stream, grid, THREADS);
    }
}

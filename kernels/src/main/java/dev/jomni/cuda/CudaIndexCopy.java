package dev.jomni.cuda;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.IndexCopy;
import dev.jomni.tensor.spi.TensorAccess;

/**
 * IndexCopy's CUDA kernel (index_copy.cu): one launch copies every row, in units of the widest of 16, 4, 2
 * or 1 bytes that divides the row and both addresses (a bf16 KV row of 128 columns: 16 units of 16 bytes).
 */
final class CudaIndexCopy implements IndexCopy.Kernels {
    private final CudaBackend backend;

    CudaIndexCopy(CudaBackend backend) {
        this.backend = backend;
    }

    @Override
    public void indexCopy(Tensor dst, Tensor index, Tensor src) {
        long rows = src.size(0), rowBytes = Tensor.numel(src.shape()) / rows * src.dtype().byteSize;
        long dstAt = CudaBackend.address(dst), srcAt = CudaBackend.address(src);
        int unit = 16;
        while (unit > 1 && (rowBytes % unit != 0 || dstAt % unit != 0 || srcAt % unit != 0)) unit = unit == 16 ? 4 : unit / 2;
        long units = rowBytes / unit, total = rows * units;
        if (total == 0) return;
        CudaDevice d = backend.on(dst.device());
        Launch l = Launch.begin().struct().i64(rows).i64(units).i64(dst.size(0))              // index_copy.cu's CopyArgs
                .operand(dstAt, new long[] {1}, 1, dst.dtype().code)
                .operand(srcAt, new long[] {1}, 1, src.dtype().code)
                .operand(CudaBackend.address(index), TensorAccess.strides(index), 1, index.dtype().code);
        int grid = (int) Math.min(Dim3.blocks(total, CudaBackend.THREADS), d.maxBlocks);
        l.launch(d.kernel("index_copy", "index_copy_u" + unit), d.stream, grid, CudaBackend.THREADS);
    }
}

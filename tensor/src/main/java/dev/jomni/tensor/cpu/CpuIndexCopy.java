package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.IndexCopy;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;

/** Row copies on the CPU: one bulk memory copy per row, in index order (so a repeated index keeps its last row). */
public final class CpuIndexCopy implements IndexCopy.Kernels {
    @Override
    public void indexCopy(Tensor dst, Tensor index, Tensor src) {
        long rowBytes = Tensor.numel(src.shape()) / src.size(0) * src.dtype().byteSize;   // IndexCopy passes n > 0
        long[] rows = index.toLongArray();
        MemorySegment d = CpuBackend.seg(dst), s = CpuBackend.seg(src);
        long dOff = TensorAccess.offset(dst) * dst.dtype().byteSize, sOff = TensorAccess.offset(src) * src.dtype().byteSize;
        for (int i = 0; i < rows.length; i++)
            MemorySegment.copy(s, sOff + i * rowBytes, d, dOff + rows[i] * rowBytes, rowBytes);
    }
}

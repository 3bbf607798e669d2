package dev.jomni.tensor.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Placeholder reference GEMM (replaced by the blocked Vector API kernel). Offsets and strides in elements. */
public final class CpuMatmul {
    private CpuMatmul() {}

    public static void sgemm(int batch, int m, int n, int k,
            MemorySegment a, long aOff, long aBatchStride, long aRowStride, long aColStride,
            MemorySegment b, long bOff, long bBatchStride, long bRowStride, long bColStride,
            MemorySegment c, long cOff, long cBatchStride, long cRowStride) {
        Parallel.forEach(batch * m, t -> {
            int p = t / m, i = t % m;
            for (int j = 0; j < n; j++) {
                float acc = 0;
                for (int q = 0; q < k; q++)
                    acc += a.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, aOff + p * aBatchStride + i * aRowStride + q * aColStride)
                         * b.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, bOff + p * bBatchStride + q * bRowStride + j * bColStride);
                c.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, cOff + p * cBatchStride + i * cRowStride + j, acc);
            }
        });
    }

    public static void dgemm(int batch, int m, int n, int k,
            MemorySegment a, long aOff, long aBatchStride, long aRowStride, long aColStride,
            MemorySegment b, long bOff, long bBatchStride, long bRowStride, long bColStride,
            MemorySegment c, long cOff, long cBatchStride, long cRowStride) {
        Parallel.forEach(batch * m, t -> {
            int p = t / m, i = t % m;
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int q = 0; q < k; q++)
                    acc += a.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, aOff + p * aBatchStride + i * aRowStride + q * aColStride)
                         * b.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, bOff + p * bBatchStride + q * bRowStride + j * bColStride);
                c.setAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, cOff + p * cBatchStride + i * cRowStride + j, acc);
            }
        });
    }
}

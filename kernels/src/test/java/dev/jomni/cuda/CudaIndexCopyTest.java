package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.IndexCopy;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * index_copy.cu against CpuIndexCopy on fresh random rows and shuffled distinct indices, bit for bit: rows
 * of 16-, 4-, 2-byte multiples (each unit width), a destination at an odd row offset, I64 and I32 indices.
 */
@Tag("gpu")
class CudaIndexCopyTest {
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32", "F64"})
    void rowsMatchTheCpuReferenceBitForBit(DType t) {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        // {dst rows, written rows, heads, d, first row of dst in its buffer}
        for (int[] c : new int[][] {{64, 32, 4, 128, 0}, {33, 7, 2, 3, 1}, {17, 17, 1, 5, 3}, {4096, 64, 4, 128, 16}}) {
            for (boolean i32 : new boolean[] {false, true}) {
                Tensor whole = Tensor.randn(g, DType.F32, c[0] + c[4], c[2], c[3]).to(t);
                Tensor src = Tensor.randn(g, DType.F32, c[1], c[2], c[3]).to(t);
                long[] at = distinct(g, c[1], c[0]);
                Tensor index = i32 ? Tensor.of(toInts(at), at.length) : Tensor.of(at, at.length);
                Tensor cpu = whole.narrow(0, c[4], c[0]).contiguous();
                IndexCopy.indexCopy(cpu, index, src);
                Tensor onGpu = whole.to(gpu), dst = onGpu.narrow(0, c[4], c[0]);
                IndexCopy.indexCopy(dst, index.to(gpu), src.to(gpu));
                assertArrayEquals(cpu.toDoubleArray(), dst.to(Device.cpu()).toDoubleArray(), t + " " + java.util.Arrays.toString(c) + (i32 ? " i32" : " i64"));
                if (c[4] > 0)   // the rows before dst are untouched
                    assertArrayEquals(whole.narrow(0, 0, c[4]).toDoubleArray(), onGpu.narrow(0, 0, c[4]).to(Device.cpu()).toDoubleArray());
            }
        }
    }

    /** n distinct rows of [0, size) in a random order. */
    private static long[] distinct(Generator g, int n, int size) {
        long[] all = new long[size];
        for (int i = 0; i < size; i++) all[i] = i;
        for (int i = size - 1; i > 0; i--) {
            int j = (int) (g.nextDouble() * (i + 1));
            long x = all[i];
            all[i] = all[j];
            all[j] = x;
        }
        return java.util.Arrays.copyOf(all, n);
    }

    private static int[] toInts(long[] v) {
        int[] r = new int[v.length];
        for (int i = 0; i < v.length; i++) r[i] = (int) v[i];
        return r;
    }
}

package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** indexCopy on the CPU against rows replaced by hand, on fresh random rows and shuffled distinct indices. */
class IndexCopyTest {
    /** n distinct rows of [0, size) in a random order. */
    static long[] distinct(Generator g, int n, int size) {
        long[] all = new long[size];
        for (int i = 0; i < size; i++) all[i] = i;
        for (int i = size - 1; i > 0; i--) {
            int j = (int) (g.nextDouble() * (i + 1));
            long t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        return java.util.Arrays.copyOf(all, n);
    }

    /** dst's values with row index[i] replaced by src's row i. */
    static double[] expected(Tensor dst, long[] index, Tensor src) {
        double[] want = dst.toDoubleArray(), from = src.contiguous().toDoubleArray();
        int row = from.length / index.length;
        for (int i = 0; i < index.length; i++) System.arraycopy(from, i * row, want, (int) index[i] * row, row);
        return want;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16", "F64"})
    void rowsLandAtTheirIndicesAndTheRestIsUntouched(DType t) {
        Generator g = new Generator(7);
        for (int[] c : new int[][] {{9, 4, 3, 5}, {40, 17, 2, 16}, {1, 1, 1, 1}}) {   // {dst rows, written rows, heads, d}
            Tensor dst = Tensor.randn(g, DType.F32, c[0], c[2], c[3]).to(t);
            Tensor src = Tensor.randn(g, DType.F32, c[1], c[2], c[3]).to(t);
            long[] at = distinct(g, c[1], c[0]);
            double[] want = expected(dst, at, src);
            assertSame(dst, IndexCopy.indexCopy(dst, Tensor.of(at, at.length), src));
            assertArrayEquals(want, dst.toDoubleArray(), t + " " + java.util.Arrays.toString(c));
        }
    }

    @Test
    void takesAStridedSourceAndAnI32Index() {
        Generator g = new Generator(11);
        Tensor dst = Tensor.randn(g, DType.F32, 12, 3, 4);
        Tensor src = Tensor.randn(g, DType.F32, 3, 5, 4).transpose(0, 1);          // [5, 3, 4], not contiguous
        long[] at = distinct(g, 5, 12);
        int[] at32 = new int[at.length];
        for (int i = 0; i < at.length; i++) at32[i] = (int) at[i];
        double[] want = expected(dst, at, src);
        IndexCopy.indexCopy(dst, Tensor.of(at32, at32.length), src);
        assertArrayEquals(want, dst.toDoubleArray());
    }

    @Test
    void refusesWhatItCannotWrite() {
        Tensor dst = Tensor.zeros(DType.F32, 4, 3), src = Tensor.ones(DType.F32, 2, 3);
        var e = assertThrows(RuntimeException.class, () -> IndexCopy.indexCopy(dst, Tensor.of(new long[] {1, 4}, 2), src));
        assertTrue(e.getMessage().contains("indexCopy"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexCopy.indexCopy(dst, Tensor.of(new long[] {1, 2}, 2), src.to(DType.F64)));
        assertTrue(e.getMessage().contains("one dtype"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexCopy.indexCopy(dst, Tensor.of(new long[] {1}, 1), src));
        assertTrue(e.getMessage().contains("index [n]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> IndexCopy.indexCopy(dst.transpose(0, 1), Tensor.of(new long[] {1}, 1), Tensor.ones(DType.F32, 1, 4)));
        assertTrue(e.getMessage().contains("contiguous"), e.getMessage());
    }
}

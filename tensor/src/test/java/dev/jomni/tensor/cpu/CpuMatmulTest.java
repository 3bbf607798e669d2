package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class CpuMatmulTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED;
    private static final float SENTINEL = -12345.5f;

    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() { arena.close(); }

    /** How an operand [batch, rows, cols] is laid out in memory. */
    enum Layout {
        ROW_MAJOR,    // contiguous, row stride = cols
        TRANSPOSED,   // column-major: row stride 1 (a transposed view)
        STRIDED,      // padded rows and column stride 2 (a slice of a wider tensor)
        BROADCAST     // one matrix shared by every batch element (batch stride 0)
    }

    /** An operand as sgemm sees it: segment, element offset and strides; values[b][r][c] is what it holds. */
    record Operand(MemorySegment seg, long off, long batchStride, long rowStride, long colStride, double[][][] values) {}

    private Operand operand(int batch, int rows, int cols, Layout layout, Random rnd, boolean f64) {
        int stored = layout == Layout.BROADCAST ? 1 : batch;
        long off = 3, rs, cs, bs;
        switch (layout) {
            case ROW_MAJOR, BROADCAST -> { cs = 1; rs = cols; }
            case TRANSPOSED -> { rs = 1; cs = rows; }
            case STRIDED -> { cs = 2; rs = 2L * cols + 5; }
            default -> throw new AssertionError(layout);
        }
        long matrix = layout == Layout.STRIDED ? rs * rows + 7 : (long) rows * cols;
        bs = layout == Layout.BROADCAST ? 0 : matrix;
        long elements = off + matrix * stored + 4;
        int bytes = f64 ? Double.BYTES : Float.BYTES;
        MemorySegment seg = arena.allocate(elements * bytes, 8);
        for (long e = 0; e < elements; e++) {
            if (f64) seg.setAtIndex(F64, e, Double.NaN); else seg.setAtIndex(F32, e, Float.NaN); // gaps must never be read
        }
        double[][][] v = new double[batch][rows][cols];
        for (int b = 0; b < stored; b++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) {
                    float x = rnd.nextFloat() * 2 - 1;
                    long at = off + b * bs + r * rs + c * cs;
                    if (f64) seg.setAtIndex(F64, at, x); else seg.setAtIndex(F32, at, x);
                    v[b][r][c] = x;
                }
        for (int b = stored; b < batch; b++) v[b] = v[0];
        return new Operand(seg, off, bs, rs, cs, v);
    }

    /** C with a row stride wider than n, pre-filled with a sentinel so that writes outside the matrix show. */
    private Operand output(int batch, int m, int n, int extraCols, boolean f64) {
        long rs = n + extraCols, bs = rs * m + 2, off = 5, elements = off + bs * batch + 3;
        MemorySegment seg = arena.allocate(elements * (f64 ? Double.BYTES : Float.BYTES), 8);
        for (long e = 0; e < elements; e++) {
            if (f64) seg.setAtIndex(F64, e, SENTINEL); else seg.setAtIndex(F32, e, SENTINEL);
        }
        return new Operand(seg, off, bs, rs, 1, null);
    }

    static Stream<Arguments> shapes() {
        return Stream.of(
                // batch, m, n, k, layout of A, layout of B
                Arguments.of(1, 1, 1, 1, Layout.ROW_MAJOR, Layout.ROW_MAJOR),
                Arguments.of(1, 3, 17, 31, Layout.ROW_MAJOR, Layout.ROW_MAJOR),
                Arguments.of(1, 17, 3, 65, Layout.TRANSPOSED, Layout.ROW_MAJOR),
                Arguments.of(1, 31, 65, 17, Layout.ROW_MAJOR, Layout.TRANSPOSED),
                Arguments.of(1, 65, 129, 31, Layout.TRANSPOSED, Layout.TRANSPOSED),
                Arguments.of(1, 129, 1, 129, Layout.STRIDED, Layout.ROW_MAJOR),
                Arguments.of(1, 1, 129, 65, Layout.ROW_MAJOR, Layout.STRIDED),
                Arguments.of(3, 17, 31, 300, Layout.STRIDED, Layout.STRIDED),         // k crosses the KC slice
                Arguments.of(4, 29, 33, 65, Layout.ROW_MAJOR, Layout.BROADCAST),       // shared weight
                Arguments.of(4, 33, 29, 17, Layout.BROADCAST, Layout.TRANSPOSED),
                Arguments.of(64, 58, 58, 16, Layout.ROW_MAJOR, Layout.TRANSPOSED),     // attention scores q·kᵀ
                Arguments.of(1, 200, 131, 129, Layout.ROW_MAJOR, Layout.ROW_MAJOR),    // large path, m crosses MC
                Arguments.of(2, 131, 150, 300, Layout.TRANSPOSED, Layout.ROW_MAJOR),  // large path, batched
                Arguments.of(1, 7, 4200, 80, Layout.ROW_MAJOR, Layout.TRANSPOSED));   // n crosses the NC block
    }

    @ParameterizedTest(name = "batch={0} m={1} n={2} k={3} A {4} B {5}")
    @MethodSource("shapes")
    void sgemmIsTheAscendingFmaChainOfThePlainTripleLoop(int batch, int m, int n, int k, Layout la, Layout lb) {
        Random rnd = new Random(31L * m + 7L * n + k);
        Operand a = operand(batch, m, k, la, rnd, false), b = operand(batch, k, n, lb, rnd, false);
        Operand c = output(batch, m, n, 3, false);
        CpuMatmul.sgemm(batch, m, n, k, a.seg, a.off, a.batchStride, a.rowStride, a.colStride,
                b.seg, b.off, b.batchStride, b.rowStride, b.colStride, c.seg, c.off, c.batchStride, c.rowStride);
        String vars = String.format("batch=%d m=%d n=%d k=%d A %s B %s", batch, m, n, k, la, lb);
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    float chain = 0;
                    double exact = 0, magnitude = 0;
                    for (int p = 0; p < k; p++) {
                        double x = a.values[bi][i][p], y = b.values[bi][p][j];
                        chain = Math.fma((float) x, (float) y, chain);
                        exact += x * y;
                        magnitude += Math.abs(x * y);
                    }
                    float got = c.seg.getAtIndex(F32, c.off + bi * c.batchStride + i * c.rowStride + j);
                    // Independent of the chain: the f32 error bound k·eps·Σ|a·b| around the f64 sum.
                    double tolerance = k * 0x1p-24 * magnitude + 1e-30;
                    if (Math.abs(got - exact) > tolerance)
                        fail(vars + ": C[" + bi + "][" + i + "][" + j + "] = " + got + ", f64 sum " + exact + " ± " + tolerance);
                    if (Float.floatToRawIntBits(got) != Float.floatToRawIntBits(chain))
                        fail(vars + ": C[" + bi + "][" + i + "][" + j + "] = " + got + " is not the ascending fma chain " + chain);
                }
                for (int j = n; j < c.rowStride; j++)
                    assertEquals(SENTINEL, c.seg.getAtIndex(F32, c.off + bi * c.batchStride + i * c.rowStride + j),
                            vars + ": wrote past row " + i + " of C");
            }
    }

    @Test
    void sgemmOnAllThreadsGivesTheBitsOfOneThreadTileByTile() {
        // Many tasks (MC row blocks × column splits × k slices) on Parallel's threads, against the same
        // fma chain run element by element on this thread: equal bits mean the thread count cannot matter.
        int m = 2 * CpuMatmul.MC + 5, n = 3 * CpuMatmul.NR + 7, k = CpuMatmul.KC + 45;
        Random rnd = new Random(5);
        Operand a = operand(1, m, k, Layout.ROW_MAJOR, rnd, false), b = operand(1, k, n, Layout.ROW_MAJOR, rnd, false);
        Operand c = output(1, m, n, 0, false);
        CpuMatmul.sgemm(1, m, n, k, a.seg, a.off, 0, a.rowStride, 1, b.seg, b.off, 0, b.rowStride, 1, c.seg, c.off, 0, c.rowStride);
        int differing = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                float chain = 0;
                for (int p = 0; p < k; p++) chain = Math.fma((float) a.values[0][i][p], (float) b.values[0][p][j], chain);
                if (Float.floatToRawIntBits(chain) != Float.floatToRawIntBits(c.seg.getAtIndex(F32, c.off + i * c.rowStride + j)))
                    differing++;
            }
        assertEquals(0, differing, "elements differing from the single-thread chain, threads=" + Parallel.THREADS);
    }

    @Test
    void sgemmOnSegmentsConfinedToTheCallerRunsOnTheCallersThread() {
        try (Arena confined = Arena.ofConfined()) {
            int m = 150, n = 140, k = 120;   // big enough for the multi-task path
            MemorySegment a = confined.allocate(4L * m * k), b = confined.allocate(4L * k * n), c = confined.allocate(4L * m * n);
            Random rnd = new Random(9);
            for (long e = 0; e < (long) m * k; e++) a.setAtIndex(F32, e, rnd.nextFloat());
            for (long e = 0; e < (long) k * n; e++) b.setAtIndex(F32, e, rnd.nextFloat());
            CpuMatmul.sgemm(1, m, n, k, a, 0, 0, k, 1, b, 0, 0, n, 1, c, 0, 0, n);
            float chain = 0;
            for (int p = 0; p < k; p++) chain = Math.fma(a.getAtIndex(F32, (m - 1L) * k + p), b.getAtIndex(F32, (long) p * n + n - 1), chain);
            assertEquals(chain, c.getAtIndex(F32, (long) m * n - 1));
        }
    }

    @Test
    void sgemmWithEmptyInnerDimensionWritesZeros() {
        Operand c = output(2, 3, 5, 2, false);
        MemorySegment none = arena.allocate(4);
        CpuMatmul.sgemm(2, 3, 5, 0, none, 0, 0, 0, 1, none, 0, 0, 1, 1, c.seg, c.off, c.batchStride, c.rowStride);
        for (int bi = 0; bi < 2; bi++)
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 5; j++) assertEquals(0f, c.seg.getAtIndex(F32, c.off + bi * c.batchStride + i * c.rowStride + j));
                assertEquals(SENTINEL, c.seg.getAtIndex(F32, c.off + bi * c.batchStride + i * c.rowStride + 5));
            }
    }

    @Test
    void sgemmNamesTheOperandThatDoesNotFitItsSegment() {
        MemorySegment a = arena.allocate(4L * 6 * 4), b = arena.allocate(4L * 4 * 5 - 4), c = arena.allocate(4L * 6 * 5);
        var e = assertThrows(IndexOutOfBoundsException.class,
                () -> CpuMatmul.sgemm(1, 6, 5, 4, a, 0, 0, 4, 1, b, 0, 0, 5, 1, c, 0, 0, 5));
        assertTrue(e.getMessage().startsWith("sgemm: B [1, 4, 5]"), e.getMessage());
        var neg = assertThrows(IllegalArgumentException.class,
                () -> CpuMatmul.sgemm(1, -1, 5, 4, a, 0, 0, 4, 1, b, 0, 0, 5, 1, c, 0, 0, 5));
        assertTrue(neg.getMessage().contains("m=-1"), neg.getMessage());
    }

    @ParameterizedTest(name = "batch={0} m={1} n={2} k={3} A {4} B {5}")
    @MethodSource("shapes")
    void dgemmIsTheAscendingFmaChainOfThePlainTripleLoop(int batch, int m, int n, int k, Layout la, Layout lb) {
        Random rnd = new Random(17L * m + n + 3L * k);
        Operand a = operand(batch, m, k, la, rnd, true), b = operand(batch, k, n, lb, rnd, true);
        Operand c = output(batch, m, n, 2, true);
        CpuMatmul.dgemm(batch, m, n, k, a.seg, a.off, a.batchStride, a.rowStride, a.colStride,
                b.seg, b.off, b.batchStride, b.rowStride, b.colStride, c.seg, c.off, c.batchStride, c.rowStride);
        String vars = String.format("batch=%d m=%d n=%d k=%d A %s B %s", batch, m, n, k, la, lb);
        for (int bi = 0; bi < batch; bi++)
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double chain = 0;
                    for (int p = 0; p < k; p++) chain = Math.fma(a.values[bi][i][p], b.values[bi][p][j], chain);
                    double got = c.seg.getAtIndex(F64, c.off + bi * c.batchStride + i * c.rowStride + j);
                    if (Double.doubleToRawLongBits(got) != Double.doubleToRawLongBits(chain))
                        fail(vars + ": C[" + bi + "][" + i + "][" + j + "] = " + got + ", expected " + chain);
                }
                for (int j = n; j < c.rowStride; j++)
                    assertEquals(SENTINEL, c.seg.getAtIndex(F64, c.off + bi * c.batchStride + i * c.rowStride + j), vars);
            }
    }
}

package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.ReduceOp;
import dev.jomni.tensor.spi.UnaryOp;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The f32/bf16 Vector API paths (F32Arithmetic, F32Unary, RowSums) against the double reference, on
 * odd sizes (tails shorter than a vector, a single element, more than one parallel chunk).
 */
class VectorPathsTest {
    private static final int[] SIZES = {1, 7, 31, 4097, 40_001};
    private static final DType[] TYPES = {DType.F32, DType.BF16};

    private static Tensor randn(Generator g, DType t, double scale, int... shape) {
        try (var ng = dev.jomni.tensor.Autograd.noGrad()) {
            return Tensor.randn(g, DType.F32, shape).mul(scale).to(t);
        }
    }

    /** Raw bits of a contiguous f32 or bf16 tensor, to compare bit for bit. */
    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToIntBits(f[i]);
        return b;
    }

    @Test
    void bf16AndMixedArithmeticEqualsTheReferenceBitForBit() {
        Generator g = new Generator(3);
        for (BinaryOp op : new BinaryOp[] {BinaryOp.ADD, BinaryOp.SUB, BinaryOp.MUL, BinaryOp.DIV})
            for (DType tx : TYPES)
                for (DType ty : TYPES)
                    for (int n : SIZES) {
                        Tensor x = randn(g, tx, 30, n), y = randn(g, ty, 3, n);
                        DType to = tx == DType.BF16 && ty == DType.BF16 ? DType.BF16 : DType.F32;
                        for (Tensor yv : new Tensor[] {y, y.narrow(0, 0, 1).reshape(1).expand(n)}) {   // a full operand, a scalar
                            Tensor fast = Tensor.empty(to, n), slow = Tensor.empty(to, n);
                            assertTrue(F32Arithmetic.handles(op, x, yv, fast));
                            F32Arithmetic.apply(op, x, yv, fast);
                            CpuBackend.binaryReference(op, x, yv, slow);
                            assertArrayEquals(bits(slow), bits(fast), op + " " + tx.lower() + " " + ty.lower() + " n=" + n);
                        }
                    }
        // a bias row broadcast over rows of odd length
        Tensor x = randn(g, DType.BF16, 1, 5, 37), b = randn(g, DType.BF16, 1, 37);
        Tensor fast = Tensor.empty(DType.BF16, 5, 37), slow = Tensor.empty(DType.BF16, 5, 37);
        F32Arithmetic.apply(BinaryOp.ADD, x, b.expand(5, 37), fast);
        CpuBackend.binaryReference(BinaryOp.ADD, x, b.expand(5, 37), slow);
        assertArrayEquals(bits(slow), bits(fast));
    }

    @Test
    void bf16StoreRoundsToNearestEvenAndKeepsNaNAndInfinities() {
        // ties both ways, the largest finite values (one rounds to inf), subnormals, signed zeros, NaN
        float[] v = {1.00390625f, 1.01171875f, -1.00390625f, Float.MAX_VALUE, 3.3895314e38f, 1e-40f, -0f, 0f,
                Float.NaN, Float.intBitsToFloat(0x7FFFFFFF), Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 2.5f, -7.3e-39f, 1f, 3f, 5f};
        Tensor x = Tensor.of(v, v.length), zero = Tensor.zeros(DType.F32, 1);
        Tensor fast = Tensor.empty(DType.BF16, v.length), slow = Tensor.empty(DType.BF16, v.length);
        F32Arithmetic.apply(BinaryOp.ADD, x, zero.expand(v.length), fast);   // x + 0 stored as bf16
        CpuBackend.binaryReference(BinaryOp.ADD, x, zero.expand(v.length), slow);
        assertArrayEquals(bits(slow), bits(fast));
    }

    @Test
    void negIsExactAndExpSiluStayWithinTheirUlpBounds() {
        Generator g = new Generator(5);
        for (DType t : TYPES)
            for (int n : SIZES) {
                Tensor x = randn(g, t, 4, n);
                for (UnaryOp op : new UnaryOp[] {UnaryOp.NEG, UnaryOp.EXP, UnaryOp.SILU}) {
                    Tensor fast = Tensor.empty(t, n), slow = Tensor.empty(t, n);
                    assertTrue(F32Unary.handles(op, x, fast));
                    F32Unary.apply(op, x, fast);
                    CpuBackend.unaryReference(op, x, slow, 0, 0);
                    String what = op + " " + t.lower() + " n=" + n;
                    if (op == UnaryOp.NEG) assertArrayEquals(bits(slow), bits(fast), what);
                    // in bf16 the f32 error shows only when the two values straddle a bf16 rounding boundary
                    else assertUlps(slow.toFloatArray(), fast.toFloatArray(), t == DType.BF16 ? 1 : op == UnaryOp.EXP ? EXP_ULPS : SILU_ULPS, t, what);
                }
            }
    }

    /** f32 exp (Cephes' expf): at most 1 ulp from the correctly rounded result over the whole grid below. */
    private static final int EXP_ULPS = 1;
    /** silu = x / (1 + exp(−x)): exp's ulp, shrunk through 1 + e, and the add's and divide's roundings. */
    private static final int SILU_ULPS = 2;

    @Test
    void f32ExpAcrossItsWholeRange() {
        // every 997th float in [−104, 89], and the edges: overflow to inf, underflow through subnormals to 0
        int from = Float.floatToIntBits(-104f), to = Float.floatToIntBits(89f);
        int count = 0, worst = 0;
        float[] grid = new float[4096];
        int k = 0;
        for (long b = Float.floatToIntBits(0f); ; b += 997) {         // positives up to 89
            if (b > to) break;
            grid[k++ % grid.length] = Float.intBitsToFloat((int) b);
            if (k % grid.length == 0) { worst = Math.max(worst, expUlps(grid)); count += grid.length; }
        }
        for (long b = Float.floatToIntBits(-0f); b <= from; b += 997) {   // negatives down to −104
            grid[k++ % grid.length] = Float.intBitsToFloat((int) b);
            if (k % grid.length == 0) { worst = Math.max(worst, expUlps(grid)); count += grid.length; }
        }
        assertTrue(count > 1_000_000, "grid of " + count);
        assertTrue(worst <= EXP_ULPS, "exp: " + worst + " ulp");
        float[] edges = {88.72283f, 88.72284f, 88.8f, 89f, 1000f, Float.POSITIVE_INFINITY, -87.3f, -100f, -103.97f, -103.98f,
                -200f, Float.NEGATIVE_INFINITY, 0f, -0f, Float.NaN, 1e-8f, -1e-8f};
        float[] got = vectorExp(edges);
        for (int i = 0; i < edges.length; i++) {
            float want = (float) Math.exp(edges[i]);
            if (Float.isNaN(want) || Float.isInfinite(want) || want == 0) assertEquals(want, got[i], "exp(" + edges[i] + ")");
            else assertTrue(ulps(want, got[i]) <= EXP_ULPS, "exp(" + edges[i] + ") = " + got[i] + " vs " + want);
        }
    }

    private static float[] vectorExp(float[] v) {
        Tensor x = Tensor.of(v, v.length), out = Tensor.empty(DType.F32, v.length);
        F32Unary.apply(UnaryOp.EXP, x, out);
        return out.toFloatArray();
    }

    private static int expUlps(float[] v) {
        float[] got = vectorExp(v);
        int worst = 0;
        for (int i = 0; i < v.length; i++) worst = Math.max(worst, ulps((float) Math.exp(v[i]), got[i]));
        return worst;
    }

    /** Distance in units of the last place, counting through subnormals (same sign assumed). */
    private static int ulps(float a, float b) {
        if (a == b) return 0;
        return Math.abs(Float.floatToIntBits(a) - Float.floatToIntBits(b));
    }

    private static void assertUlps(float[] want, float[] got, int bound, DType t, String what) {
        int shift = t == DType.BF16 ? 16 : 0;                         // bf16 ulps are f32 ulps of the top half
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i])) { assertTrue(Float.isNaN(got[i]), what + " at " + i); continue; }
            int d = (Float.floatToIntBits(want[i]) >> shift) - (Float.floatToIntBits(got[i]) >> shift);
            boolean tiny = Math.abs(want[i]) < 1e-37f && Math.abs(got[i]) < 1e-37f;    // silu's −0 for x ≪ 0, as PyTorch
            assertTrue(Math.abs(d) <= bound || tiny, what + " at " + i + ": " + got[i] + " vs reference " + want[i]);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 31, 4097, 40_001})
    void rowSumsMatchTheReferenceWithinOneUlpOfTheResult(int n) {
        Generator g = new Generator(n);
        for (DType t : TYPES) {
            int rows = n > 4097 ? 3 : 17;
            Tensor x = randn(g, t, 1, rows, n);
            for (DType to : new DType[] {t, DType.F32, DType.F64}) {
                Tensor fast = Tensor.empty(to, rows), slow = Tensor.empty(to, rows);
                assertTrue(RowSums.handles(x, fast));
                RowSums.sum(x, fast);
                CpuBackend.reduceReference(ReduceOp.SUM, x, slow);
                double[] f = fast.toDoubleArray(), s = slow.toDoubleArray(), abs = x.abs().sum(1, false).toDoubleArray();
                for (int r = 0; r < rows; r++) {
                    // the two double sums differ by at most 2n·2⁻⁵³·Σ|x|; then each rounds to out's dtype
                    double ulp = to == DType.F64 ? 0 : to == DType.F32 ? Math.ulp((float) s[r]) : Math.ulp((float) s[r]) * 65536;
                    double bound = ulp + 2.0 * n * Math.ulp(1.0) / 2 * abs[r];
                    assertTrue(Math.abs(f[r] - s[r]) <= bound, t.lower() + "→" + to.lower() + " row " + r + ": " + f[r] + " vs " + s[r]);
                }
                if (n < Lanes.LANES) assertArrayEquals(s, f, 0.0, "rows shorter than a vector: " + Arrays.toString(s));   // the same additions
            }
        }
    }
}

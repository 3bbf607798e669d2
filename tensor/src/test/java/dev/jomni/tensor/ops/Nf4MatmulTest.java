package dev.jomni.tensor.ops;

import static dev.jomni.tensor.ops.OpAsserts.assertBitEqual;
import static dev.jomni.tensor.ops.OpAsserts.assertClose;
import static dev.jomni.tensor.ops.OpAsserts.gradcheck;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class Nf4MatmulTest {
    /** Every block spans [−2.5, 2.5] and holds only NF4 levels · 2.5: the codes are exact, the nibbles high-first. */
    @Test
    void levelsRoundTripExactlyWithHighNibbleFirst() {
        double[] v = new double[2 * 64];
        for (int i = 0; i < v.length; i++) v[i] = 2.5 * Nf4Weight.CODE[i % 2 == 0 ? 15 - i / 2 % 16 : i / 2 % 16];   // codes 15, 0, 14, 1, …
        Tensor f32 = Tensor.fromDoubles(DType.F32, v, 2, 64);
        Nf4Weight w = Nf4Weight.quantize("hand", f32);
        long[] packed = w.packed().toLongArray();
        assertEquals(0xF0, packed[0], "byte 0 holds element 0 (code 15) high and element 1 (code 0) low");
        assertEquals(0xE1, packed[1]);
        // Equal absmax everywhere: offset = 2.5, absmax − offset = 0 codes exactly to the map's 0.
        assertEquals(2.5f, w.offset());
        assertArrayEquals(f32.toDoubleArray(), w.dequantize().toDoubleArray(), 0);
    }

    /**
     * The quantization error of N(0, 1) weights: NF4 with blocks of 64 keeps ‖W − Ŵ‖/‖W‖ at 0.09185 (measured
     * here, 2^18 weights, seed 13; the nearest level with each block's exact absmax gives 0.09182, so the
     * double-quantized absmax adds 0.03%; a fresh draw moves the value by well under 0.001).
     */
    @Test
    void gaussianRoundTripErrorIsTheNf4Expectation() {
        Tensor w = Tensor.randn(new Generator(13), DType.F32, 256, 1024);
        Nf4Weight q = Nf4Weight.quantize("gaussian", w);
        double[] a = w.toDoubleArray(), b = q.dequantize().toDoubleArray();
        double err = 0, norm = 0;
        for (int i = 0; i < a.length; i++) { err += (a[i] - b[i]) * (a[i] - b[i]); norm += a[i] * a[i]; }
        double rel = Math.sqrt(err / norm);
        double plain = Math.sqrt(plainNf4Error(a) / norm);                 // the same codes with exact f32 absmax
        System.out.printf("nf4 round trip on N(0,1) [256, 1024]: relative RMS error %.5f (exact absmax %.5f)%n", rel, plain);
        assertTrue(rel > 0.0905 && rel < 0.0930, "relative RMS error " + rel + " outside [0.0905, 0.0930]");
        assertTrue(rel < plain * 1.002, "double quantization added " + (rel / plain - 1) + " relative error");
        assertEquals(256 * 1024 / 2, q.packed().numel());
        assertEquals(4.127, 8.0 * (q.bytes() - 4 * 256) / a.length, 0.001, "bits per weight, without the shared 256-entry map");
    }

    /** Σ (w − ŵ)² with ŵ from each block's exact absmax and the nearest level. */
    private static double plainNf4Error(double[] a) {
        double err = 0;
        for (int b = 0; b < a.length / 64; b++) {
            double m = 0;
            for (int j = 0; j < 64; j++) m = Math.max(m, Math.abs(a[b * 64 + j]));
            for (int j = 0; j < 64; j++) {
                double x = a[b * 64 + j], best = Double.MAX_VALUE;
                for (float c : Nf4Weight.CODE) best = Math.min(best, Math.abs(x - c * m));
                err += best * best;
            }
        }
        return err;
    }

    /** Each dequantized absmax within half the dynamic map's widest gap times its nested scale, plus f32 rounding. */
    @Test
    void doubleQuantizedAbsmaxWithinItsBound() {
        Tensor w = Tensor.randn(new Generator(7), DType.F32, 300, 128).mul(0.02);   // 600 blocks: 3 nested blocks, the last partial
        Nf4Weight q = Nf4Weight.quantize("absmax", w);
        float[] map = q.nestedCode().toFloatArray(), nested = q.nestedAbsmax().toFloatArray();
        assertArrayEquals(Nf4Weight.dynamicMap(), map);
        assertEquals(3, nested.length);
        double gap = 0;
        for (int i = 0; i + 1 < map.length; i++) gap = Math.max(gap, map[i + 1] - map[i]);
        assertTrue(gap > 0.0140 && gap < 0.0141, "the widest gap of the dynamic map is 0.9/64 near 1: " + gap);
        long[] codes = q.absmax().toLongArray();
        double[] x = w.toDoubleArray();
        for (int b = 0; b < codes.length; b++) {
            double exact = 0;
            for (int j = 0; j < 64; j++) exact = Math.max(exact, (float) Math.abs(x[b * 64 + j]));
            double got = Nf4Weight.absmax(map, (int) codes[b], nested, b, q.offset());
            double bound = 0.5 * gap * nested[b / 256] + 1e-6 * exact;
            assertTrue(Math.abs(got - exact) <= bound, String.format("block %d: absmax %.8g, exact %.8g, bound %.3g", b, got, exact, bound));
        }
    }

    @Test
    void kNotAMultipleOf64NamesTheTensorAndShape() {
        Tensor w = Tensor.randn(new Generator(1), DType.F32, 3, 100);
        var e = assertThrows(IllegalArgumentException.class, () -> Nf4Weight.quantize("model.layers.0.mlp.down_proj.weight", w));
        assertTrue(e.getMessage().contains("model.layers.0.mlp.down_proj.weight") && e.getMessage().contains("[3, 100]"), e.getMessage());
        var x = assertThrows(IllegalArgumentException.class, () -> Nf4Matmul.nf4Matmul(Tensor.randn(new Generator(2), DType.F32, 2, 63),
                Nf4Weight.quantize("w", Tensor.randn(new Generator(3), DType.F32, 4, 64))));
        assertTrue(x.getMessage().contains("nf4Matmul") && x.getMessage().contains("[2, 63]"), x.getMessage());
    }

    /** Bit-identical in f64 to dequantize-then-matmul (both sum in double); bf16 within its rounding of the sum. */
    @ParameterizedTest(name = "M={0} N={1} K={2} {3}")
    @CsvSource({"1,1,64,F64", "7,3,128,F64", "31,65,192,F64", "4,130,64,F32", "7,33,256,BF16", "1,65,128,BF16"})
    void matchesDequantizeThenMatmul(int m, int n, int k, DType type) {
        Generator gen = new Generator(m * 1000 + n * 10 + k);
        Nf4Weight w = Nf4Weight.quantize("w", Tensor.randn(gen, DType.BF16, n, k));
        Tensor x = Tensor.randn(gen, DType.F32, m, k).to(type), dy = Tensor.randn(gen, DType.F32, m, n).to(type);
        Tensor deq = w.dequantize().to(type);
        Tensor y = Nf4Matmul.nf4Matmul(x, w), dx = dxOf(x, w, dy);
        Tensor y0 = x.to(DType.F64).matmul(deq.to(DType.F64).mT()), dx0 = dy.to(DType.F64).matmul(deq.to(DType.F64));
        if (type == DType.F64) {
            assertClose("y", y0, y, 1e-13);
            assertClose("dx", dx0, dx, 1e-13);
        } else {
            double ulp = type == DType.BF16 ? 0x1p-8 : 0x1p-23;
            assertClose("y " + type, y0.to(type), y, ulp * Math.sqrt(k));
            assertClose("dx " + type, dx0.to(type), dx, ulp * Math.sqrt(n));
        }
        assertEquals(type, y.dtype());
    }

    private static Tensor dxOf(Tensor x, Nf4Weight w, Tensor dy) {
        Tensor leaf = x.detach().requiresGrad(true);
        Nf4Matmul.nf4Matmul(leaf, w).backward(dy);
        return leaf.grad();
    }

    @ParameterizedTest(name = "[{0}] · [{1}, {2}]ᵀ")
    @CsvSource({"1,1,64", "3,5,128", "2,17,64"})
    void inputGradientMatchesFiniteDifferences(int m, int n, int k) {
        Generator gen = new Generator(n * k);
        Nf4Weight w = Nf4Weight.quantize("w", Tensor.randn(gen, DType.F32, n, k));
        Tensor x = Tensor.randn(gen, DType.F64, 2, m, k);
        gradcheck("nf4Matmul", in -> Nf4Matmul.nf4Matmul(in[0], w), x);
    }

    /** The weight's dtype is the dequantized one; a copy on the same device keeps every part. */
    @Test
    void dequantizeKeepsTheSourceDtypeAndCopiesAreEqual() {
        Nf4Weight w = Nf4Weight.quantize("w", Tensor.randn(new Generator(5), DType.BF16, 3, 64));
        assertEquals(DType.BF16, w.dequantize().dtype());
        assertBitEqual("copy", w.dequantize(), w.to(w.device()).dequantize());
    }
}

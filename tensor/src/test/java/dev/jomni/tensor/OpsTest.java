package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Forward values against hand-computed ones, dtype rules and the errors users see. */
class OpsTest {
    private static Tensor f32(float[] v, int... shape) { return Tensor.of(v, shape); }

    @Test
    void broadcastingArithmeticMatchesHandValues() {
        Tensor a = f32(new float[] {1, 2, 3, 4, 5, 6}, 2, 3), b = f32(new float[] {10, 20, 30}, 3);
        assertArrayEquals(new float[] {11, 22, 33, 14, 25, 36}, a.add(b).toFloatArray());
        assertArrayEquals(new float[] {-9, -18, -27, -6, -15, -24}, a.sub(b).toFloatArray());
        assertArrayEquals(new float[] {0.5f, 1, 1.5f, 2, 2.5f, 3}, a.div(2).toFloatArray());
        assertArrayEquals(new float[] {1, 4, 9, 16, 25, 36}, a.square().toFloatArray());
        assertArrayEquals(new int[] {2, 3}, a.add(b).shape());
        Tensor col = f32(new float[] {1, 2}, 2, 1);
        assertArrayEquals(new float[] {2, 3, 4, 6, 7, 8}, a.add(col).toFloatArray());
    }

    @Test
    void unaryFunctionsMatchJavaMath() {
        float[] x = {-2.5f, -0.3f, 0f, 0.7f, 3f};
        Tensor t = f32(x, 5);
        float[] silu = t.silu().toFloatArray(), gelu = t.gelu().toFloatArray(), sig = t.sigmoid().toFloatArray();
        for (int i = 0; i < x.length; i++) {
            double s = 1 / (1 + Math.exp(-x[i]));
            assertEquals(s, sig[i], 1e-6);
            assertEquals(x[i] * s, silu[i], 1e-6);
        }
        assertEquals(0.0, gelu[2], 1e-7);
        assertEquals(3 * 0.99865010196837, gelu[4], 1e-5);             // 3·Φ(3)
        assertEquals(-2.5 * 0.0062096653257761, gelu[0], 1e-6);         // −2.5·Φ(−2.5)
        assertArrayEquals(new float[] {0, 0, 0, 0.7f, 3}, t.relu().toFloatArray());
        assertArrayEquals(new float[] {-1, -0.3f, 0, 0.7f, 1}, t.clamp(-1, 1).toFloatArray());
    }

    @Test
    void reductionsOverAxesWithKeepdim() {
        Tensor a = Tensor.of(new double[] {1, 5, 3, 4, 2, 6}, 2, 3);
        assertArrayEquals(new double[] {9, 12}, a.sum(1, false).toDoubleArray());
        assertArrayEquals(new int[] {2, 1}, a.sum(1, true).shape());
        assertArrayEquals(new double[] {2.5, 3.5, 4.5}, a.mean(0, false).toDoubleArray());
        assertArrayEquals(new double[] {5, 6}, a.max(1, false).toDoubleArray());
        assertArrayEquals(new long[] {1, 2}, a.argmax(1, false).toLongArray());
        assertEquals(21, a.sum().item());
        assertEquals(6, a.max().item());
        double lse = Math.log(Math.exp(1) + Math.exp(5) + Math.exp(3));
        assertEquals(lse, a.logsumexp(1, false).toDoubleArray()[0], 1e-12);
        assertEquals(4, a.var(1, false, 1).toDoubleArray()[0], 1e-12);             // var(1,5,3) = 4
        assertEquals(8.0 / 3, a.var(1, false, 0).toDoubleArray()[0], 1e-12);
    }

    @Test
    void logsumexpOfHugeValuesDoesNotOverflow() {
        Tensor a = Tensor.of(new double[] {1000, 1000}, 2);
        assertEquals(1000 + Math.log(2), a.logsumexp(0, false).item(), 1e-9);
    }

    @Test
    void matmulBatchesAndBroadcasts() {
        Tensor a = Tensor.of(new double[] {1, 2, 3, 4}, 2, 2), b = Tensor.of(new double[] {5, 6, 7, 8}, 2, 2);
        assertArrayEquals(new double[] {19, 22, 43, 50}, a.matmul(b).toDoubleArray());
        assertArrayEquals(new double[] {17, 23, 39, 53}, a.matmul(b.mT()).toDoubleArray());     // transposed view, no copy
        Tensor batch = Tensor.stack(List.of(a, b), 0);                                          // [2,2,2] @ [2,2]
        assertArrayEquals(new double[] {19, 22, 43, 50, 67, 78, 91, 106}, batch.matmul(b).toDoubleArray());
        assertArrayEquals(new double[] {17, 39}, a.matmul(Tensor.of(new double[] {5, 6}, 2)).toDoubleArray());
    }

    @Test
    void bf16MatmulRoundsOnceFromF32() {
        Tensor a = Tensor.of(new float[] {1, 2, 3, 4}, 2, 2).to(DType.BF16);
        Tensor c = a.matmul(a);
        assertEquals(DType.BF16, c.dtype());
        assertArrayEquals(new float[] {7, 10, 15, 22}, c.toFloatArray());
    }

    @Test
    void softmaxRowsSumToOne() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 1000, 1000, 1000}, 2, 3);
        double[] s = x.softmax(-1).toDoubleArray();
        double e = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertEquals(Math.exp(3) / e, s[2], 1e-12);
        assertEquals(1.0 / 3, s[4], 1e-12);
        assertEquals(Math.log(Math.exp(1) / e), x.logSoftmax(1).toDoubleArray()[0], 1e-12);
    }

    @Test
    void crossEntropyAveragesOverValidTargetsOnly() {
        Tensor logits = Tensor.of(new double[] {0, 0, 0, 1, 2, 3}, 2, 3);
        double l0 = Math.log(3), l1 = -Math.log(Math.exp(1) / (Math.exp(1) + Math.exp(2) + Math.exp(3)));
        assertEquals((l0 + l1) / 2, logits.crossEntropy(Tensor.of(new long[] {1, 0}, 2), -100).item(), 1e-12);
        assertEquals(l0, logits.crossEntropy(Tensor.of(new long[] {1, -100}, 2), -100).item(), 1e-12);
        assertTrue(Double.isNaN(logits.crossEntropy(Tensor.of(new long[] {-100, -100}, 2), -100).item()));
        var e = assertThrows(IllegalArgumentException.class, () -> logits.crossEntropy(Tensor.of(new long[] {3, 0}, 2), -100));
        assertTrue(e.getMessage().contains("target 3"), e.getMessage());
    }

    @Test
    void normsMatchTheirDefinitions() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4}, 1, 4), w = Tensor.of(new double[] {1, 1, 2, 2}, 4);
        double rms = Math.sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        assertArrayEquals(new double[] {1 / rms, 2 / rms, 6 / rms, 8 / rms}, x.rmsNorm(w, 1e-6).toDoubleArray(), 1e-12);
        double sd = Math.sqrt(1.25 + 1e-5);
        assertArrayEquals(new double[] {-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd}, x.layerNorm(null, null, 1e-5).toDoubleArray(), 1e-12);
    }

    @Test
    void indexingOps() {
        Tensor t = Tensor.of(new double[] {0, 1, 2, 3, 4, 5}, 3, 2);
        assertArrayEquals(new double[] {4, 5, 0, 1, 4, 5}, t.embedding(Tensor.of(new long[] {2, 0, 2}, 3)).toDoubleArray());
        assertArrayEquals(new double[] {1, 0, 3, 2, 5, 4}, t.indexSelect(1, Tensor.of(new long[] {1, 0}, 2)).toDoubleArray());
        assertArrayEquals(new double[] {1, 2, 5}, t.gather(1, Tensor.of(new long[] {1, 0, 1}, 3, 1)).toDoubleArray());
        Tensor s = Tensor.zeros(DType.F64, 2, 3).scatterAdd(1, Tensor.of(new long[] {0, 0, 2, 1}, 2, 2), Tensor.of(new double[] {1, 2, 3, 4}, 2, 2));
        assertArrayEquals(new double[] {3, 0, 0, 0, 4, 3}, s.toDoubleArray());
        assertArrayEquals(new double[] {0, 1, 3, 6}, Tensor.of(new double[] {0, 1, 2, 3}, 4).cumsum(0).toDoubleArray());
        assertArrayEquals(new long[] {0, 1, 0, 0, 0, 1}, Tensor.of(new long[] {1, 2}, 2).oneHot(3).toLongArray());
        Tensor cat = Tensor.cat(List.of(t, Tensor.of(new double[] {9, 9}, 1, 2)), 0);
        assertArrayEquals(new int[] {4, 2}, cat.shape());
        assertArrayEquals(new double[] {0, 1, 2, 3, 4, 5, 9, 9}, cat.toDoubleArray());
        assertEquals(2, t.split(2, 0).size());
        assertArrayEquals(new double[] {4, 5}, t.split(2, 0).get(1).toDoubleArray());
    }

    @Test
    void sortAndTopkAreStableAndOrdered() {
        Tensor x = Tensor.of(new double[] {3, 1, 2, 1, 5}, 5);
        var sorted = x.sort(0, false);
        assertArrayEquals(new double[] {1, 1, 2, 3, 5}, sorted.values().toDoubleArray());
        assertArrayEquals(new long[] {1, 3, 2, 0, 4}, sorted.indices().toLongArray());
        var top = x.topk(2, 0, true);
        assertArrayEquals(new double[] {5, 3}, top.values().toDoubleArray());
        assertArrayEquals(new long[] {4, 0}, top.indices().toLongArray());
    }

    @Test
    void conv2dMatchesDirectSum() {
        Generator g = new Generator(1);
        Tensor x = Tensor.randn(g, DType.F64, 2, 3, 6, 5), w = Tensor.randn(g, DType.F64, 4, 3, 3, 2), b = Tensor.randn(g, DType.F64, 4);
        int stride = 2, pad = 1;
        Tensor y = x.conv2d(w, b, stride, pad);
        int oh = (6 + 2 - 3) / 2 + 1, ow = (5 + 2 - 2) / 2 + 1;
        assertArrayEquals(new int[] {2, 4, oh, ow}, y.shape());
        double[] xv = x.toDoubleArray(), wv = w.toDoubleArray(), bv = b.toDoubleArray(), yv = y.toDoubleArray();
        for (int n = 0; n < 2; n++) for (int o = 0; o < 4; o++) for (int i = 0; i < oh; i++) for (int j = 0; j < ow; j++) {
            double acc = bv[o];
            for (int c = 0; c < 3; c++) for (int p = 0; p < 3; p++) for (int q = 0; q < 2; q++) {
                int r = i * stride - pad + p, s = j * stride - pad + q;
                if (r >= 0 && r < 6 && s >= 0 && s < 5) acc += xv[((n * 3 + c) * 6 + r) * 5 + s] * wv[((o * 3 + c) * 3 + p) * 2 + q];
            }
            assertEquals(acc, yv[((n * 4 + o) * oh + i) * ow + j], 1e-12);
        }
    }

    @Test
    void viewsShareStorageAndCopyOnlyWhenNeeded() {
        Tensor t = Tensor.arange(DType.F32, 0, 12, 1).reshape(3, 4);
        Tensor tt = t.transpose(0, 1);
        assertFalse(tt.isContiguous());
        assertArrayEquals(new float[] {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}, tt.toFloatArray());
        assertArrayEquals(new float[] {1, 2, 5, 6, 9, 10}, t.narrow(1, 1, 2).toFloatArray());
        assertArrayEquals(new float[] {0, 1, 2, 3, 0, 1, 2, 3}, t.narrow(0, 0, 1).expand(2, 4).toFloatArray());
        assertArrayEquals(new int[] {4, 3}, tt.reshape(4, 3).shape());
        assertThrows(IllegalArgumentException.class, () -> tt.view(12));
        assertArrayEquals(new int[] {12}, t.view(12).shape());
    }

    @Test
    void dtypeConversionsRoundToNearestEven() {
        Tensor x = Tensor.of(new float[] {1.00390625f, 1.01171875f, 3.14159f, -0.0f}, 4);   // halfway cases for bf16
        float[] bf = x.to(DType.BF16).toFloatArray();
        assertEquals(1.0f, bf[0]);                   // 1 + 2^-8 rounds to even (down)
        assertEquals(1.015625f, bf[1]);              // 1 + 3·2^-8 rounds to even (up)
        assertEquals(3.140625f, bf[2]);
        assertArrayEquals(new long[] {1, 1, 3, 0}, x.to(DType.I64).toLongArray());
        assertEquals(DType.F32, Tensor.of(new long[] {1}, 1).div(Tensor.of(new long[] {2}, 1)).dtype());
        assertEquals(0.5, Tensor.of(new long[] {1}, 1).div(Tensor.of(new long[] {2}, 1)).item());
        assertEquals(DType.BOOL, x.gt(0).dtype());
        assertEquals(DType.F32, x.to(DType.BF16).add(x.to(DType.F16)).dtype());
    }

    @Test
    void seededRandomnessIsReproducible() {
        assertArrayEquals(Tensor.randn(new Generator(5), DType.F32, 10).toFloatArray(), Tensor.randn(new Generator(5), DType.F32, 10).toFloatArray());
        double mean = Tensor.rand(new Generator(9), DType.F64, 20000).mean().item();
        assertEquals(0.5, mean, 0.01);
        Tensor d = Tensor.ones(DType.F32, 1000).dropout(0.25, new Generator(2), true);
        double kept = d.gt(0).to(DType.F32).mean().item();
        assertEquals(0.75, kept, 0.05);
        assertEquals(1 / 0.75, d.max().item(), 1e-6);
    }

    @Test
    void errorsNameTheOpAndShapes() {
        Tensor a = Tensor.zeros(DType.F32, 2, 3, 4), b = Tensor.zeros(DType.F32, 5, 6);
        assertEquals("matmul: [2, 3, 4] @ [5, 6]: inner dimensions 4 and 5 differ",
                assertThrows(IllegalArgumentException.class, () -> a.matmul(b)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> a.add(b)).getMessage().startsWith("add: shapes [2, 3, 4] and [5, 6] do not broadcast"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> a.reshape(5, 5)).getMessage().startsWith("reshape: cannot reshape [2, 3, 4]"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> a.sum(3, false)).getMessage().startsWith("sum: dim 3 is out of range"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> a.indexSelect(0, Tensor.of(new long[] {2}, 1))).getMessage()
                .contains("index 2 is out of range for an axis of size 2"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> a.embedding(Tensor.of(new float[] {1}, 1))).getMessage()
                .startsWith("indexSelect: index must be i64 or i32, got f32"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[] {1, 2}, 3)).getMessage().startsWith("of: 2 values for shape [3]"));
    }
}

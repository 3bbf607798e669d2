package dev.jomni.tensor.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The same inputs give the same bits on 1, 3 or 8 threads (exact resume and parity rely on it). */
class ThreadCountDeterminismTest {
    private static float[] workload() {
        Generator g = new Generator(21);
        Tensor a = Tensor.randn(g, DType.F32, 3, 97, 301), b = Tensor.randn(g, DType.F32, 301, 129);
        Tensor x = Tensor.randn(g, DType.F32, 64, 40000);
        Tensor y = a.matmul(b);                                            // [3, 97, 129]
        Tensor parts = Tensor.cat(java.util.List.of(y.reshape(-1), x.sum(1, false), x.softmax(-1).reshape(-1).narrow(0, 0, 5000),
                x.logsumexp(-1, false), x.mul(x).mean().reshape(1), x.cumsum(1).reshape(-1).narrow(0, 0, 5000)), 0);
        return parts.toFloatArray();
    }

    @Test
    void resultsAreBitIdenticalAcrossThreadCounts() {
        float[][] out = new float[3][];
        int[] threads = {1, 3, 8};
        for (int i = 0; i < threads.length; i++) {
            int k = i;
            Parallel.withThreads(threads[i], () -> out[k] = workload());
        }
        assertArrayEquals(out[0], out[1]);
        assertArrayEquals(out[0], out[2]);
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.CrossEntropy;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * cross_entropy.cu against CpuCrossEntropy on fresh random inputs with ignored rows: lse, rowLoss and
 * dLogits, odd sizes on both sides of the warp/block switch, f32/bf16/f64; no host synchronisation while
 * queueing; a bad target raised at the next synchronisation naming the op, position and value.
 */
@Tag("gpu")
class CudaCrossEntropyTest {
    static final long IGNORE = -100;

    /** Statistics are f32 for 16-bit and f32 logits (sums in another order than the CPU's double), f64 for f64. */
    static double statBound(DType t) { return t == DType.F64 ? 1e-12 : 2e-5; }

    /** Targets uniform in [0, classes), every third one (from a random start) ignore_index, never the first (one valid row at least). */
    static Tensor targets(Generator g, int n, int classes) {
        long[] t = new long[n];
        int start = g.nextInt(3);
        for (int i = 0; i < n; i++) t[i] = i > 0 && (i + start) % 3 == 0 ? IGNORE : g.nextInt(classes);
        return Tensor.of(t, n);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        CrossEntropy.Kernels cuda = Backend.of(gpu).kernels(CrossEntropy.Kernels.class), cpu = Backend.of(Device.cpu()).kernels(CrossEntropy.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        DType stat = t.atLeastF32();
        for (int[] nc : new int[][] {{1, 1}, {31, 31}, {7, 4097}, {300, 1024}, {5, 1025}, {4097, 3}}) {
            int n = nc[0], c = nc[1];
            Tensor x = Tensor.randn(g, t, n, c).mul(4), tg = targets(g, n, c);
            Tensor scale = Tensor.of(new double[] {0.25 + g.nextDouble()}).to(stat).reshape();
            Tensor lse = Tensor.empty(Device.cpu(), stat, n), loss = Tensor.empty(Device.cpu(), stat, n), dx = Tensor.empty(Device.cpu(), t, n, c);
            cpu.forward(x, tg, IGNORE, lse, loss);
            cpu.backward(x, tg, lse, scale, IGNORE, dx);

            CudaDevice d = CudaBackend.of(gpu);
            Tensor xg = x.to(gpu), tgg = tg.to(gpu), sg = scale.to(gpu);
            Tensor lseG = Tensor.empty(gpu, stat, n), lossG = Tensor.empty(gpu, stat, n), dxG = Tensor.empty(gpu, t, n, c);
            long syncs = d.hostSyncs();
            cuda.forward(xg, tgg, IGNORE, lseG, lossG);
            cuda.backward(xg, tgg, lseG, sg, IGNORE, dxG);
            String at = "crossEntropy " + t + " [" + n + ", " + c + "] seed " + seed + ": ";
            assertEquals(syncs, d.hostSyncs(), at + "host synchronisations while queueing");
            double el = Gpu.relErr(lseG, lse), er = Gpu.relErr(lossG, loss), ed = Gpu.relErr(dxG, dx), b = CudaSoftmaxTest.bound(t);
            System.out.printf("%slse error %.3g, rowLoss error %.3g (bound %.3g), dLogits error %.3g (bound %.3g)%n", at, el, er, statBound(t), ed, b);
            assertTrue(el < statBound(t), at + "lse relative error " + el);
            assertTrue(er < statBound(t) * 10, at + "rowLoss relative error " + er);
            assertTrue(ed < b, at + "dLogits relative error " + ed);
            double[] lg = lseG.toDoubleArray(), dg = dxG.toDoubleArray();
            long[] tv = tg.toLongArray();
            for (int i = 0; i < n; i++)
                if (tv[i] == IGNORE) {
                    assertEquals(0, lg[i], at + "ignored row " + i + ": lse");
                    for (int j = 0; j < c; j++) assertEquals(0, dg[i * c + j], at + "ignored row " + i + ": dLogits");
                }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theOpOnCudaMatchesTheCpuLossAndGradient(DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Tensor x = Tensor.randn(g, t, 3, 11, 1500), tg = targets(g, 33, 1500).reshape(3, 11);
        Tensor xc = x.requiresGrad(true), xg = x.detach().to(gpu).requiresGrad(true);
        Tensor lc = xc.crossEntropy(tg, IGNORE), lg = xg.crossEntropy(tg.to(gpu), IGNORE);
        lc.backward();
        lg.backward();
        String at = "crossEntropy op " + t + " seed " + seed + ": ";
        double e = Gpu.relErr(lg, lc), eg = Gpu.relErr(xg.grad(), xc.grad());
        System.out.printf("%sloss %.6g vs %.6g, grad error %.3g%n", at, lg.toDoubleArray()[0], lc.toDoubleArray()[0], eg);
        assertTrue(e < statBound(t) * 10, at + "loss relative error " + e);
        assertTrue(eg < CudaSoftmaxTest.bound(t), at + "grad relative error " + eg);
    }

    @Test
    void aBadTargetIsRaisedAtTheNextSynchronisationNamingThePositionAndValue() {
        Device gpu = BackendParity.gpu();
        Tensor x = Tensor.randn(new Generator(Gpu.seed()), DType.F32, 5, 7).to(gpu);
        Tensor tg = Tensor.of(new long[] {0, IGNORE, 6, 9, 2}, 5).to(gpu);       // position 3 holds 9; 7 classes
        Tensor loss = x.crossEntropy(tg, IGNORE);                                   // queued: no exception yet
        var err = assertThrows(IllegalArgumentException.class, loss::toDoubleArray);
        String msg = err.getMessage();
        assertTrue(msg.startsWith("crossEntropy: index 9 is out of range for an axis of size 7"), msg);
        assertTrue(msg.contains("position 3"), msg);
        // reported once; the device goes on: a good call afterwards works
        Tensor ok = Tensor.of(new long[] {0, IGNORE, 6, 1, 2}, 5).to(gpu);
        double got = x.crossEntropy(ok, IGNORE).toDoubleArray()[0];
        double ref = x.to(Device.cpu()).crossEntropy(ok.to(Device.cpu()), IGNORE).toDoubleArray()[0];
        assertEquals(ref, got, 1e-5 * Math.abs(ref));
    }
}

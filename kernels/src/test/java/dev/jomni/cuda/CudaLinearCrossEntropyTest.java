package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuLinearCrossEntropy;
import dev.jomni.tensor.ops.LinearCrossEntropy;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * CudaLinearCrossEntropy against CpuLinearCrossEntropy on fresh random inputs with ignored rows: lse,
 * rowLoss, dHidden, dWeight (and each alone), chunk sizes that divide neither N nor V, odd sizes,
 * f32/bf16/f64; no host synchronisation while queueing; a bad target raised at the next synchronisation.
 */
@Tag("gpu")
class CudaLinearCrossEntropyTest {
    static final long IGNORE = -100;

    /** bf16: g is rounded to bf16 for the gradient products (as PyTorch's autograd does), then the result. */
    static double gradBound(DType t) {
        return switch (t) {
            case F64 -> 1e-12;
            case F32 -> 2e-5;
            default -> 1e-2;
        };
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        CudaBackend backend = (CudaBackend) Backend.of(gpu);
        CudaDevice d = backend.on(gpu);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        DType stat = t.atLeastF32();
        // {N, H, V, token chunk, vocabulary chunk}: chunks dividing neither N nor V where there are several
        for (int[] c : new int[][] {{1, 1, 1, 128, 128}, {31, 31, 31, 128, 128}, {300, 64, 1000, 128, 256}, {4097, 32, 300, 4096, 4096},
                {5, 48, 4097, 128, 4096}, {257, 40, 385, 128, 128}}) {
            int n = c[0], h = c[1], v = c[2];
            LinearCrossEntropy.Kernels cuda = new CudaLinearCrossEntropy(backend, c[3], c[4]);
            LinearCrossEntropy.Kernels cpu = new CpuLinearCrossEntropy(37, 101);
            Tensor hidden = Tensor.randn(g, t, n, h), weight = Tensor.randn(g, t, v, h).mul(0.5), tg = CudaCrossEntropyTest.targets(g, n, v);
            Tensor scale = Tensor.of(new double[] {0.25 + g.nextDouble()}).to(stat).reshape();
            Tensor lse = Tensor.empty(Device.cpu(), stat, n), loss = Tensor.empty(Device.cpu(), stat, n);
            Tensor dh = Tensor.empty(Device.cpu(), t, n, h), dw = Tensor.empty(Device.cpu(), t, v, h);
            cpu.forward(hidden, weight, tg, IGNORE, lse, loss);
            cpu.backward(hidden, weight, tg, lse, scale, IGNORE, dh, dw);

            Tensor hg = hidden.to(gpu), wg = weight.to(gpu), tgg = tg.to(gpu), sg = scale.to(gpu);
            Tensor lseG = Tensor.empty(gpu, stat, n), lossG = Tensor.empty(gpu, stat, n);
            Tensor dhG = Tensor.empty(gpu, t, n, h), dwG = Tensor.empty(gpu, t, v, h);
            long syncs = d.hostSyncs();
            cuda.forward(hg, wg, tgg, IGNORE, lseG, lossG);
            cuda.backward(hg, wg, tgg, lseG, sg, IGNORE, dhG, dwG);
            String at = "linearCrossEntropy " + t + " N " + n + ", H " + h + ", V " + v + ", chunks " + c[3] + " × " + c[4] + " seed " + seed + ": ";
            assertEquals(syncs, d.hostSyncs(), at + "host synchronisations while queueing");
            double sb = CudaCrossEntropyTest.statBound(t), gb = gradBound(t);
            double el = Gpu.relErr(lseG, lse), er = Gpu.relErr(lossG, loss), eh = Gpu.relErr(dhG, dh), ew = Gpu.relErr(dwG, dw);
            System.out.printf("%slse %.3g, rowLoss %.3g (bound %.3g, ×10), dHidden %.3g, dWeight %.3g (bound %.3g)%n", at, el, er, sb, eh, ew, gb);
            assertTrue(el < sb, at + "lse relative error " + el);
            assertTrue(er < sb * 10, at + "rowLoss relative error " + er);
            assertTrue(eh < gb, at + "dHidden relative error " + eh);
            assertTrue(ew < gb, at + "dWeight relative error " + ew);

            // each gradient alone (the other null: not computed)
            Tensor dhOnly = Tensor.empty(gpu, t, n, h), dwOnly = Tensor.empty(gpu, t, v, h);
            cuda.backward(hg, wg, tgg, lseG, sg, IGNORE, dhOnly, null);
            cuda.backward(hg, wg, tgg, lseG, sg, IGNORE, null, dwOnly);
            assertTrue(Gpu.relErr(dhOnly, dh) < gb, at + "dHidden alone");
            assertTrue(Gpu.relErr(dwOnly, dw) < gb, at + "dWeight alone");
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theOpOnCudaMatchesTheCpuLossAndGradients(DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Tensor hidden = Tensor.randn(g, t, 77, 96), weight = Tensor.randn(g, t, 5000, 96).mul(0.3), tg = CudaCrossEntropyTest.targets(g, 77, 5000);
        Tensor hc = hidden.requiresGrad(true), wc = weight.requiresGrad(true);
        Tensor hg = hidden.detach().to(gpu).requiresGrad(true), wg = weight.detach().to(gpu).requiresGrad(true);
        Tensor lc = hc.linearCrossEntropy(wc, tg, IGNORE), lg = hg.linearCrossEntropy(wg, tg.to(gpu), IGNORE);
        lc.backward();
        lg.backward();
        String at = "linearCrossEntropy op " + t + " seed " + seed + ": ";
        double e = Gpu.relErr(lg, lc), eh = Gpu.relErr(hg.grad(), hc.grad()), ew = Gpu.relErr(wg.grad(), wc.grad());
        System.out.printf("%sloss %.6g vs %.6g, dHidden %.3g, dWeight %.3g%n", at, lg.toDoubleArray()[0], lc.toDoubleArray()[0], eh, ew);
        assertTrue(e < 1e-4, at + "loss relative error " + e);
        assertTrue(eh < gradBound(t), at + "dHidden relative error " + eh);
        assertTrue(ew < gradBound(t), at + "dWeight relative error " + ew);
    }

    @Test
    void aBadTargetIsRaisedAtTheNextSynchronisationNamingThePositionAndValue() {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        Tensor hidden = Tensor.randn(g, DType.F32, 5, 8).to(gpu), weight = Tensor.randn(g, DType.F32, 7, 8).to(gpu);
        Tensor tg = Tensor.of(new long[] {0, IGNORE, 6, -3, 2}, 5).to(gpu);      // position 3 holds −3
        Tensor loss = hidden.linearCrossEntropy(weight, tg, IGNORE);                // queued: no exception yet
        var err = assertThrows(IllegalArgumentException.class, loss::toDoubleArray);
        String msg = err.getMessage();
        assertTrue(msg.startsWith("linearCrossEntropy: index -3 is out of range for an axis of size 7"), msg);
        assertTrue(msg.contains("position 3"), msg);
        Tensor ok = Tensor.of(new long[] {0, IGNORE, 6, 1, 2}, 5).to(gpu);
        double got = hidden.linearCrossEntropy(weight, ok, IGNORE).toDoubleArray()[0];
        double ref = hidden.to(Device.cpu()).linearCrossEntropy(weight.to(Device.cpu()), ok.to(Device.cpu()), IGNORE).toDoubleArray()[0];
        assertEquals(ref, got, 1e-5 * Math.abs(ref));
    }
}

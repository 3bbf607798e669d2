package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Swiglu;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * swiglu.cu against CpuSwiglu on fresh random inputs: two [rows, I] tensors and the two halves of one
 * [rows, 2I] (row stride 2I, gradients written into the halves of one tensor), dgate or dup alone,
 * odd sizes, f32/bf16/f64.
 */
@Tag("gpu")
class CudaSwigluTest {
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F64"})
    void forwardAndBackwardMatchTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        Swiglu.Kernels cuda = Backend.of(gpu).kernels(Swiglu.Kernels.class), cpu = Backend.of(Device.cpu()).kernels(Swiglu.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        double b = CudaSoftmaxTest.bound(t);
        for (int[] rn : new int[][] {{1, 1}, {31, 31}, {3, 4097}, {257, 96}}) {
            int rows = rn[0], n = rn[1];
            for (boolean halves : new boolean[] {false, true}) {
                Tensor gu = Tensor.randn(g, t, rows, 2 * n).mul(3), dout = Tensor.randn(g, t, rows, n);
                Tensor gate = halves ? gu.narrow(1, 0, n) : gu.narrow(1, 0, n).contiguous();
                Tensor up = halves ? gu.narrow(1, n, n) : gu.narrow(1, n, n).contiguous();
                Tensor out = Tensor.empty(Device.cpu(), t, rows, n), d = Tensor.empty(Device.cpu(), t, rows, 2 * n);
                cpu.forward(gate, up, out);
                cpu.backward(dout, gate, up, d.narrow(1, 0, n), d.narrow(1, n, n));

                Tensor gug = gu.to(gpu);
                Tensor gateG = halves ? gug.narrow(1, 0, n) : gate.to(gpu), upG = halves ? gug.narrow(1, n, n) : up.to(gpu);
                Tensor outG = Tensor.empty(gpu, t, rows, n), dG = Tensor.empty(gpu, t, rows, 2 * n), doutG = dout.to(gpu);
                cuda.forward(gateG, upG, outG);
                Tensor dgate = halves ? dG.narrow(1, 0, n) : Tensor.empty(gpu, t, rows, n), dup = halves ? dG.narrow(1, n, n) : Tensor.empty(gpu, t, rows, n);
                cuda.backward(doutG, gateG, upG, dgate, dup);
                String at = "swiglu " + t + (halves ? " halves of [" + rows + ", " + 2 * n + "]" : " [" + rows + ", " + n + "]") + " seed " + seed + ": ";
                double eo = Gpu.relErr(outG, out), eg = Gpu.relErr(dgate, d.narrow(1, 0, n)), eu = Gpu.relErr(dup, d.narrow(1, n, n));
                System.out.printf("%sout error %.3g, dgate error %.3g, dup error %.3g (bound %.3g)%n", at, eo, eg, eu, b);
                assertTrue(eo < b, at + "out relative error " + eo);
                assertTrue(eg < b, at + "dgate relative error " + eg);
                assertTrue(eu < b, at + "dup relative error " + eu);

                // one gradient asked for: the other output is left as it was
                Tensor onlyUp = Tensor.empty(gpu, t, rows, n), onlyGate = Tensor.empty(gpu, t, rows, n);
                cuda.backward(doutG, gateG, upG, null, onlyUp);
                cuda.backward(doutG, gateG, upG, onlyGate, null);
                assertTrue(Gpu.relErr(onlyUp, d.narrow(1, n, n)) < b, at + "dup alone");
                assertTrue(Gpu.relErr(onlyGate, d.narrow(1, 0, n)) < b, at + "dgate alone");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theFusedOpOnCudaDifferentiatesAsOnTheCpu(DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Tensor gu = Tensor.randn(g, t, 4, 7, 2 * 33), dy = Tensor.randn(g, t, 4, 7, 33);
        Tensor gg = gu.to(gpu).requiresGrad(true), gc = gu.requiresGrad(true);
        Tensor yg = Swiglu.swiglu(gg), yc = Swiglu.swiglu(gc);
        yg.backward(dy.to(gpu));
        yc.backward(dy);
        String at = "swiglu(gateUp) " + t + " seed " + seed + ": ";
        assertTrue(Gpu.relErr(yg, yc) < CudaSoftmaxTest.bound(t), at + "out");
        assertTrue(Gpu.relErr(gg.grad(), gc.grad()) < CudaSoftmaxTest.bound(t), at + "grad");
    }
}

package dev.jomni.cuda;

import dev.jomni.tensor.spi.Backend;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuMoeExperts;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * moe_experts.cu with NF4 experts (the GEMMs decode the codes in their tiles) against CpuMoeExperts over the
 * same weights dequantized on the CPU: forward, dx, the routing weights' and the LoRA gradients (the base is
 * frozen); k = 1, 2, 8, E = 8 and 128, uniform and skewed routing, T = 1, with and without LoRA, bf16 on the
 * tensor-core path and f32 through the dense copies the call makes; also the op's NF4 overload on CUDA.
 * Outputs are filled with NaN before the kernels run: an element they skip fails the comparison.
 */
@Tag("gpu")
class CudaMoeExpertsNf4Test {
    enum Routing { UNIFORM, SKEWED }

    /** NF4 inputs on the CPU, and the same with the experts dequantized (what the reference computes with). */
    record Case(String name, MoeExperts.Inputs nf4, MoeExperts.Inputs dense) {
        @Override public String toString() {
            var in = dense;
            return name + " " + in.x().dtype().lower() + " N=" + in.tokens() + " H=" + in.hidden() + " I=" + in.intermediate() + " E="
                    + in.experts() + " K=" + in.topK() + (in.gateUpLora() != null ? " LoRA" : "");
        }
    }

    /** K distinct experts per token: uniformly, or skewed (each choice the lowest free expert with probability 0.6). */
    static long[] route(Generator g, int n, int e, int k, Routing routing) {
        long[] ids = new long[n * k];
        for (int t = 0; t < n; t++) {
            List<Long> pool = new ArrayList<>();
            for (long x = 0; x < e; x++) pool.add(x);
            for (int j = 0; j < k; j++)
                ids[t * k + j] = routing == Routing.SKEWED && g.nextInt(10) < 6 ? pool.remove(0) : pool.remove(g.nextInt(pool.size()));
        }
        return ids;
    }

    static Case random(String name, DType t, Generator g, int n, int h, int i, int e, int k, Routing routing, int lora) {
        Tensor ids = Tensor.of(route(g, n, e, k, routing), n, k);
        Tensor x = Tensor.randn(g, DType.F64, n, h).to(t);
        Tensor w = Tensor.rand(g, DType.F64, n, k).add(0.1).to(t);
        Nf4Weight gu = Nf4Weight.quantize("gateUp", Tensor.randn(g, DType.F64, e * 2 * i, h).mul(1 / Math.sqrt(h)).to(t));
        Nf4Weight dn = Nf4Weight.quantize("down", Tensor.randn(g, DType.F64, e * h, i).mul(1 / Math.sqrt(i)).to(t));
        MoeExperts.Lora lg = null, ld = null;
        if (lora > 0) {
            lg = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, lora, h).mul(1 / Math.sqrt(h)).to(t),
                    Tensor.randn(g, DType.F64, e, 2 * i, lora).mul(0.5).to(t), 1.5);
            ld = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, lora + 1, i).mul(1 / Math.sqrt(i)).to(t),
                    Tensor.randn(g, DType.F64, e, h, lora + 1).mul(0.5).to(t), 0.75);
        }
        var nf4 = new MoeExperts.Inputs(x, ids, w, null, null, lg, ld, gu, dn, e);
        var dense = new MoeExperts.Inputs(x, ids, w, gu.dequantize().reshape(e, 2 * i, h), dn.dequantize().reshape(e, h, i), lg, ld);
        return new Case(name, nf4, dense);
    }

    static MoeExperts.Inputs on(Device d, MoeExperts.Inputs in) {
        return new MoeExperts.Inputs(in.x().to(d), in.ids().to(d), in.weights().to(d), null, null, CudaMoeExpertsTest.on(d, in.gateUpLora()),
                CudaMoeExpertsTest.on(d, in.downLora()), in.gateUpNf4().to(d), in.downNf4().to(d), in.experts());
    }

    static Tensor poisoned(Device d, Tensor like) { return like == null ? null : Tensor.full(d, like.dtype(), Double.NaN, like.shape()); }

    /** dx, the routing weights' and every LoRA tensor's gradient (NaN-filled on d); the base has none. */
    static MoeExperts.Grads grads(Device d, MoeExperts.Inputs in) {
        MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
        return new MoeExperts.Grads(poisoned(d, in.x()), poisoned(d, in.weights()), null, null,
                poisoned(d, gu == null ? null : gu.a()), poisoned(d, gu == null ? null : gu.b()),
                poisoned(d, dn == null ? null : dn.a()), poisoned(d, dn == null ? null : dn.b()));
    }

    static void compare(Case c, long seed, MoeExperts.Kernels cuda, String path) {
        Device gpu = BackendParity.gpu();
        var named = new CudaMoeExpertsTest.Case(c.toString() + " NF4" + path, c.dense());
        DType t = c.dense().x().dtype();
        MoeExperts.Inputs ref = c.dense(), ig = on(gpu, c.nf4());
        Tensor dy = Tensor.randn(new Generator(seed ^ 0x5DEECE66DL), DType.F64, ref.tokens(), ref.hidden()).to(t);
        var cpu = new CpuMoeExperts(true);
        Tensor out = Tensor.empty(Device.cpu(), t, ref.tokens(), ref.hidden()), outg = poisoned(gpu, out);
        cpu.forward(ref, out);
        cuda.forward(ig, outg);
        CudaMoeExpertsTest.check(named, "forward", outg, out, CudaMoeExpertsTest.bound(t, false), seed);
        MoeExperts.Grads want = grads(Device.cpu(), ref), got = grads(gpu, ig);
        cpu.backward(ref, dy, want);
        cuda.backward(ig, dy.to(gpu), got);
        Tensor[] r = CudaMoeExpertsTest.list(want), q = CudaMoeExpertsTest.list(got);
        for (int j = 0; j < r.length; j++)
            if (r[j] != null) CudaMoeExpertsTest.check(named, CudaMoeExpertsTest.GRAD_NAMES[j], q[j], r[j], CudaMoeExpertsTest.bound(t, true), seed);
    }

    static void compare(Case c, long seed) {
        Device gpu = BackendParity.gpu();
        compare(c, seed, Backend.of(gpu).kernels(MoeExperts.Kernels.class), "");
        if (c.dense().x().dtype() == DType.BF16 && (long) c.dense().tokens() * c.dense().topK() <= CudaMoeExperts.DECODE_SLOTS) {
            compare(c, seed, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.MMA, 0, CudaMoeExperts.DecodeKernel.SIMT), " [mma]");
            compare(c, seed, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.MMA,
                    CudaMoeExperts.DECODE_SLOTS, CudaMoeExperts.DecodeKernel.MMA16), " [mma16]");
        }
        if (c.dense().x().dtype() == DType.BF16) {            // the wmma GEMMs; dense copies on the SIMT GEMMs
            compare(c, seed, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.WMMA, 0, CudaMoeExperts.DecodeKernel.SIMT), " [wmma]");
            compare(c, seed, new CudaMoeExperts((CudaBackend) Backend.of(gpu), false), " [simt]");
        }
    }

    @Test
    void nf4ExpertsMatchTheReferenceOverTheDequantizedWeights() {
        assertTrue(Backend.of(BackendParity.gpu()).kernels(MoeExperts.Kernels.class).takesNf4(), "CUDA reads NF4 experts itself");
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        DType b = DType.BF16;
        List<Case> cases = List.of(
                random("T=1 k=8", b, g, 1, 128, 64, 8, 8, Routing.UNIFORM, 0),
                random("T=1 k=1 LoRA", b, g, 1, 128, 64, 128, 1, Routing.UNIFORM, 4),
                random("k=1 uniform", b, g, 67, 128, 64, 8, 1, Routing.UNIFORM, 0),
                random("k=2 skewed LoRA", b, g, 67, 128, 64, 8, 2, Routing.SKEWED, 4),
                random("k=8 E=128 uniform", b, g, 131, 128, 64, 128, 8, Routing.UNIFORM, 0),
                random("k=8 E=128 skewed LoRA", b, g, 131, 128, 64, 128, 8, Routing.SKEWED, 8),
                // several 128-row tiles per expert, 12 k-steps of 32 in gate_up, partial column tiles (I = 192)
                random("k=8 E=8 skewed, 3 row tiles", b, g, 300, 384, 192, 8, 8, Routing.SKEWED, 4),
                random("f32: dense copies", DType.F32, g, 31, 128, 64, 8, 2, Routing.SKEWED, 4));
        for (Case c : cases) compare(c, seed);
    }

    @Test
    void theNf4OverloadOnCudaDifferentiatesAsOnTheCpu() {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Case c = random("op", DType.BF16, g, 37, 128, 64, 8, 2, Routing.UNIFORM, 4);
        MoeExperts.Inputs in = c.nf4(), ig = on(gpu, in);
        Tensor x = in.x().requiresGrad(true), xg = ig.x().detach().requiresGrad(true);
        Tensor bA = in.gateUpLora().a().requiresGrad(true), bAg = ig.gateUpLora().a().detach().requiresGrad(true);
        var lg = new MoeExperts.Lora(bA, in.gateUpLora().b(), in.gateUpLora().scaling());
        var lgg = new MoeExperts.Lora(bAg, ig.gateUpLora().b(), ig.gateUpLora().scaling());
        Tensor y = MoeExperts.moeExperts(x, in.ids(), in.weights(), in.gateUpNf4(), in.downNf4(), in.experts(), lg, in.downLora());
        Tensor yg = MoeExperts.moeExperts(xg, ig.ids(), ig.weights(), ig.gateUpNf4(), ig.downNf4(), ig.experts(), lgg, ig.downLora());
        var named = new CudaMoeExpertsTest.Case("NF4 op", c.dense());
        CudaMoeExpertsTest.check(named, "op forward", yg, y, CudaMoeExpertsTest.bound(DType.BF16, false), seed);
        y.sum().backward();
        yg.sum().backward();
        CudaMoeExpertsTest.check(named, "op dx", xg.grad(), x.grad(), CudaMoeExpertsTest.bound(DType.BF16, true), seed);
        CudaMoeExpertsTest.check(named, "op dgateUpA", bAg.grad(), bA.grad(), CudaMoeExpertsTest.bound(DType.BF16, true), seed);
    }

    @Test
    void aBaseGradientOfNf4ExpertsIsRefused() {
        Device gpu = BackendParity.gpu();
        Case c = random("frozen", DType.BF16, new Generator(Gpu.seed()), 3, 64, 64, 8, 2, Routing.UNIFORM, 0);
        MoeExperts.Inputs ig = on(gpu, c.nf4());
        var g = new MoeExperts.Grads(null, null, Tensor.empty(gpu, DType.BF16, 8, 128, 64), null, null, null, null, null);
        var e = assertThrows(IllegalArgumentException.class,
                () -> Backend.of(gpu).kernels(MoeExperts.Kernels.class).backward(ig, Tensor.zeros(gpu, DType.BF16, 3, 64), g));
        assertTrue(e.getMessage().contains("frozen"), e.getMessage());
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuMoeExperts;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.spi.Backend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * moe_experts.cu against CpuMoeExperts on fresh random inputs: forward and every gradient, N = 1, 31, 257 tokens,
 * E = 8 and 128, K = 8, odd H and I (partial tiles), H and I multiples of 8 (vector loads), experts without tokens, all slots on one expert, ids −1, i32
 * ids, LoRA on both projections, the frozen base (QLoRA: no base gradients), f32/bf16 (f64 in one case);
 * also no host synchronisation, bit-identical reruns, and a bad id raised at the next synchronisation.
 */
@Tag("gpu")
class CudaMoeExpertsTest {
    /** Relative (Frobenius) error bound: bf16 intermediates round at the same points, but the f32 sums run in another order. */
    static double bound(DType t, boolean grad) {
        return switch (t) {
            case F64 -> 1e-11;
            case F32 -> 2e-5;
            default -> grad ? 3e-2 : 1.5e-2;
        };
    }

    /** One problem on the CPU: inputs, and where CUDA's copy lives once moved. */
    record Case(String name, MoeExperts.Inputs in) {
        @Override public String toString() {
            var x = in.x();
            return name + " " + x.dtype().lower() + " N=" + in.tokens() + " H=" + in.hidden() + " I=" + in.intermediate() + " E="
                    + in.experts() + " K=" + in.topK() + (in.gateUpLora() != null ? " LoRA r=" + in.gateUpLora().rank() + "/" + in.downLora().rank() : "")
                    + " ids " + in.ids().dtype().lower();
        }
    }

    enum Routing { DISTINCT, ONE_EXPERT, SOME_NONE }

    static Case random(String name, DType t, Generator g, int n, int h, int i, int e, int k, Routing routing, int lora, DType idType) {
        long[] ids = new long[n * k];
        for (int tok = 0; tok < n; tok++) {
            List<Long> pool = new ArrayList<>();
            for (long x = 0; x < e; x++) pool.add(x);
            for (int j = 0; j < k; j++) {
                long v = switch (routing) {
                    case DISTINCT -> pool.remove(g.nextInt(pool.size()));
                    case ONE_EXPERT -> Math.min(5, e - 1);
                    case SOME_NONE -> tok == n / 2 || g.nextInt(3) == 0 ? -1 : pool.remove(g.nextInt(pool.size()));
                };
                ids[tok * k + j] = v;
            }
        }
        Tensor idt = Tensor.of(ids, n, k);
        if (idType == DType.I32) idt = idt.to(DType.I32);
        Tensor x = Tensor.randn(g, DType.F64, n, h).to(t);
        Tensor w = Tensor.rand(g, DType.F64, n, k).add(0.1).to(t);
        Tensor gateUp = Tensor.randn(g, DType.F64, e, 2 * i, h).mul(1 / Math.sqrt(h)).to(t);
        Tensor down = Tensor.randn(g, DType.F64, e, h, i).mul(1 / Math.sqrt(i)).to(t);
        MoeExperts.Lora gu = null, dn = null;
        if (lora > 0) {
            gu = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, lora, h).mul(1 / Math.sqrt(h)).to(t),
                    Tensor.randn(g, DType.F64, e, 2 * i, lora).mul(0.5).to(t), 1.5);
            dn = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, lora + 1, i).mul(1 / Math.sqrt(i)).to(t),
                    Tensor.randn(g, DType.F64, e, h, lora + 1).mul(0.5).to(t), 0.75);
        }
        return new Case(name, new MoeExperts.Inputs(x, idt, w, gateUp, down, gu, dn));
    }

    static Tensor on(Device d, Tensor t) { return t == null ? null : t.to(d); }

    static MoeExperts.Lora on(Device d, MoeExperts.Lora l) { return l == null ? null : new MoeExperts.Lora(l.a().to(d), l.b().to(d), l.scaling()); }

    static MoeExperts.Inputs on(Device d, MoeExperts.Inputs in) {
        return new MoeExperts.Inputs(on(d, in.x()), on(d, in.ids()), on(d, in.weights()), on(d, in.gateUp()), on(d, in.down()),
                on(d, in.gateUpLora()), on(d, in.downLora()));
    }

    static Tensor like(Device d, Tensor t, boolean want) { return want && t != null ? Tensor.empty(d, t.dtype(), t.shape()) : null; }

    /** Gradients of every input, or (frozen) only x, the routing weights and the LoRA tensors, as QLoRA asks. */
    static MoeExperts.Grads grads(Device d, MoeExperts.Inputs in, boolean frozenBase) {
        MoeExperts.Lora gu = in.gateUpLora(), dn = in.downLora();
        return new MoeExperts.Grads(like(d, in.x(), true), like(d, in.weights(), true), like(d, in.gateUp(), !frozenBase),
                like(d, in.down(), !frozenBase), like(d, gu == null ? null : gu.a(), true), like(d, gu == null ? null : gu.b(), true),
                like(d, dn == null ? null : dn.a(), true), like(d, dn == null ? null : dn.b(), true));
    }

    static final String[] GRAD_NAMES = {"dx", "dweights", "dgateUp", "ddown", "dgateUpA", "dgateUpB", "ddownA", "ddownB"};

    static Tensor[] list(MoeExperts.Grads g) {
        return new Tensor[] {g.x(), g.weights(), g.gateUp(), g.down(), g.gateUpA(), g.gateUpB(), g.downA(), g.downB()};
    }

    /** Asserts got ≈ ref within bound (relative Frobenius); prints op, shape, dtype, errors and bound either way. */
    static void check(Case c, String what, Tensor got, Tensor ref, double bound, long seed) {
        double[] a = got.toDoubleArray(), b = ref.toDoubleArray();
        double maxAbs = 0, maxRef = 0;
        for (int q = 0; q < b.length; q++) {
            maxAbs = Math.max(maxAbs, Math.abs(a[q] - b[q]));
            maxRef = Math.max(maxRef, Math.abs(b[q]));
            if (Double.isNaN(a[q])) maxAbs = Double.NaN;
        }
        double rel = b.length == 0 ? 0 : Gpu.relativeError(a, b);
        if (maxRef == 0) rel = maxAbs;                       // an all-zero reference (no routed slot): got must be zeros
        String line = String.format("moeExperts %s %s %s: rel %.3g max|err| %.3g (max|ref| %.3g) bound %.1g seed %d",
                c, what, Arrays.toString(ref.shape()), rel, maxAbs, maxRef, bound, seed);
        System.out.println(line);
        assertTrue(rel <= bound, line);
    }

    static void compare(Case c, long seed, boolean frozenBase) {
        Device gpu = BackendParity.gpu();
        compare(c, seed, frozenBase, Backend.of(gpu).kernels(MoeExperts.Kernels.class), "");
        if (c.in().x().dtype() == DType.BF16 && (long) c.in().tokens() * c.in().topK() <= CudaMoeExperts.DECODE_SLOTS) {
            // the mma kernel without the decode path; the decode path on tensor cores (16-row tiles)
            compare(c, seed, frozenBase, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.MMA, 0, CudaMoeExperts.DecodeKernel.SIMT), " [mma]");
            compare(c, seed, frozenBase, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.MMA,
                    CudaMoeExperts.DECODE_SLOTS, CudaMoeExperts.DecodeKernel.MMA16), " [mma16]");
        }
        if (c.in().x().dtype() == DType.BF16) {              // the wmma GEMMs and the SIMT GEMMs too
            compare(c, seed, frozenBase, new CudaMoeExperts((CudaBackend) Backend.of(gpu), true, CudaMoeExperts.TcKernel.WMMA, 0, CudaMoeExperts.DecodeKernel.SIMT), " [wmma]");
            compare(c, seed, frozenBase, new CudaMoeExperts((CudaBackend) Backend.of(gpu), false), " [simt]");
        }
    }

    static void compare(Case c0, long seed, boolean frozenBase, MoeExperts.Kernels cuda, String path) {
        Device gpu = BackendParity.gpu();
        Case c = new Case(c0.name() + path, c0.in());
        MoeExperts.Kernels cpu = new CpuMoeExperts(true);
        DType t = c.in().x().dtype();
        Generator g = new Generator(seed ^ 0x9E3779B97F4A7C15L);
        MoeExperts.Inputs in = c.in(), ig = on(gpu, in);
        Tensor dy = Tensor.randn(g, DType.F64, in.tokens(), in.hidden()).to(t), dyg = dy.to(gpu);

        Tensor out = Tensor.empty(Device.cpu(), t, in.tokens(), in.hidden()), outg = Tensor.empty(gpu, t, in.tokens(), in.hidden());
        cpu.forward(in, out);
        cuda.forward(ig, outg);
        check(c, "forward", outg, out, bound(t, false), seed);

        MoeExperts.Grads ref = grads(Device.cpu(), in, frozenBase), got = grads(gpu, ig, frozenBase);
        cpu.backward(in, dy, ref);
        cuda.backward(ig, dyg, got);
        Tensor[] r = list(ref), q = list(got);
        for (int j = 0; j < r.length; j++)
            if (r[j] != null) check(c, GRAD_NAMES[j] + (frozenBase ? " (frozen base)" : ""), q[j], r[j], bound(t, true), seed);
    }

    static final int H = 67, I = 45;   // odd: partial 64-wide tiles along every axis

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void forwardAndEveryGradientMatchTheCpuReference(DType t) {
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        List<Case> cases = List.of(
                random("one token", t, g, 1, H, I, 8, 8, Routing.DISTINCT, 0, DType.I64),
                random("31 tokens, every expert", t, g, 31, H, I, 8, 8, Routing.DISTINCT, 0, DType.I64),
                random("257 tokens", t, g, 257, H, I, 128, 8, Routing.DISTINCT, 0, DType.I64),
                random("31 tokens, most experts empty", t, g, 31, 130, 70, 128, 8, Routing.DISTINCT, 0, DType.I32),
                random("every slot on expert 5", t, g, 257, H, I, 8, 8, Routing.ONE_EXPERT, 0, DType.I64),
                random("ids -1 (one token wholly)", t, g, 31, H, I, 128, 8, Routing.SOME_NONE, 0, DType.I64),
                random("one token, LoRA", t, g, 1, H, I, 8, 8, Routing.DISTINCT, 4, DType.I64),
                random("LoRA, ids -1", t, g, 31, H, I, 128, 8, Routing.SOME_NONE, 4, DType.I32),
                // multiples of 8: the tensor-core GEMMs' 16-byte cp.async loads (the shapes above load element by
                // element); 257 rows per expert: 3 row tiles of 128 and 9 weight-gradient steps of 32 rows
                random("aligned, LoRA r=8", t, g, 257, 256, 136, 8, 8, Routing.DISTINCT, 8, DType.I64),
                // ≤ 512 slots, rows of multiples of 8: the decode kernel (16-byte loads); all on one expert: 8 row tiles
                // of 64, each 8 groups of 8 rows
                random("decode, LoRA r=8", t, g, 64, 256, 136, 128, 8, Routing.DISTINCT, 8, DType.I64),
                random("decode, every slot on expert 5", t, g, 64, 256, 136, 8, 8, Routing.ONE_EXPERT, 4, DType.I64),
                random("decode, one token", t, g, 1, 256, 136, 128, 8, Routing.DISTINCT, 0, DType.I32));
        for (Case c : cases) compare(c, seed, false);
        compare(random("QLoRA frozen base", t, g, 31, H, I, 8, 8, Routing.DISTINCT, 3, DType.I64), seed, true);
    }

    @Test
    void f64MatchesTheCpuReference() {
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        compare(random("f64", DType.F64, g, 31, H, I, 8, 8, Routing.SOME_NONE, 0, DType.I64), seed, false);
        compare(random("f64 LoRA", DType.F64, g, 31, H, I, 128, 8, Routing.DISTINCT, 2, DType.I64), seed, false);
    }

    @Test
    void noHostSyncAndBitIdenticalReruns() {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Case c = random("sync", DType.BF16, g, 257, 128, 96, 128, 8, Routing.SOME_NONE, 4, DType.I64);
        MoeExperts.Kernels cuda = Backend.of(gpu).kernels(MoeExperts.Kernels.class);
        MoeExperts.Inputs ig = on(gpu, c.in());
        Tensor dyg = Tensor.randn(g, DType.BF16, 257, 128).to(gpu);
        Tensor o1 = Tensor.empty(gpu, DType.BF16, 257, 128), o2 = Tensor.empty(gpu, DType.BF16, 257, 128);
        MoeExperts.Grads g1 = grads(gpu, ig, false), g2 = grads(gpu, ig, false);
        CudaBackend.of(gpu).synchronize();
        long before = CudaBackend.hostSyncs(gpu);
        cuda.forward(ig, o1);
        cuda.backward(ig, dyg, g1);
        cuda.forward(ig, o2);
        cuda.backward(ig, dyg, g2);
        assertEquals(before, CudaBackend.hostSyncs(gpu), "moeExperts on CUDA waited for the device (host sync) " + c + " seed " + seed);
        assertArrayEquals(o1.toDoubleArray(), o2.toDoubleArray(), "forward not bit-identical on rerun " + c + " seed " + seed);
        Tensor[] a = list(g1), b = list(g2);
        for (int j = 0; j < a.length; j++)
            assertArrayEquals(a[j].toDoubleArray(), b[j].toDoubleArray(), GRAD_NAMES[j] + " not bit-identical on rerun " + c + " seed " + seed);
    }

    @Test
    void anIdOutOfRangeIsRaisedAtTheNextSynchronisation() {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        Case c = random("bad id", DType.F32, g, 3, 16, 8, 8, 2, Routing.DISTINCT, 0, DType.I64);
        long[] ids = c.in().ids().toLongArray();
        ids[3] = 8;                                        // token 1, choice 1: expert 8 of 8
        MoeExperts.Inputs in = c.in(), ig = on(gpu, new MoeExperts.Inputs(in.x(), Tensor.of(ids, 3, 2), in.weights(), in.gateUp(), in.down(), null, null));
        Tensor out = Tensor.empty(gpu, DType.F32, 3, 16);
        Backend.of(gpu).kernels(MoeExperts.Kernels.class).forward(ig, out);
        var e = assertThrows(IllegalArgumentException.class, () -> CudaBackend.of(gpu).synchronize());
        System.out.println("moeExperts bad id: " + e.getMessage());
        assertTrue(e.getMessage().contains("moeExperts") && e.getMessage().contains("index 8"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void theOpOnCudaUsesTheKernelsAndDifferentiatesAsOnTheCpu(DType t) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        Case c = random("op", t, g, 31, H, I, 8, 4, Routing.DISTINCT, 0, DType.I64);
        MoeExperts.Inputs in = c.in();
        Tensor x = in.x().requiresGrad(true), xg = in.x().detach().to(gpu).requiresGrad(true);
        Tensor y = MoeExperts.moeExperts(x, in.ids(), in.weights(), in.gateUp(), in.down(), null, null);
        Tensor yg = MoeExperts.moeExperts(xg, in.ids().to(gpu), in.weights().to(gpu), in.gateUp().to(gpu), in.down().to(gpu), null, null);
        check(c, "op forward", yg, y, bound(t, false), seed);
        y.sum().backward();
        yg.sum().backward();
        check(c, "op dx", xg.grad(), x.grad(), bound(t, true), seed);
    }
}

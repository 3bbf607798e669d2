package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.cpu.CpuMoeExperts;
import dev.jomni.tensor.cpu.Parallel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** moeExperts: hand values, f64 finite differences for every input, the old per-expert composition, vector vs scalar. */
class MoeExpertsTest {

    /** One problem: sizes, routing and tensors (LoRA optional). */
    record Case(String name, Tensor x, Tensor ids, Tensor weights, Tensor gateUp, Tensor down, MoeExperts.Lora gu, MoeExperts.Lora dn) {
        Tensor run() { return MoeExperts.moeExperts(x, ids, weights, gateUp, down, gu, dn); }

        List<Tensor> differentiable() {
            List<Tensor> out = new ArrayList<>(List.of(x, weights, gateUp, down));
            if (gu != null) out.addAll(List.of(gu.a(), gu.b()));
            if (dn != null) out.addAll(List.of(dn.a(), dn.b()));
            return out;
        }

        @Override public String toString() {
            return name + " x" + Arrays.toString(x.shape()) + " ids" + Arrays.toString(ids.shape()) + " E=" + gateUp.size(0)
                    + " I=" + down.size(2) + (gu != null ? " loraGU r=" + gu.rank() : "") + (dn != null ? " loraDown r=" + dn.rank() : "");
        }
    }

    /** Random tensors of dtype; ids given, or top-k distinct experts per token drawn at random. */
    static Case random(String name, DType type, long seed, int n, int h, int i, int e, int k, long[] ids, int loraRank) {
        Generator g = new Generator(seed);
        if (ids == null) {
            ids = new long[n * k];
            for (int t = 0; t < n; t++) {
                List<Long> pool = new ArrayList<>();
                for (long x = 0; x < e; x++) pool.add(x);
                for (int j = 0; j < k; j++) ids[t * k + j] = pool.remove(g.nextInt(pool.size()));
            }
        }
        Tensor x = Tensor.randn(g, DType.F64, n, h).to(type).detach();
        Tensor w = Tensor.rand(g, DType.F64, n, k).add(0.1).to(type).detach();
        Tensor gateUp = Tensor.randn(g, DType.F64, e, 2 * i, h).mul(0.5).to(type).detach();
        Tensor down = Tensor.randn(g, DType.F64, e, h, i).mul(0.5).to(type).detach();
        MoeExperts.Lora gu = null, dn = null;
        if (loraRank > 0) {
            gu = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, loraRank, h).mul(0.5).to(type).detach(),
                    Tensor.randn(g, DType.F64, e, 2 * i, loraRank).mul(0.5).to(type).detach(), 1.5);
            dn = new MoeExperts.Lora(Tensor.randn(g, DType.F64, e, loraRank + 1, i).mul(0.5).to(type).detach(),
                    Tensor.randn(g, DType.F64, e, h, loraRank + 1).mul(0.5).to(type).detach(), 0.75);
        }
        return new Case(name, x, Tensor.of(ids, n, k), w, gateUp, down, gu, dn);
    }

    /**
     * The per-expert composition SparseMoe used before this op (Linear + Lora, silu, mul, index_add), on
     * views of the stacked weights: the forward the op must reproduce bit for bit.
     */
    static Tensor composed(Case c) {
        long[] chosen = c.ids().toLongArray();
        int n = c.x().size(0), h = c.x().size(1), k = c.ids().size(1), e = c.gateUp().size(0), i = c.down().size(2);
        Tensor weights = c.weights().reshape(-1);
        Tensor out = Tensor.zeros(c.x().device(), c.x().dtype(), n, h);
        for (int ex = 0; ex < e; ex++) {
            List<Long> tokens = new ArrayList<>(), slots = new ArrayList<>();
            for (int s = 0; s < chosen.length; s++)
                if (chosen[s] == ex) {
                    tokens.add((long) (s / k));
                    slots.add((long) s);
                }
            if (tokens.isEmpty()) continue;
            Tensor rows = index(tokens), slot = index(slots);
            Tensor xe = c.x().indexSelect(0, rows);
            Tensor wgu = c.gateUp().narrow(0, ex, 1).squeeze(0), wd = c.down().narrow(0, ex, 1).squeeze(0);
            Tensor gate = linear(xe, wgu.narrow(0, 0, i), c.gu(), ex, 0, i);
            Tensor up = linear(xe, wgu.narrow(0, i, i), c.gu(), ex, i, i);
            Tensor y = linear(gate.silu().mul(up), wd, c.dn(), ex, 0, h);
            out = out.indexAdd(0, rows, y.mul(weights.indexSelect(0, slot).unsqueeze(1)));
        }
        return out;
    }

    /** nn.Linear with its Lora: x·Wᵀ + ((x·Aᵀ)·Bᵀ)·s, B's rows [from, from + rows) of expert ex. */
    private static Tensor linear(Tensor x, Tensor w, MoeExperts.Lora l, int ex, int from, int rows) {
        Tensor y = x.matmul(w.mT());
        if (l == null) return y;
        Tensor a = l.a().narrow(0, ex, 1).squeeze(0), b = l.b().narrow(0, ex, 1).squeeze(0).narrow(0, from, rows);
        return y.add(x.matmul(a.mT()).matmul(b.mT()).mul(l.scaling()));
    }

    private static Tensor index(List<Long> v) {
        long[] a = new long[v.size()];
        for (int j = 0; j < a.length; j++) a[j] = v.get(j);
        return Tensor.of(a, a.length);
    }

    // ------------------------------------------------------------------------------------------ values

    @Test
    void handComputedValues() {
        // One token, H = 2, I = 1, two experts; token 0 picks expert 1 (w 0.5) and expert 0 (w 0.25).
        Tensor x = Tensor.of(new double[] {1, 2}, 1, 2);
        Tensor gateUp = Tensor.of(new double[] {1, 0, 0, 1,      // expert 0: gate = x0, up = x1
                                                0, 1, 1, 1}, 2, 2, 2);   // expert 1: gate = x1, up = x0 + x1
        Tensor down = Tensor.of(new double[] {1, 2, -1, 3}, 2, 2, 1);
        Tensor out = MoeExperts.moeExperts(x, Tensor.of(new long[] {1, 0}, 1, 2), Tensor.of(new double[] {0.5, 0.25}, 1, 2), gateUp, down, null, null);
        double h0 = silu(1) * 2, h1 = silu(2) * 3;
        assertArrayEquals(new double[] {0.5 * -h1 + 0.25 * h0, 0.5 * 3 * h1 + 0.25 * 2 * h0}, out.toDoubleArray(), 1e-15);
    }

    @Test
    void handComputedLoraAddsItsLowRankTerm() {
        Tensor x = Tensor.of(new double[] {1, 2}, 1, 2);
        Tensor gateUp = Tensor.of(new double[] {1, 0, 0, 1}, 1, 2, 2), down = Tensor.of(new double[] {1, 2}, 1, 2, 1);
        // gate_up LoRA r = 1: a = [1, 1] (x·aᵀ = 3), b = [2, 0]: gate += s·6, up unchanged. down LoRA: a = [1], b = [0, 1].
        var gu = new MoeExperts.Lora(Tensor.of(new double[] {1, 1}, 1, 1, 2), Tensor.of(new double[] {2, 0}, 1, 2, 1), 0.5);
        var dn = new MoeExperts.Lora(Tensor.of(new double[] {1}, 1, 1, 1), Tensor.of(new double[] {0, 1}, 1, 2, 1), 2);
        Tensor out = MoeExperts.moeExperts(x, Tensor.of(new long[] {0}, 1, 1), Tensor.of(new double[] {1}, 1, 1), gateUp, down, gu, dn);
        double h = silu(1 + 0.5 * 6) * 2;
        assertArrayEquals(new double[] {h, 2 * h + 2 * h}, out.toDoubleArray(), 1e-15);
    }

    @Test
    void aSlotRoutedToNoExpertAddsNothingAndGetsZeroGradient() {
        Case c = random("none", DType.F64, 3, 3, 4, 3, 3, 2, new long[] {0, -1, -1, -1, 2, 1}, 0);
        for (Tensor t : c.differentiable()) t.requiresGrad(true);
        Tensor out = c.run();
        assertArrayEquals(new double[4], out.narrow(0, 1, 1).toDoubleArray(), 0, "token 1 is routed nowhere");
        out.sum().backward();
        double[] dw = c.weights().grad().toDoubleArray();
        assertEquals(0, dw[1]);
        assertEquals(0, dw[2]);
        assertEquals(0, dw[3]);
        assertArrayEquals(new double[4], c.x().grad().narrow(0, 1, 1).toDoubleArray(), 0);
    }

    // ------------------------------------------------------------------------------------------ gradients

    @Test
    void gradientsOfEveryInputMatchFiniteDifferences() {
        List<Case> cases = List.of(
                random("odd sizes", DType.F64, 11, 7, 5, 3, 4, 2, null, 0),
                random("lora", DType.F64, 12, 6, 5, 3, 4, 2, null, 2),
                random("one expert gets all, others none", DType.F64, 13, 5, 3, 2, 4, 1, new long[] {2, 2, 2, 2, 2}, 1),
                random("decode, k = E", DType.F64, 14, 1, 4, 3, 3, 3, null, 2),
                random("slots to no expert", DType.F64, 15, 4, 3, 2, 3, 2, new long[] {0, -1, -1, -1, 2, 1, 1, 0}, 1));
        for (Case c : cases) gradCheck(c);
    }

    /** For L = Σ out·R and a random direction v per input: analytic Σ ∂L/∂in·v against the central difference. */
    private static void gradCheck(Case c) {
        Generator g = new Generator(c.name().hashCode());
        List<Tensor> inputs = c.differentiable();
        for (Tensor t : inputs) t.requiresGrad(true);
        Tensor r = Tensor.randn(g, DType.F64, c.x().shape());
        c.run().mul(r).sum().backward();
        for (int j = 0; j < inputs.size(); j++) {
            Tensor in = inputs.get(j);
            Tensor v = Tensor.randn(g, DType.F64, in.shape());
            double analytic = in.grad().mul(v).sum().item(), eps = 1e-6;
            double numeric = (project(c, j, v, eps, r) - project(c, j, v, -eps, r)) / (2 * eps);
            double err = Math.abs(analytic - numeric), tol = 1e-6 + 1e-6 * Math.abs(numeric);
            assertTrue(err <= tol, c + ": input " + j + " " + Arrays.toString(in.shape()) + ": analytic " + analytic + " vs numeric " + numeric);
        }
    }

    private static double project(Case c, int which, Tensor v, double eps, Tensor r) {
        try (var ng = Autograd.noGrad()) {
            Tensor[] t = c.differentiable().toArray(new Tensor[0]);
            t[which] = t[which].detach().add(v.mul(eps));
            var gu = c.gu() == null ? null : new MoeExperts.Lora(t[4], t[5], c.gu().scaling());
            var dn = c.dn() == null ? null : new MoeExperts.Lora(t[6], t[7], c.dn().scaling());
            return MoeExperts.moeExperts(t[0], c.ids(), t[1], t[2], t[3], gu, dn).mul(r).sum().item();
        }
    }

    @Test
    void frozenInputsGetNoGradientAndTheOthersAreUnchanged() {
        Case c = random("frozen", DType.F64, 21, 6, 5, 3, 4, 2, null, 2);
        for (Tensor t : c.differentiable()) t.requiresGrad(true);
        c.run().sum().backward();
        double[] dA = c.gu().a().grad().toDoubleArray(), dx = c.x().grad().toDoubleArray();
        Case frozen = random("frozen", DType.F64, 21, 6, 5, 3, 4, 2, null, 2);
        frozen.x().requiresGrad(true);
        frozen.gu().a().requiresGrad(true);                          // QLoRA-style: base weights, router weights frozen
        frozen.run().sum().backward();
        assertNull(frozen.gateUp().grad());
        assertNull(frozen.down().grad());
        assertNull(frozen.weights().grad());
        assertArrayEquals(dA, frozen.gu().a().grad().toDoubleArray(), 0);
        assertArrayEquals(dx, frozen.x().grad().toDoubleArray(), 0);
    }

    // ------------------------------------------------------------------------------------------ against the composition

    @Test
    void forwardMatchesThePerExpertComposition() {
        for (DType type : new DType[] {DType.F32, DType.BF16, DType.F16, DType.F64})
            for (int rank : new int[] {0, 3}) {
                Case c = random("composition " + type, type, 31 + rank, 37, 33, 19, 6, 3, null, rank);
                OpAsserts.assertWithinVectorPaths(c.toString(), composed(c), c.run());
            }
        Case skewed = random("all on one", DType.BF16, 35, 31, 16, 8, 5, 1, new long[31], 2);
        OpAsserts.assertWithinVectorPaths(skewed.toString(), composed(skewed), skewed.run());
    }

    /** f32 backward against the composition's autograd: the op sums in f32 without the composition's f32 roundings in between. */
    @Test
    void backwardMatchesTheCompositionWithinF32Rounding() {
        Case a = random("bwd", DType.F32, 41, 29, 24, 12, 5, 2, null, 2), b = random("bwd", DType.F32, 41, 29, 24, 12, 5, 2, null, 2);
        for (Tensor t : a.differentiable()) t.requiresGrad(true);
        for (Tensor t : b.differentiable()) t.requiresGrad(true);
        Tensor r = Tensor.randn(new Generator(1), DType.F32, 29, 24);
        a.run().mul(r).sum().backward();
        composed(b).mul(r).sum().backward();
        for (int j = 0; j < a.differentiable().size(); j++) {
            double[] got = a.differentiable().get(j).grad().toDoubleArray(), want = b.differentiable().get(j).grad().toDoubleArray();
            double err = 0, scale = 0;
            for (int q = 0; q < got.length; q++) {
                err = Math.max(err, Math.abs(got[q] - want[q]));
                scale = Math.max(scale, Math.abs(want[q]));
            }
            assertTrue(err <= 1e-5 * scale, a + ": input " + j + " max error " + err + " (largest " + scale + ")");
        }
    }

    // ------------------------------------------------------------------------------------------ NF4 experts

    /** NF4 experts are the dense op on their dequantized weights, forward and backward (x, weights, LoRA; no base grads). */
    @Test
    void nf4ExpertsAreTheDenseOpOnTheDequantizedWeights() {
        int n = 23, h = 64, i = 64, e = 5, k = 2;
        Case c = random("nf4", DType.BF16, 53, n, h, i, e, k, null, 2);
        Nf4Weight gu = Nf4Weight.quantize("gate_up_proj", c.gateUp().reshape(e * 2 * i, h));
        Nf4Weight dn = Nf4Weight.quantize("down_proj", c.down().reshape(e * h, i));
        Case dense = new Case("dequantized", c.x(), c.ids(), c.weights(), gu.dequantize().reshape(e, 2 * i, h),
                dn.dequantize().reshape(e, h, i), c.gu(), c.dn());
        List<Tensor> trained = List.of(c.x(), c.weights(), c.gu().a(), c.gu().b(), c.dn().a(), c.dn().b());
        for (Tensor t : trained) t.requiresGrad(true);
        Tensor r = Tensor.randn(new Generator(2), DType.F32, n, h).to(DType.BF16);
        Tensor got = MoeExperts.moeExperts(c.x(), c.ids(), c.weights(), gu, dn, e, c.gu(), c.dn());
        got.mul(r).sum().backward();
        List<double[]> nf4Grads = new ArrayList<>();
        for (Tensor t : trained) { nf4Grads.add(t.grad().toDoubleArray()); t.zeroGrad(); }
        Tensor want = dense.run();
        want.mul(r).sum().backward();
        assertArrayEquals(want.toDoubleArray(), got.toDoubleArray(), 0);
        for (int j = 0; j < trained.size(); j++) assertArrayEquals(trained.get(j).grad().toDoubleArray(), nf4Grads.get(j), 0, "input " + j);
        var wrong = assertThrows(IllegalArgumentException.class,
                () -> MoeExperts.moeExperts(c.x(), c.ids(), c.weights(), gu, dn, e + 1, null, null));
        assertTrue(wrong.getMessage().contains("E = 6"), wrong.getMessage());
    }

    // ------------------------------------------------------------------------------------------ vector vs scalar, threads

    @Test
    void vectorPathIsTheSameBitsAsTheScalarLoops() {
        var scalar = new CpuMoeExperts(false);
        var vector = new CpuMoeExperts(true);
        for (DType type : new DType[] {DType.F32, DType.BF16, DType.F64}) {
            Case c = random("vector " + type, type, 51, 41, 31, 17, 5, 2, null, 2);
            var in = new MoeExperts.Inputs(c.x(), c.ids(), c.weights(), c.gateUp(), c.down(), c.gu(), c.dn());
            Tensor o1 = Tensor.empty(type, 41, 31), o2 = Tensor.empty(type, 41, 31);
            scalar.forward(in, o1);
            vector.forward(in, o2);
            assertArrayEquals(o1.toDoubleArray(), o2.toDoubleArray(), 0, c + " forward");
            Tensor dy = Tensor.randn(new Generator(2), DType.F64, 41, 31).to(type);
            MoeExperts.Grads g1 = grads(c), g2 = grads(c);
            scalar.backward(in, dy, g1);
            vector.backward(in, dy, g2);
            List<Tensor> a = List.of(g1.x(), g1.weights(), g1.gateUp(), g1.down(), g1.gateUpA(), g1.gateUpB(), g1.downA(), g1.downB());
            List<Tensor> b = List.of(g2.x(), g2.weights(), g2.gateUp(), g2.down(), g2.gateUpA(), g2.gateUpB(), g2.downA(), g2.downB());
            for (int j = 0; j < a.size(); j++) assertArrayEquals(a.get(j).toDoubleArray(), b.get(j).toDoubleArray(), 0, c + " gradient " + j);
        }
    }

    private static MoeExperts.Grads grads(Case c) {
        return new MoeExperts.Grads(like(c.x()), like(c.weights()), like(c.gateUp()), like(c.down()),
                like(c.gu().a()), like(c.gu().b()), like(c.dn().a()), like(c.dn().b()));
    }

    private static Tensor like(Tensor t) { return Tensor.full(t.dtype(), 7, t.shape()); }   // not zero: the kernel must overwrite

    @Test
    void resultsDoNotDependOnTheThreadCount() {
        Case c = random("threads", DType.F32, 61, 300, 64, 48, 4, 2, null, 2);
        double[][] runs = new double[2][];
        for (int threads : new int[] {1, 3}) {
            double[][] out = new double[1][];
            Parallel.withThreads(threads, () -> {
                for (Tensor t : c.differentiable()) t.setGrad(null);
                for (Tensor t : c.differentiable()) t.requiresGrad(true);
                Tensor y = c.run();
                y.sum().backward();
                out[0] = concat(y.toDoubleArray(), c.gateUp().grad().toDoubleArray(), c.x().grad().toDoubleArray());
            });
            runs[threads == 1 ? 0 : 1] = out[0];
        }
        assertArrayEquals(runs[0], runs[1], 0);
    }

    private static double[] concat(double[]... parts) {
        return Arrays.stream(parts).flatMapToDouble(Arrays::stream).toArray();
    }

    @Test
    void oddSizesOneTokenAndManyTokens() {
        for (int[] s : new int[][] {{1, 1, 1, 1, 1}, {1, 31, 5, 3, 2}, {4097, 3, 2, 7, 2}}) {
            Case c = random("size", DType.F32, 71, s[0], s[1], s[2], s[3], s[4], null, 1);
            OpAsserts.assertWithinVectorPaths(c.toString(), composed(c), c.run());
        }
    }

    // ------------------------------------------------------------------------------------------ errors

    @Test
    void wrongShapesAndIdsAreNamed() {
        Case c = random("errors", DType.F32, 81, 3, 4, 2, 3, 2, null, 0);
        var e = assertThrows(IllegalArgumentException.class,
                () -> MoeExperts.moeExperts(c.x(), c.ids(), c.weights(), c.gateUp(), c.down().narrow(2, 0, 1), null, null));
        assertEquals("moeExperts: gateUp [3, 4, 4] and down [3, 4, 1] do not fit [E, 2I, H] and [E, H, I] for x [3, 4] (H = 4)", e.getMessage());
        var bad = assertThrows(IllegalArgumentException.class,
                () -> MoeExperts.moeExperts(c.x(), Tensor.of(new long[] {0, 1, 2, 3, 1, 0}, 3, 2), c.weights(), c.gateUp(), c.down(), null, null));
        assertEquals("moeExperts: ids[1, 1] = 3 is out of range for 3 experts (−1: no expert)", bad.getMessage());
        var dtype = assertThrows(IllegalArgumentException.class,
                () -> MoeExperts.moeExperts(c.x(), c.ids(), c.weights().to(DType.F64), c.gateUp(), c.down(), null, null));
        assertTrue(dtype.getMessage().startsWith("moeExperts: weights is f64 [3, 2], x is f32"), dtype.getMessage());
    }

    private static double silu(double v) { return v / (1 + Math.exp(-v)); }
}

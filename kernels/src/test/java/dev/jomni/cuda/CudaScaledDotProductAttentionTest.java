package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import dev.jomni.tensor.spi.Backend;
import java.util.Arrays;
import java.util.Locale;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * attention.cu against CpuScaledDotProductAttention on fresh random inputs: out, lse, dq, dk, dv; decode
 * (T = 1 after a long cache), odd lengths (31, 257, S not a multiple of the tile), GQA 32/4 and MQA,
 * causal, key padding with fully masked rows, segments (with and without causal), q and out as
 * transposed views of [B, T, nh, d], k and v as the first S rows of a larger cache, outputs poisoned
 * with NaN before each run. bf16 and f16 forwards with d 64 and 128 take the tensor-core kernels
 * (sdpa_fwd_tc_*) and backward (sdpa_bwd_tc_{dq,dkv}_*), the rest the SIMT ones; each case prints which,
 * and the tensor-core forward is also compared with the SIMT one on the same inputs. Every comparison prints op, shape, dtype, error and bound.
 */
@Tag("gpu")
class CudaScaledDotProductAttentionTest {
    /** max |got − ref| / max |ref| bound for outputs of this dtype (bf16: 8 mantissa bits; f32: f32 sums against double). */
    static double bound(DType t) {
        return switch (t) {
            case F64 -> 1e-10;
            case F32 -> 1e-4;
            case F16 -> 5e-3;
            default -> 2e-2;
        };
    }

    /** Absolute bound on the log-sum-exp (computed in f32 from the same inputs: only the order of sums differs). */
    static double lseBound(DType t) {
        return t == DType.F64 ? 1e-10 : 1e-4;
    }

    enum Mask { NONE, CAUSAL, CAUSAL_PADDED, PADDED, SEGMENTS, CAUSAL_SEGMENTS }

    /** One problem: shapes and the mask kind (past only for causal; segment lengths for the segment masks). */
    record Case(String name, int b, int nh, int nkv, int t, int s, int d, Mask mask, int past, int... segments) {
        @Override public String toString() {
            return String.format(Locale.ROOT, "%s B%d nh%d nkv%d T%d S%d d%d %s%s", name, b, nh, nkv, t, s, d, mask,
                    past > 0 ? " past " + past : "") + (segments.length > 0 ? " segments " + Arrays.toString(segments) : "");
        }
    }

    static final Case[] CASES = {
        new Case("decode", 2, 32, 4, 1, 300, 128, Mask.CAUSAL, 299),
        new Case("decode padded", 2, 8, 1, 1, 77, 64, Mask.CAUSAL_PADDED, 76),
        new Case("prefill after cache", 2, 32, 4, 31, 71, 128, Mask.CAUSAL, 40),
        new Case("causal padded MQA", 2, 8, 1, 257, 257, 64, Mask.CAUSAL_PADDED, 0),
        new Case("bidirectional padded", 1, 32, 4, 257, 300, 128, Mask.PADDED, 0),
        new Case("bidirectional", 1, 4, 4, 31, 129, 128, Mask.NONE, 0),
        new Case("segments", 2, 4, 2, 257, 257, 64, Mask.SEGMENTS, 0, 100, 57, 64, 36),
        new Case("causal segments", 1, 6, 3, 257, 257, 128, Mask.CAUSAL_SEGMENTS, 0, 1, 130, 126),
        new Case("odd head dim", 1, 2, 1, 33, 45, 80, Mask.CAUSAL, 12),
        new Case("head dim 256", 1, 2, 2, 70, 70, 256, Mask.CAUSAL, 0),
        new Case("flash causal GQA", 1, 8, 2, 1000, 1000, 128, Mask.CAUSAL, 0),
        new Case("flash prefill after cache", 1, 8, 1, 100, 227, 64, Mask.CAUSAL, 127),
        new Case("flash padded", 2, 4, 4, 200, 333, 64, Mask.PADDED, 0),
        new Case("flash causal padded", 2, 8, 2, 130, 130, 128, Mask.CAUSAL_PADDED, 0),
    };

    /** Left padding of {@code pad} keys in batch row b ≥ 1 (row 0 unpadded): causal queries i < pad − past see nothing. */
    static Tensor keyMask(int b, int s, int pad) {
        boolean[] m = new boolean[b * s];
        for (int x = 0; x < b; x++) for (int j = 0; j < s; j++) m[x * s + j] = x == 0 || j >= pad;
        return Tensor.of(m, b, s);
    }

    static AttentionMask mask(Case c, Device device) {
        return switch (c.mask) {
            case NONE -> AttentionMask.none();
            case CAUSAL -> AttentionMask.causal(c.past);
            case CAUSAL_PADDED -> new AttentionMask(true, c.past, keyMask(c.b, c.s, c.past + 5).to(device), null);   // batch 1's first 5 queries see no key
            case PADDED -> new AttentionMask(false, 0, rightPadding(c.b, c.s, 37).to(device), null);
            case SEGMENTS -> AttentionMask.blockDiagonal(c.segments);
            case CAUSAL_SEGMENTS -> new AttentionMask(true, 0, null, AttentionMask.blockDiagonal(c.segments).segmentOffsets());
        };
    }

    /** The last {@code pad} keys of every batch row are padding. */
    static Tensor rightPadding(int b, int s, int pad) {
        boolean[] m = new boolean[b * s];
        for (int x = 0; x < b; x++) for (int j = 0; j < s - pad; j++) m[x * s + j] = true;
        return Tensor.of(m, b, s);
    }

    static double relErr(Tensor got, Tensor ref) {
        double[] a = got.toDoubleArray(), w = ref.toDoubleArray();
        double num = 0, den = 0;
        for (int x = 0; x < w.length; x++) {
            double e = Math.abs(a[x] - w[x]);
            num = Double.isNaN(e) ? Double.NaN : Math.max(num, e);      // NaN (an unwritten output) fails every bound
            den = Math.max(den, Math.abs(w[x]));
        }
        return den == 0 ? num : num / den;
    }

    /** Max |got − ref| over finite ref entries; +∞ entries must be +∞ on both sides (NaN otherwise). */
    static double lseErr(Tensor got, Tensor ref) {
        double[] a = got.toDoubleArray(), w = ref.toDoubleArray();
        double e = 0;
        for (int x = 0; x < w.length; x++) {
            if (w[x] == Double.POSITIVE_INFINITY) {
                if (a[x] != Double.POSITIVE_INFINITY) return Double.NaN;
            } else {
                double d = Math.abs(a[x] - w[x]);
                e = Double.isNaN(d) ? Double.NaN : Math.max(e, d);
            }
        }
        return e;
    }

    static void check(String what, Case c, DType t, double err, double bound) {
        String line = String.format(Locale.ROOT, "scaledDotProductAttention %-4s %s %s: max error %.3e, bound %.1e", what, c, t.lower(), err, bound);
        System.out.println(line);
        assertTrue(err <= bound, line);       // NaN fails
    }

    /** Random [B, heads, rows, d] CPU inputs and their views: base tensors laid out [B, rows, heads, d] (transposed) or as a cache [B, heads, cap, d]. */
    record Views(Tensor cpu, Tensor gpu) {
        static Views transposed(Generator g, DType t, Device gpu, int b, int heads, int rows, int d) {
            Tensor base = Tensor.randn(g, t, b, rows, heads, d);
            return new Views(base.permute(0, 2, 1, 3), base.to(gpu).permute(0, 2, 1, 3));
        }

        static Views cachePrefix(Generator g, DType t, Device gpu, int b, int heads, int rows, int d) {
            Tensor base = Tensor.randn(g, t, b, heads, rows + 9, d);
            return new Views(base.narrow(2, 0, rows), base.to(gpu).narrow(2, 0, rows));
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void forwardAndGradientsMatchTheCpuReference(DType t) {
        for (Case c : CASES) run(c, t);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F16", "F64"})
    void otherDtypes(DType t) {
        run(CASES[3], t);
        run(CASES[6], t);
        run(CASES[8], t);
    }

    /**
     * The tensor-core kernels (forward and backward) over a grid: T 1, 17, 128, 1000 (and 4096 for two cases),
     * causal and not, GQA groups 1, 4, 8, head dims 64 and 128; packed uneven batches (segments) and padding
     * are in CASES. bf16 and f16 inputs.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void tensorCoreGrid(DType t) {
        for (int d : new int[] {64, 128})
            for (int tt : new int[] {1, 17, 128, 1000})
                for (boolean causal : new boolean[] {false, true})
                    for (int group : new int[] {1, 4, 8}) {
                        int nkv = tt >= 1000 ? 1 : 2;
                        run(new Case("grid", 1, nkv * group, nkv, tt, tt, d, causal ? Mask.CAUSAL : Mask.NONE, 0), t);
                    }
        if (t == DType.BF16) {
            run(new Case("grid", 1, 4, 1, 4096, 4096, 128, Mask.CAUSAL, 0), t);
            run(new Case("grid", 1, 8, 1, 4096, 4096, 64, Mask.NONE, 0), t);
        }
    }

    /**
     * The other tilings of the tensor-core kernels (-Djomni.attention.variant, read at each call) on a few cases,
     * and GQA dK/dV without splitting the group over blocks (the split is taken whenever blocks are few, as here).
     */
    @Test
    void otherTensorCoreTilings() {
        String before = System.getProperty("jomni.attention.variant");
        try {
            for (String variant : new String[] {"q64", "f64", "dkv32", "nosplit", "mma", "q128+mma+nosplit"}) {
                System.setProperty("jomni.attention.variant", variant);
                System.out.println("scaledDotProductAttention variant " + variant);
                for (int x : new int[] {2, 3, 6, 7, 10, 12, 13}) run(CASES[x], DType.BF16);
            }
        } finally {
            if (before == null) System.clearProperty("jomni.attention.variant");
            else System.setProperty("jomni.attention.variant", before);
        }
    }

    static void run(Case c, DType t) {
        Device gpu = BackendParity.gpu();
        ScaledDotProductAttention.Kernels cuda = Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        ScaledDotProductAttention.Kernels cpu = Backend.of(Device.cpu()).kernels(ScaledDotProductAttention.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        DType stat = t.atLeastF32();
        double scale = 1 / Math.sqrt(c.d);
        Views q = Views.transposed(g, t, gpu, c.b, c.nh, c.t, c.d), dOut = Views.transposed(g, t, gpu, c.b, c.nh, c.t, c.d);
        Views k = Views.cachePrefix(g, t, gpu, c.b, c.nkv, c.s, c.d), v = Views.cachePrefix(g, t, gpu, c.b, c.nkv, c.s, c.d);
        AttentionMask mc = mask(c, Device.cpu()), mg = mask(c, gpu);
        Case at = c;
        String seeded = " seed " + seed;

        // forward
        Tensor out = Tensor.empty(Device.cpu(), t, c.b, c.t, c.nh, c.d).permute(0, 2, 1, 3), lse = Tensor.empty(Device.cpu(), stat, c.b, c.nh, c.t);
        cpu.forward(q.cpu, k.cpu, v.cpu, mc, scale, out, lse);
        Tensor outG = Tensor.full(gpu, t, Double.NaN, c.b, c.t, c.nh, c.d).permute(0, 2, 1, 3), lseG = Tensor.full(gpu, stat, Double.NaN, c.b, c.nh, c.t);
        String tc = ((CudaScaledDotProductAttention) cuda).tensorCoreSuffix(q.gpu, k.gpu, v.gpu, outG);
        System.out.println("scaledDotProductAttention " + c + " " + t.lower() + seeded + ", forward on " + (tc == null ? "SIMT" : "tensor cores sdpa_fwd_tc_" + tc));
        long syncs = CudaBackend.hostSyncs(gpu);
        cuda.forward(q.gpu, k.gpu, v.gpu, mg, scale, outG, lseG);
        assertEquals(syncs, CudaBackend.hostSyncs(gpu), "forward waited for the device");
        check("out", at, t, relErr(outG, out), bound(t));
        check("lse", at, t, lseErr(lseG, lse), lseBound(t));
        if (tc != null) {   // the SIMT forward on the same inputs: both round P against the same block maxima
            Tensor outS = Tensor.full(gpu, t, Double.NaN, c.b, c.t, c.nh, c.d).permute(0, 2, 1, 3), lseS = Tensor.full(gpu, stat, Double.NaN, c.b, c.nh, c.t);
            new CudaScaledDotProductAttention((CudaBackend) Backend.of(gpu), false).forward(q.gpu, k.gpu, v.gpu, mg, scale, outS, lseS);
            check("out vs SIMT", at, t, relErr(outG, outS), bound(t));
            check("lse vs SIMT", at, t, lseErr(lseG, lseS), lseBound(t));
        }

        // backward, both from the reference's out and lse (so only the backward kernels are compared)
        Tensor dq = Tensor.empty(Device.cpu(), t, c.b, c.nh, c.t, c.d), dk = Tensor.empty(Device.cpu(), t, c.b, c.nkv, c.s, c.d);
        Tensor dv = Tensor.empty(Device.cpu(), t, c.b, c.nkv, c.s, c.d);
        cpu.backward(q.cpu, k.cpu, v.cpu, out, lse, dOut.cpu, mc, scale, dq, dk, dv);
        Tensor outRef = out.contiguous().to(gpu), lseRef = lse.to(gpu);   // out as a [B, nh, T, d] contiguous tensor this time
        Tensor dqG = Tensor.full(gpu, t, Double.NaN, c.b, c.nh, c.t, c.d), dkG = Tensor.full(gpu, t, Double.NaN, c.b, c.nkv, c.s, c.d);
        Tensor dvG = Tensor.full(gpu, t, Double.NaN, c.b, c.nkv, c.s, c.d);
        String tcb = ((CudaScaledDotProductAttention) cuda).tensorCoreBackwardSuffix(q.gpu, k.gpu, v.gpu, dOut.gpu, dqG, dkG, dvG);
        System.out.println("scaledDotProductAttention " + c + " " + t.lower() + seeded + ", backward on "
                + (tcb == null ? "SIMT" : "tensor cores sdpa_bwd_tc_{dq,dkv}_" + tcb));
        assertEquals(tc != null, tcb != null, "the backward takes tensor cores exactly when the forward does (q, k, v, dOut alike)");
        syncs = CudaBackend.hostSyncs(gpu);
        cuda.backward(q.gpu, k.gpu, v.gpu, outRef, lseRef, dOut.gpu, mg, scale, dqG, dkG, dvG);
        assertEquals(syncs, CudaBackend.hostSyncs(gpu), "backward waited for the device");
        check("dq", at, t, relErr(dqG, dq), bound(t));
        check("dk", at, t, relErr(dkG, dk), bound(t));
        check("dv", at, t, relErr(dvG, dv), bound(t));

        // only dv wanted: dq and dk are skipped, dv is the same
        Tensor dvOnly = Tensor.full(gpu, t, Double.NaN, c.b, c.nkv, c.s, c.d);
        cuda.backward(q.gpu, k.gpu, v.gpu, outRef, lseRef, dOut.gpu, mg, scale, null, null, dvOnly);
        check("dv alone", at, t, relErr(dvOnly, dv), bound(t));
        assertTrue(Arrays.equals(dvOnly.toDoubleArray(), dvG.toDoubleArray()), at + " " + t + ": dv alone differs from dv with dq, dk" + seeded);
    }

    @Test
    void fullyMaskedRowsAreZeroWithInfiniteLseAndNoGradient() {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        Case c = CASES[3];
        ScaledDotProductAttention.Kernels cuda = Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        Tensor q = Tensor.randn(g, DType.F32, c.b, c.nh, c.t, c.d).to(gpu), k = Tensor.randn(g, DType.F32, c.b, c.nkv, c.s, c.d).to(gpu);
        Tensor v = Tensor.randn(g, DType.F32, c.b, c.nkv, c.s, c.d).to(gpu);
        Tensor out = Tensor.full(gpu, DType.F32, Double.NaN, c.b, c.nh, c.t, c.d), lse = Tensor.full(gpu, DType.F32, Double.NaN, c.b, c.nh, c.t);
        cuda.forward(q, k, v, mask(c, gpu), 0.125, out, lse);
        double[] o = out.toDoubleArray(), l = lse.toDoubleArray();
        for (int h = 0; h < c.nh; h++)
            for (int i = 0; i < c.t; i++) {
                int row = (c.nh + h) * c.t + i;   // batch row 1: keys 0..4 are padding, so queries 0..4 see none
                assertEquals(i < 5, l[row] == Double.POSITIVE_INFINITY, "head " + h + " query " + i + " lse " + l[row]);
                if (i < 5) for (int x = 0; x < c.d; x++) assertEquals(0.0, o[row * c.d + x], "head " + h + " query " + i);
            }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F32"})
    void theOpOnCudaDifferentiatesAsOnTheCpu(DType t) {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        int b = 2, nh = 8, nkv = 2, tt = 45, d = 64;
        Tensor q = Tensor.randn(g, t, b, tt, nh, d), k = Tensor.randn(g, t, b, nkv, tt, d), v = Tensor.randn(g, t, b, nkv, tt, d);
        Tensor r = Tensor.randn(g, t, b, nh, tt, d);
        AttentionMask mask = AttentionMask.causal(0).withKeyMask(keyMask(b, tt, 3));
        Tensor[] cpu = {q.detach().requiresGrad(true), k.detach().requiresGrad(true), v.detach().requiresGrad(true)};
        Tensor[] cuda = {q.to(gpu).detach().requiresGrad(true), k.to(gpu).detach().requiresGrad(true), v.to(gpu).detach().requiresGrad(true)};
        Tensor oc = cpu[0].permute(0, 2, 1, 3).scaledDotProductAttention(cpu[1], cpu[2], mask);
        Tensor og = cuda[0].permute(0, 2, 1, 3).scaledDotProductAttention(cuda[1], cuda[2], new AttentionMask(true, 0, mask.keyMask().to(gpu), null));
        Case at = new Case("op", b, nh, nkv, tt, tt, d, Mask.CAUSAL_PADDED, 0);
        check("out", at, t, relErr(og, oc), bound(t));
        oc.mul(r).sum().backward();
        og.mul(r.to(gpu)).sum().backward();
        String[] names = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) check(names[i], at, t, relErr(cuda[i].grad(), cpu[i].grad()), 2 * bound(t));
    }

    /** Rows not 16-byte aligned (k, v with row stride d + 1) cannot take cp.async: the SIMT forward runs, and agrees. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void unalignedRowsFallBackToSimt(DType t) {
        Device gpu = BackendParity.gpu();
        Generator g = new Generator(Gpu.seed());
        CudaScaledDotProductAttention cuda = (CudaScaledDotProductAttention) Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        ScaledDotProductAttention.Kernels cpu = Backend.of(Device.cpu()).kernels(ScaledDotProductAttention.Kernels.class);
        int b = 1, nh = 4, nkv = 2, tt = 77, s = 90, d = 128;
        Tensor q = Tensor.randn(g, t, b, nh, tt, d), kb = Tensor.randn(g, t, b, nkv, s, d + 1), vb = Tensor.randn(g, t, b, nkv, s, d + 1);
        Tensor k = kb.narrow(3, 1, d), v = vb.narrow(3, 0, d);
        Tensor qg = q.to(gpu), kg = kb.to(gpu).narrow(3, 1, d), vg = vb.to(gpu).narrow(3, 0, d);
        Tensor out = Tensor.empty(Device.cpu(), t, b, nh, tt, d), lse = Tensor.empty(Device.cpu(), DType.F32, b, nh, tt);
        cpu.forward(q, k, v, AttentionMask.causal(13), 0.1, out, lse);
        Tensor outG = Tensor.full(gpu, t, Double.NaN, b, nh, tt, d), lseG = Tensor.full(gpu, DType.F32, Double.NaN, b, nh, tt);
        assertEquals(null, cuda.tensorCoreSuffix(qg, kg, vg, outG), "k, v rows of stride " + (d + 1) + " are not 16-byte aligned");
        cuda.forward(qg, kg, vg, AttentionMask.causal(13), 0.1, outG, lseG);
        Case at = new Case("unaligned k, v (SIMT)", b, nh, nkv, tt, s, d, Mask.CAUSAL, 13);
        check("out", at, t, relErr(outG, out), bound(t));
        check("lse", at, t, lseErr(lseG, lse), lseBound(t));
    }

    /**
     * Paged decode (sdpa_decode_*) against the CPU reference: shuffled block tables, lengths 0, 1, across chunks of
     * 256 and up to 32k, GQA groups 1, 3, 4, 8 and 16, head dims 64 and 128, block sizes 16 and 64, bf16 and f16;
     * out and lse poisoned with NaN.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16"})
    void pagedDecodeMatchesTheCpuReference(DType t) {
        Device gpu = BackendParity.gpu();
        ScaledDotProductAttention.Kernels cuda = Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        ScaledDotProductAttention.Kernels cpu = Backend.of(Device.cpu()).kernels(ScaledDotProductAttention.Kernels.class);
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        int[][] shapes = {{32, 4, 128, 16}, {8, 8, 64, 64}, {8, 2, 128, 64}, {16, 1, 64, 16}, {6, 2, 128, 16}};   // nh, nkv, d, blockSize
        int[][] lens = {{1, 0, 257, 1000}, {32768}, {255, 256, 513}};
        for (int[] sh : shapes)
            for (int[] ln : lens) {
                int nh = sh[0], nkv = sh[1], d = sh[2], bs = sh[3], b = ln.length, maxBlocks = 0;
                for (int n : ln) maxBlocks = Math.max(maxBlocks, (n + bs - 1) / bs);
                maxBlocks += 1;
                int blocks = b * maxBlocks + 3;
                java.util.List<Integer> order = new java.util.ArrayList<>();
                for (int x = 0; x < blocks; x++) order.add(x);
                java.util.Collections.shuffle(order, new java.util.Random(seed));
                int[] table = new int[b * maxBlocks];
                for (int x = 0; x < table.length; x++) table[x] = order.get(x);
                Tensor q = Tensor.randn(g, t, b, nh, 1, d), k = Tensor.randn(g, t, blocks, nkv, bs, d), v = Tensor.randn(g, t, blocks, nkv, bs, d);
                Tensor tab = Tensor.of(table, b, maxBlocks), len = Tensor.of(ln, b);
                Tensor out = Tensor.empty(Device.cpu(), t, b, nh, 1, d), lse = Tensor.empty(Device.cpu(), DType.F32, b, nh, 1);
                cpu.decode(q, k, v, tab, len, 1 / Math.sqrt(d), out, lse);
                Tensor outG = Tensor.full(gpu, t, Double.NaN, b, nh, 1, d), lseG = Tensor.full(gpu, DType.F32, Double.NaN, b, nh, 1);
                Tensor qG = q.to(gpu), kG = k.to(gpu), vG = v.to(gpu), tabG = tab.to(gpu), lenG = len.to(gpu);
                long syncs = CudaBackend.hostSyncs(gpu);
                cuda.decode(qG, kG, vG, tabG, lenG, 1 / Math.sqrt(d), outG, lseG);
                assertEquals(syncs, CudaBackend.hostSyncs(gpu), "decode waited for the device");
                Case at = new Case("decode bs " + bs + " lens " + Arrays.toString(ln) + " seed " + seed, b, nh, nkv, 1, ln[ln.length - 1], d, Mask.NONE, 0);
                check("out", at, t, relErr(outG, out), bound(t));
                check("lse", at, t, lseErr(lseG, lse), lseBound(t));
            }
    }

    @Test
    void headDimAbove256IsRefusedByName() {
        Device gpu = BackendParity.gpu();
        Tensor q = Tensor.zeros(gpu, DType.BF16, 1, 1, 2, 288), k = Tensor.zeros(gpu, DType.BF16, 1, 1, 2, 288);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> q.scaledDotProductAttention(k, k, null));
        assertTrue(e.getMessage().contains("head_dim d=288"), e.getMessage());
    }
}

package dev.jomni.train;

import dev.jomni.nn.io.StoredDType;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW with both moments stored in 8 bits, as bitsandbytes' {@code AdamW8bit} / {@code PagedAdamW8bit}
 * (Dettmers et al., arXiv:2110.02861) with {@code block_wise=True}, which HF's {@code adamw_8bit} and
 * {@code paged_adamw_8bit} select. Read from bitsandbytes 0.47's {@code kOptimizerStatic8bit2StateBlockwise}
 * ({@code csrc/kernels.cu}) and {@code create_dynamic_map} ({@code functional.py}); what matches it:
 * <ul>
 * <li>Blocks of {@value #BLOCK} consecutive elements; per block one f32 absmax per moment. The first moment m is
 *     coded with the signed dynamic map, the second v with the unsigned one ({@link #dynamicMap}).
 * <li>Per element, in this order: dequantize m = code₁[c₁]·absmax₁, v = code₂[c₂]·absmax₂; v ← β₂v + (1−β₂)g²,
 *     m ← β₁m + (1−β₁)g; the block's new absmax is max|m|, max|v|; the parameter moves with the unquantized new
 *     moments, p ← p − lr·(√(1−β₂ᵗ)/(1−β₁ᵗ))·m/(√v + ε·√(1−β₂ᵗ)), then p ← p·(1 − lr·λ) when λ &gt; 0 (decay after
 *     the update, as the kernel does; torch's AdamW decays first: a difference of order lr²·λ); then m/absmax₁ and
 *     v/absmax₂ are re-coded to the nearest code value (ties to the lower one; the kernel's binary search
 *     breaks ties either way), and a first moment whose code has the wrong sign moves one code towards its sign.
 * <li>A non-finite gradient element zeroes both moments of that element and leaves its parameter (the kernel does).
 * <li>Parameters with fewer than {@value #MIN_8BIT_SIZE} elements keep f32 moments ({@code min_8bit_size}),
 *     updated with the same arithmetic as the 32-bit kernel.
 * </ul>
 * Differences: f32 arithmetic in Java is IEEE-exact where the kernel uses {@code __fdividef}/{@code __powf}; an
 * all-zero block (absmax 0) codes its elements as 0 where the kernel divides 0 by 0 (the dequantized value is
 * 0 either way).
 *
 * <p><b>Paged.</b> With {@code paged} the quantized state lives in a memory-mapped temporary file (deleted on
 * close), so the OS can page it out under memory pressure; otherwise in off-heap memory. bitsandbytes' paging
 * (CUDA unified memory evicted to the host and fetched per step) is GPU-only and is not done here: on the CPU
 * there is nothing to move, and {@link #bytesPagedPerStep()} is 0.
 */
public final class AdamW8bit implements Optimizer {
    public static final int BLOCK = 256, MIN_8BIT_SIZE = 4096;
    static final float[] SIGNED = dynamicMap(true), UNSIGNED = dynamicMap(false);
    private static final int SIGNED_ZERO = indexOfZero(SIGNED), UNSIGNED_ZERO = indexOfZero(UNSIGNED);

    private final List<Tensor> params;
    private final boolean paged;
    private final MemorySegment[] state1, state2, absmax1, absmax2;   // absmax null: f32 state (small tensor)
    private final Arena arena = Arena.ofShared();
    private final long totalBytes;
    private AdamW.Config config;
    private long step;

    public AdamW8bit(List<Tensor> params, AdamW.Config config, boolean paged) {
        this.params = List.copyOf(params);
        this.config = config;
        this.paged = paged;
        int k = params.size();
        state1 = new MemorySegment[k];
        state2 = new MemorySegment[k];
        absmax1 = new MemorySegment[k];
        absmax2 = new MemorySegment[k];
        long total = 0;
        for (Tensor p : params) total += bytesFor(p.numel());
        totalBytes = total;
        MemorySegment all = allocate(Math.max(total, 8));
        long at = 0;
        for (int i = 0; i < k; i++) {
            long n = params.get(i).numel();
            if (n < MIN_8BIT_SIZE) {
                state1[i] = all.asSlice(at, n * 4);
                state2[i] = all.asSlice(at + n * 4, n * 4);
                at += 8 * n;
            } else {
                long blocks = blocks(n);
                absmax1[i] = all.asSlice(at, blocks * 4);
                absmax2[i] = all.asSlice(at + blocks * 4, blocks * 4);
                at += 8 * blocks;
                state1[i] = all.asSlice(at, n);
                state2[i] = all.asSlice(at + n, n);
                at += 2 * n;
                state1[i].fill((byte) SIGNED_ZERO);
                state2[i].fill((byte) UNSIGNED_ZERO);
            }
        }
    }

    private MemorySegment allocate(long bytes) {
        if (!paged) return arena.allocate(bytes, 16);          // zeroed
        try {
            Path file = Files.createTempFile("jomni-paged-adamw-", ".state");
            try (var ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE, StandardOpenOption.DELETE_ON_CLOSE)) {
                // The mapping outlives the channel; the file's name is gone once the channel closes.
                return ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes, arena);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("paged_adamw_8bit: cannot map a temporary state file", e);
        }
    }

    static long blocks(long n) { return (n + BLOCK - 1) / BLOCK; }

    static long bytesFor(long n) { return n < MIN_8BIT_SIZE ? 8 * n : 2 * n + 8 * blocks(n); }

    @Override public String name() { return paged ? "paged_adamw_8bit" : "adamw_8bit"; }

    @Override
    public void learningRate(double lr) {
        config = new AdamW.Config(lr, config.beta1(), config.beta2(), config.eps(), config.weightDecay());
    }

    @Override public long steps() { return step; }

    @Override public long stateBytes() { return totalBytes; }

    /** Bytes moved between host and device per step for paging: none on the CPU (paging is GPU-only). */
    public long bytesPagedPerStep() { return 0; }

    @Override
    public void step() {
        step++;
        float b1 = (float) config.beta1(), b2 = (float) config.beta2(), eps = (float) config.eps();
        float lr = (float) config.lr(), wd = (float) config.weightDecay();
        float correction1 = 1f - (float) Math.pow(b1, step);
        float correction2 = (float) Math.sqrt(1f - (float) Math.pow(b2, step));
        float stepSize = -lr * correction2 / correction1;
        try (var g = Autograd.noGrad()) {
            for (int i = 0; i < params.size(); i++) {
                Tensor p = params.get(i), grad = p.grad();
                if (grad == null) continue;
                float[] gv = grad.toFloatArray(), pv = p.toFloatArray();
                if (absmax1[i] == null) update32(gv, pv, state1[i], state2[i], b1, b2, eps, lr, wd, stepSize, correction2);
                else update8(gv, pv, i, b1, b2, eps, lr, wd, stepSize, correction2);
                Tensor np = Tensor.of(pv, p.shape());
                p.assign(p.dtype() == DType.F32 ? np : np.to(p.dtype()));
                np.close();
            }
        }
    }

    private static void update32(float[] g, float[] p, MemorySegment m, MemorySegment v, float b1, float b2, float eps, float lr,
                                 float wd, float stepSize, float correction2) {
        for (int j = 0; j < g.length; j++) {
            float s1 = m.getAtIndex(ValueLayout.JAVA_FLOAT, j), s2 = v.getAtIndex(ValueLayout.JAVA_FLOAT, j);
            s1 = s1 * b1 + (1f - b1) * g[j];
            s2 = s2 * b2 + (1f - b2) * (g[j] * g[j]);
            p[j] = p[j] + stepSize * (s1 / ((float) Math.sqrt(s2) + eps * correction2));
            if (wd > 0f) p[j] = p[j] * (1f - lr * wd);
            m.setAtIndex(ValueLayout.JAVA_FLOAT, j, s1);
            v.setAtIndex(ValueLayout.JAVA_FLOAT, j, s2);
        }
    }

    private void update8(float[] g, float[] p, int i, float b1, float b2, float eps, float lr, float wd, float stepSize, float correction2) {
        MemorySegment c1 = state1[i], c2 = state2[i], a1 = absmax1[i], a2 = absmax2[i];
        float[] s1 = new float[BLOCK], s2 = new float[BLOCK];
        boolean[] finite = new boolean[BLOCK];
        int n = g.length;
        for (int block = 0, lo = 0; lo < n; block++, lo += BLOCK) {
            int len = Math.min(BLOCK, n - lo);
            float abs1 = a1.getAtIndex(ValueLayout.JAVA_FLOAT, block), abs2 = a2.getAtIndex(ValueLayout.JAVA_FLOAT, block);
            float max1 = 0f, max2 = 0f;
            for (int j = 0; j < len; j++) {
                float gj = g[lo + j];
                finite[j] = Float.isFinite(gj);
                if (finite[j]) {
                    s2[j] = UNSIGNED[Byte.toUnsignedInt(c2.get(ValueLayout.JAVA_BYTE, lo + j))] * abs2;
                    s2[j] = s2[j] * b2 + (1f - b2) * gj * gj;
                    s1[j] = SIGNED[Byte.toUnsignedInt(c1.get(ValueLayout.JAVA_BYTE, lo + j))] * abs1;
                    s1[j] = s1[j] * b1 + (1f - b1) * gj;
                } else {
                    s1[j] = 0f;
                    s2[j] = 0f;
                }
                max1 = Math.max(max1, Math.abs(s1[j]));
                max2 = Math.max(max2, Math.abs(s2[j]));
            }
            a1.setAtIndex(ValueLayout.JAVA_FLOAT, block, max1);
            a2.setAtIndex(ValueLayout.JAVA_FLOAT, block, max2);
            for (int j = 0; j < len; j++) {
                if (!finite[j]) continue;
                int at = lo + j;
                p[at] = p[at] + stepSize * (s1[j] / ((float) Math.sqrt(s2[j]) + correction2 * eps));
                if (wd > 0f) p[at] = p[at] * (1f - lr * wd);
            }
            for (int j = 0; j < len; j++) {
                int q1 = max1 == 0f ? SIGNED_ZERO : quantize(SIGNED, s1[j] / max1);
                // keep the first moment's sign: a code of the other sign moves one step towards it
                if (max1 != 0f && (SIGNED[q1] < 0 || isNegativeZero(SIGNED[q1])) != (s1[j] < 0 || isNegativeZero(s1[j])))
                    q1 += s1[j] > 0f ? 1 : -1;
                int q2 = max2 == 0f ? UNSIGNED_ZERO : quantize(UNSIGNED, s2[j] / max2);
                c1.set(ValueLayout.JAVA_BYTE, lo + j, (byte) q1);
                c2.set(ValueLayout.JAVA_BYTE, lo + j, (byte) q2);
            }
        }
    }

    private static boolean isNegativeZero(float x) { return x == 0f && Float.floatToRawIntBits(x) != 0; }

    /** The index of the code value nearest to x (code sorted ascending); ties go to the lower value. */
    static int quantize(float[] code, float x) {
        int lo = 0, hi = code.length - 1;
        if (!(x > code[lo])) return lo;
        if (x >= code[hi]) return hi;
        while (hi - lo > 1) {                                   // invariant: code[lo] < x < code[hi] or equal at lo
            int mid = (lo + hi) >>> 1;
            if (code[mid] <= x) lo = mid;
            else hi = mid;
        }
        float midpoint = (code[lo] + code[hi]) * 0.5f;
        return x > midpoint ? hi : lo;
    }

    /**
     * bitsandbytes' {@code create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)}: for i = 0…6, the means of
     * consecutive points of linspace(0.1, 1, 2^i + 1) (signed; 2^(i+1) + 1 unsigned) times 10^(i−6), mirrored negative
     * when signed; then 0 and 1; sorted. 256 values in [−1, 1] (signed) or [0, 1], dense near zero.
     */
    public static float[] dynamicMap(boolean signed) {
        float[] data = new float[256];
        int k = 0;
        for (int i = 0; i < 7; i++) {
            int items = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] boundaries = linspace(0.1f, 1f, items);
            float scale = (float) Math.pow(10, -6 + i);
            for (int j = 0; j + 1 < items; j++) {
                float mean = (boundaries[j] + boundaries[j + 1]) / 2f;
                data[k++] = scale * mean;
                if (signed) data[k++] = -scale * mean;
            }
        }
        data[k++] = 0f;
        data[k++] = 1f;
        if (k != 256) throw new AssertionError("dynamic map has " + k + " values");
        Arrays.sort(data);
        return data;
    }

    /** torch.linspace in f32: start + i·step for the first half, end − (n−1−i)·step for the rest. */
    private static float[] linspace(float start, float end, int n) {
        float[] out = new float[n];
        float step = (end - start) / (n - 1);
        int half = n / 2;
        for (int i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
        return out;
    }

    private static int indexOfZero(float[] code) {
        for (int i = 0; i < code.length; i++) if (code[i] == 0f) return i;
        throw new AssertionError("no zero in the code");
    }

    /**
     * {@code step}; {@code qmap1}/{@code qmap2} (the codes, f32 [256]); per parameter i {@code state.i.state1}/{@code state2}
     * (U8 codes, or f32 moments for small tensors) and {@code state.i.absmax1}/{@code absmax2} (f32 per block), bitsandbytes' names.
     */
    @Override
    public Map<String, TensorData> state() {
        Map<String, TensorData> out = new LinkedHashMap<>();
        out.put("step", TensorData.ofLongs(new long[] {step}, 1));
        out.put("qmap1", TensorData.ofFloats(SIGNED.clone(), 256));
        out.put("qmap2", TensorData.ofFloats(UNSIGNED.clone(), 256));
        for (int i = 0; i < params.size(); i++) {
            long n = params.get(i).numel();
            if (absmax1[i] == null) {
                out.put("state." + i + ".state1", TensorData.ofFloats(state1[i].toArray(ValueLayout.JAVA_FLOAT), n));
                out.put("state." + i + ".state2", TensorData.ofFloats(state2[i].toArray(ValueLayout.JAVA_FLOAT), n));
            } else {
                out.put("state." + i + ".state1", TensorData.ofBytes(StoredDType.U8, new long[] {n}, state1[i].toArray(ValueLayout.JAVA_BYTE)));
                out.put("state." + i + ".state2", TensorData.ofBytes(StoredDType.U8, new long[] {n}, state2[i].toArray(ValueLayout.JAVA_BYTE)));
                out.put("state." + i + ".absmax1", TensorData.ofFloats(absmax1[i].toArray(ValueLayout.JAVA_FLOAT), blocks(n)));
                out.put("state." + i + ".absmax2", TensorData.ofFloats(absmax2[i].toArray(ValueLayout.JAVA_FLOAT), blocks(n)));
            }
        }
        return out;
    }

    @Override
    public void loadState(Map<String, TensorData> state, String origin) {
        if (!state.containsKey("step") || !state.containsKey("qmap1"))
            throw new IllegalArgumentException(origin + ": not an 8-bit AdamW state (no 'step' / 'qmap1')");
        if (!Arrays.equals(state.get("qmap1").toFloats(), SIGNED) || !Arrays.equals(state.get("qmap2").toFloats(), UNSIGNED))
            throw new IllegalArgumentException(origin + ": qmap1/qmap2 differ from this optimizer's dynamic maps");
        for (int i = 0; i < params.size(); i++) {
            copyInto(state, origin, "state." + i + ".state1", state1[i]);
            copyInto(state, origin, "state." + i + ".state2", state2[i]);
            if (absmax1[i] != null) {
                copyInto(state, origin, "state." + i + ".absmax1", absmax1[i]);
                copyInto(state, origin, "state." + i + ".absmax2", absmax2[i]);
            }
        }
        step = state.get("step").toLongs()[0];
    }

    private static void copyInto(Map<String, TensorData> state, String origin, String key, MemorySegment into) {
        TensorData d = state.get(key);
        if (d == null) throw new IllegalArgumentException(origin + ": " + key + " missing");
        if (d.bytes().byteSize() != into.byteSize())
            throw new IllegalArgumentException(origin + ": " + key + " " + d + " has " + d.bytes().byteSize() + " bytes, the parameter's state " + into.byteSize());
        into.copyFrom(d.bytes());
    }

    @Override
    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }

    @Override public void close() { arena.close(); }
}

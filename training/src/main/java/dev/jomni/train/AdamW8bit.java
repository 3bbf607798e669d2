package dev.jomni.train;

import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
 *     coded with the signed dynamic map, the second v with the unsigned one ({@link AdamWStep#dynamicMap}).
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
 * The arithmetic is {@link AdamWStep}'s (one fused kernel per parameter on its device: the CPU kernel is the
 * reference, the CUDA kernel gives its bits); this class owns the state, its layout and its checkpoint form.
 * Differences from bitsandbytes: IEEE-rounded f32 division and powers where its kernel uses
 * {@code __fdividef}/{@code __powf} (an ulp here and there); an all-zero block (absmax 0) codes its elements as 0
 * where the kernel divides 0 by 0 (the dequantized value is 0 either way).
 *
 * <p><b>Paged.</b> With {@code paged} the state is memory the system may move out of the way under memory
 * pressure: on a CUDA device, managed memory (cuMemAllocManaged), which the driver evicts to the host and brings
 * back page by page when the step's kernels touch it, as bitsandbytes' paged optimizers do ({@link #pagedBytes});
 * on the CPU, a memory-mapped temporary file (deleted on close) that the OS may page out. Otherwise the device's
 * ordinary memory.
 */
public final class AdamW8bit implements Optimizer {
    public static final int BLOCK = AdamWStep.BLOCK, MIN_8BIT_SIZE = 4096;
    static final float[] SIGNED = AdamWStep.dynamicMap(true), UNSIGNED = AdamWStep.dynamicMap(false);
    private static final int SIGNED_ZERO = indexOfZero(SIGNED), UNSIGNED_ZERO = indexOfZero(UNSIGNED);

    private final List<Tensor> params;
    private final boolean paged;
    /** Per parameter: U8 codes (or f32 moments for a small tensor) and f32 absmax per block (null: f32 state); views of two buffers. */
    private final Tensor[] state1, state2, absmax1, absmax2;
    private final Tensor qmap1, qmap2, codes, floats;
    private final Arena arena = Arena.ofShared();
    private final long totalBytes, pagedBytes;
    private AdamW.Config config;
    private long step;

    /** The state on the parameters' device (they must share one); paged: see the class comment. */
    public AdamW8bit(List<Tensor> params, AdamW.Config config, boolean paged) {
        this.params = List.copyOf(params);
        this.config = config;
        this.paged = paged;
        Device device = params.isEmpty() ? Device.cpu() : params.getFirst().device();
        for (Tensor p : params)
            if (!p.device().equals(device)) throw new IllegalArgumentException(name() + ": parameters on " + device + " and " + p.device());
        int k = params.size();
        state1 = new Tensor[k];
        state2 = new Tensor[k];
        absmax1 = new Tensor[k];
        absmax2 = new Tensor[k];
        long codeCount = 0, floatCount = 0;
        for (Tensor p : params) {
            long n = p.numel();
            if (n < MIN_8BIT_SIZE) floatCount += 2 * n;
            else {
                codeCount += 2 * n;
                floatCount += 2 * blocks(n);
            }
        }
        totalBytes = codeCount + 4 * floatCount;
        // Two buffers (f32 first, then the codes) sliced per parameter: a few large allocations, not two per tensor.
        Tensor[] buffers = allocate(device, Math.max(1, floatCount), Math.max(1, codeCount));
        floats = buffers[0];
        codes = buffers[1];
        pagedBytes = paged && device.kind() != Device.Kind.CPU ? totalBytes : 0;
        try (var g = Autograd.noGrad()) {
            floats.assign(Tensor.zeros(device, DType.F32, 1));
            long fAt = 0, cAt = 0;
            for (int i = 0; i < k; i++) {
                long n = params.get(i).numel();
                if (n < MIN_8BIT_SIZE) {
                    state1[i] = view(floats, fAt, n);
                    state2[i] = view(floats, fAt + n, n);
                    fAt += 2 * n;
                } else {
                    long blocks = blocks(n);
                    absmax1[i] = view(floats, fAt, blocks);
                    absmax2[i] = view(floats, fAt + blocks, blocks);
                    fAt += 2 * blocks;
                    state1[i] = view(codes, cAt, n);
                    state2[i] = view(codes, cAt + n, n);
                    cAt += 2 * n;
                    state1[i].assign(Tensor.full(device, DType.U8, SIGNED_ZERO, 1));
                    state2[i].assign(Tensor.full(device, DType.U8, UNSIGNED_ZERO, 1));
                }
            }
            qmap1 = Scope.unscoped(Tensor.of(SIGNED.clone(), 256).to(device));
            qmap2 = Scope.unscoped(Tensor.of(UNSIGNED.clone(), 256).to(device));
        }
    }

    private static Tensor view(Tensor buffer, long at, long n) {
        return Scope.unscoped(buffer.narrow(0, at, n));
    }

    /**
     * The f32 and U8 state buffers: on the CPU, paged, in a memory-mapped temporary file (deleted on close) that
     * the OS may page out; on a CUDA device, paged, in managed memory; otherwise the device's ordinary memory.
     */
    private Tensor[] allocate(Device device, long floatCount, long codeCount) {
        if (paged && device.kind() == Device.Kind.CPU) {
            MemorySegment all = mapTemporary(4 * floatCount + codeCount);
            return new Tensor[] {
                    Scope.unscoped(Tensor.wrap(all.asSlice(0, 4 * floatCount), DType.F32, Math.toIntExact(floatCount))),
                    Scope.unscoped(Tensor.wrap(all.asSlice(4 * floatCount, codeCount), DType.U8, Math.toIntExact(codeCount)))};
        }
        if (paged)
            return new Tensor[] {Scope.unscoped(Tensor.emptyPaged(device, DType.F32, Math.toIntExact(floatCount))),
                    Scope.unscoped(Tensor.emptyPaged(device, DType.U8, Math.toIntExact(codeCount)))};
        return new Tensor[] {Scope.unscoped(Tensor.empty(device, DType.F32, Math.toIntExact(floatCount))),
                Scope.unscoped(Tensor.empty(device, DType.U8, Math.toIntExact(codeCount)))};
    }

    private MemorySegment mapTemporary(long bytes) {
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

    /**
     * Bytes of state in CUDA managed memory, which the driver migrates between host and device on demand (0 on
     * the CPU, where the state is host memory already, and when not paged). While it fits on the device it
     * stays resident and a step moves none of it.
     */
    public long pagedBytes() { return pagedBytes; }

    /** One fused kernel launch per parameter ({@link AdamWStep}); nothing is read back from the device. */
    @Override
    public void step() {
        step++;
        float b1 = (float) config.beta1(), b2 = (float) config.beta2(), eps = (float) config.eps();
        float lr = (float) config.lr(), wd = (float) config.weightDecay();
        float correction1 = 1f - (float) Math.pow(b1, step);
        float correction2 = (float) Math.sqrt(1f - (float) Math.pow(b2, step));
        var h = new AdamWStep.Hyper(b1, b2, eps, lr, wd, -lr * correction2 / correction1, correction2);
        try (var g = Autograd.noGrad(); var scope = Scope.open()) {
            for (int i = 0; i < params.size(); i++) {
                Tensor p = params.get(i), grad = p.grad();
                if (grad == null) continue;
                Tensor gc = grad.contiguous();
                if (absmax1[i] == null) AdamWStep.bnb32(p, gc, state1[i], state2[i], h);
                else AdamWStep.blockwise8bit(p, gc, state1[i], state2[i], absmax1[i], absmax2[i], qmap1, qmap2, h);
            }
        }
    }

    private static int indexOfZero(float[] code) {
        for (int i = 0; i < code.length; i++) if (code[i] == 0f) return i;
        throw new AssertionError("no zero in the code");
    }

    /**
     * {@code step}; {@code qmap1}/{@code qmap2} (the codes, f32 [256]); per parameter i {@code state.i.state1}/{@code state2}
     * (U8 codes, or f32 moments for small tensors) and {@code state.i.absmax1}/{@code absmax2} (f32 per block), bitsandbytes' names.
     * Copied to the host (a device synchronisation: at a checkpoint only).
     */
    @Override
    public Map<String, TensorData> state() {
        Map<String, TensorData> out = new LinkedHashMap<>();
        out.put("step", TensorData.ofLongs(new long[] {step}, 1));
        out.put("qmap1", TensorData.ofFloats(SIGNED.clone(), 256));
        out.put("qmap2", TensorData.ofFloats(UNSIGNED.clone(), 256));
        for (int i = 0; i < params.size(); i++) {
            out.put("state." + i + ".state1", TensorData.of(state1[i]));
            out.put("state." + i + ".state2", TensorData.of(state2[i]));
            if (absmax1[i] != null) {
                out.put("state." + i + ".absmax1", TensorData.of(absmax1[i]));
                out.put("state." + i + ".absmax2", TensorData.of(absmax2[i]));
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
        try (var g = Autograd.noGrad(); var scope = Scope.open()) {
            for (int i = 0; i < params.size(); i++) {
                copyInto(state, origin, "state." + i + ".state1", state1[i]);
                copyInto(state, origin, "state." + i + ".state2", state2[i]);
                if (absmax1[i] != null) {
                    copyInto(state, origin, "state." + i + ".absmax1", absmax1[i]);
                    copyInto(state, origin, "state." + i + ".absmax2", absmax2[i]);
                }
            }
        }
        step = state.get("step").toLongs()[0];
    }

    private static void copyInto(Map<String, TensorData> state, String origin, String key, Tensor into) {
        TensorData d = state.get(key);
        if (d == null) throw new IllegalArgumentException(origin + ": " + key + " missing");
        long bytes = into.numel() * into.dtype().byteSize;
        if (d.bytes().byteSize() != bytes || d.numel() != into.numel())
            throw new IllegalArgumentException(origin + ": " + key + " " + d + " has " + d.bytes().byteSize() + " bytes, the parameter's state " + bytes);
        Tensor host = d.toTensor();
        if (host.dtype() != into.dtype())
            throw new IllegalArgumentException(origin + ": " + key + " is " + host.dtype().lower() + ", the parameter's state " + into.dtype().lower());
        into.assign(host.reshape(into.shape()).to(into.device()));
    }

    @Override
    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {floats, codes, qmap1, qmap2}) t.close();
        for (Tensor[] views : new Tensor[][] {state1, state2, absmax1, absmax2}) for (Tensor t : views) if (t != null) t.close();
        arena.close();
    }
}

package dev.jomni.tensor.ops;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Check;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import java.lang.foreign.MemorySegment;

/**
 * A frozen weight W [N, K] in 4-bit NormalFloat (NF4, QLoRA arXiv:2305.14314), exactly as bitsandbytes
 * stores it ({@code quantize_4bit(W, blocksize=64, compress_statistics=True, quant_type="nf4")}, read at
 * bitsandbytes 95f9af3: functional.py, backends/default/ops.py, csrc/kernels.cu):
 *
 * <ul>
 *   <li>Blocks of {@link #BLOCK} = 64 consecutive elements of row-major W (flattened, so with K a multiple
 *       of 64 a block never crosses a row: jomni requires that). absmax[b] = max |w| over block b, f32.
 *   <li>Each element: scaled = clamp(w · (1/absmax), −1, 1) in f32, its code the index of the nearest of
 *       the 16 levels {@link #CODE} (bucketize over the f32 midpoints: a value on a midpoint takes the
 *       lower level, as the default backend's {@code torch.bucketize} does).
 *   <li>Nibble order: element 2j in the HIGH nibble, 2j+1 in the low one: {@code byte j = q[2j] << 4 |
 *       q[2j+1]} (kQuantizeBlockwise, {@code qvals[j] = dQuantizeNF4(vals[2j]…) << 4}). jomni uses this
 *       layout unchanged, on the CPU and in nf4.cu, so a bnb checkpoint needs no repacking.
 *   <li>Double quantization of absmax: offset = mean(absmax) (f32); absmax − offset quantized blockwise in
 *       blocks of {@link #NESTED_BLOCK} = 256 with the signed 8-bit dynamic map
 *       ({@code create_dynamic_map(signed=True)}, {@link #dynamicMap()}): nestedAbsmax[c] = max |·| over
 *       nested block c (f32), each value's code the nearest map entry. Dequantized:
 *       {@code absmax[b] = f32(f32(nestedCode[qabsmax[b]] · nestedAbsmax[b/256]) + offset)}.
 *   <li>Dequantized weight: {@code w = round_dtype(f32(CODE[q] · absmax[b]))}, dtype the source's.
 * </ul>
 *
 * Storage: 4 bits per weight + 8/64 for the absmax codes + 32/(64·256) for the nested absmax = 4.127 bits.
 *
 * @param packed       U8 [N·K/2], two codes per byte, high nibble first
 * @param absmax       U8 [N·K/64], the double-quantized absmax codes
 * @param nestedAbsmax F32 [ceil(N·K/64 / 256)]
 * @param nestedCode   F32 [256], the dynamic map the absmax codes index (stored with the weight, as bnb does)
 * @param offset       the mean subtracted before the nested quantization
 * @param rows         N (out features)
 * @param cols         K (in features), a multiple of 64
 * @param dtype        the dtype the weight dequantizes to (bnb's quant_state dtype)
 */
public record Nf4Weight(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset,
                        int rows, int cols, DType dtype) implements AutoCloseable {
    public static final int BLOCK = 64, NESTED_BLOCK = 256;

    /** bitsandbytes' NF4 levels (get_4bit_type("nf4")): quantiles of N(0, 1), normalized to [−1, 1]. */
    public static final float[] CODE = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

    public Nf4Weight {
        long n = (long) rows * cols, blocks = n / BLOCK;
        if (rows <= 0 || cols <= 0 || cols % BLOCK != 0)
            throw Check.fail("nf4", "weight [%d, %d]: K must be a positive multiple of %d", rows, cols, BLOCK);
        expect("packed", packed, DType.U8, n / 2);
        expect("absmax", absmax, DType.U8, blocks);
        expect("nestedAbsmax", nestedAbsmax, DType.F32, (blocks + NESTED_BLOCK - 1) / NESTED_BLOCK);
        expect("nestedCode", nestedCode, DType.F32, 256);
        if (!dtype.floating) throw Check.fail("nf4", "weight [%d, %d]: dtype %s is not floating", rows, cols, dtype.lower());
        Device d = packed.device();
        for (Tensor t : new Tensor[] {absmax, nestedAbsmax, nestedCode})
            if (!t.device().equals(d)) throw Check.fail("nf4", "weight [%d, %d]: parts on %s and %s", rows, cols, d, t.device());
    }

    private void expect(String what, Tensor t, DType type, long numel) {
        if (t.dtype() != type || t.rank() != 1 || t.numel() != numel || !t.isContiguous())
            throw Check.fail("nf4", "weight [%d, %d]: %s must be contiguous %s [%d], found %s %s",
                    rows, cols, what, type.lower(), numel, t.dtype().lower(), Check.str(t.shape()));
    }

    public Device device() { return packed.device(); }

    public int[] shape() { return new int[] {rows, cols}; }

    /** Bytes held: packed codes, absmax codes, nested absmax and map. */
    public long bytes() { return packed.numel() + absmax.numel() + 4 * (nestedAbsmax.numel() + nestedCode.numel()); }

    /** This weight on {@code target} (a copy of each part; this one stays valid). */
    public Nf4Weight to(Device target) {
        return new Nf4Weight(packed.to(target), absmax.to(target), nestedAbsmax.to(target), nestedCode.to(target),
                offset, rows, cols, dtype);
    }

    /** W [N, K] of {@link #dtype}, dequantized on this weight's device (debugging and fallbacks). */
    public Tensor dequantize() { return Nf4Matmul.dequantize(this); }

    @Override public void close() {
        packed.close();
        absmax.close();
        nestedAbsmax.close();
        nestedCode.close();
    }

    // ---------------------------------------------------------------- quantizing: on the host (the reference) or a device

    /**
     * -Djomni.nf4.deviceQuantize=true (read at each call) quantizes a device tensor on its device; otherwise on the host,
     * the result moved back. Off by default until the device kernels have passed their GPU tests (both give the same bytes).
     */
    public static final String DEVICE_QUANTIZE = "jomni.nf4.deviceQuantize";

    /** Whether {@link #quantize} runs on {@code d}'s kernels: a device whose backend has them, with DEVICE_QUANTIZE on. */
    public static boolean quantizesOn(Device d) {
        if (d.kind() == Device.Kind.CPU || !Boolean.parseBoolean(System.getProperty(DEVICE_QUANTIZE, "false"))) return false;
        try {
            Backend.of(d).kernels(Kernels.class);
            return true;
        } catch (UnsupportedOperationException none) {
            return false;
        }
    }

    /**
     * W [N, K] quantized to NF4 as bitsandbytes does (see the class comment), on W's device: a CPU tensor by the host
     * quantizer ({@link Builder}, the reference), a device tensor by its backend's {@link Kernels} into parts on that
     * device, bit-identical to the host's (without them, or with DEVICE_QUANTIZE off, it quantizes on the host and moves the parts back).
     * {@code name} names the tensor in errors (its checkpoint key).
     */
    public static Nf4Weight quantize(String name, Tensor w) {
        if (w.rank() != 2 || !w.dtype().floating)
            throw new IllegalArgumentException("nf4 quantize: " + name + " " + w.dtype().lower() + " " + Check.str(w.shape())
                    + " is not a floating [N, K] weight");
        checkShape(name, w.size(0), w.size(1));
        if (quantizesOn(w.device())) return quantizeOn(Backend.of(w).kernels(Kernels.class), w);
        Nf4Weight host = new Builder(name, w.size(0), w.size(1)).add(w).build(w.dtype());
        if (w.device().kind() == Device.Kind.CPU) return host;
        try (host) {
            return host.to(w.device());
        }
    }

    /**
     * What a backend implements to quantize on its device, in three steps with the mean of the block absmax between
     * them (the op reads it back: it is the weight's {@link #offset} field). Contiguous tensors on one device, outputs
     * allocated by the op; results bit-identical to {@link Builder}'s (the same f32 operations in the same order).
     */
    public interface Kernels {
        /**
         * w [N, K] (K a multiple of 64) of bf16, f16, f32 or f64 (rounded to f32 first) → amax F32 [N·K/64], the
         * max |w| of each block of 64 (NaN when the block holds one), and packed U8 [N·K/2], each element's nearest NF4
         * level of clamp(w · f32(1 / max(amax, 1e-38)), −1, 1), high nibble first.
         */
        void quantizeBlocks(Tensor w, Tensor packed, Tensor amax);

        /**
         * stats F64 [2] ← (Σ amax in double, in any order; the lowest exponent e such that 2^e is a set bit of a finite
         * nonzero amax value, {@link Integer#MAX_VALUE} when none).
         */
        void absmaxStats(Tensor amax, Tensor stats);

        /**
         * For each nested block c of 256 absmax values: nestedAbsmax[c] = max |amax − offset| (f32), qabsmax[b] the number
         * of map midpoints below clamp((amax[b] − offset) · f32(1 / max(nestedAbsmax[c], 1e-38)), −1, 1); map F32 [256].
         */
        void quantizeAbsmax(Tensor amax, float offset, Tensor map, Tensor qabsmax, Tensor nestedAbsmax);
    }

    private static Nf4Weight quantizeOn(Kernels k, Tensor w) {
        Device d = w.device();
        int rows = w.size(0), cols = w.size(1);
        long n = (long) rows * cols;
        int blocks = (int) (n / BLOCK), nested = (blocks + NESTED_BLOCK - 1) / NESTED_BLOCK;
        try (var g = Autograd.noGrad()) {
            Tensor c = w.contiguous();
            Tensor packed = Tensor.empty(d, DType.U8, (int) (n / 2)), amax = Tensor.empty(d, DType.F32, blocks);
            k.quantizeBlocks(c, packed, amax);
            if (c != w) c.close();
            double[] stats;
            try (Tensor s = Tensor.empty(d, DType.F64, 2)) {
                k.absmaxStats(amax, s);
                stats = s.toDoubleArray();
            }
            // The host sums in order; the device's sum is that one only when no order could round it, else the host sums.
            double sum = exactInAnyOrder(stats[0], (int) stats[1]) ? stats[0] : sum(amax.toFloatArray());
            float offset = mean(sum, blocks);
            Tensor map = Tensor.fromHost(d, DType.F32, MemorySegment.ofArray(dynamicMap()), 256);
            Tensor qabsmax = Tensor.empty(d, DType.U8, blocks), nestedAbsmax = Tensor.empty(d, DType.F32, nested);
            k.quantizeAbsmax(amax, offset, map, qabsmax, nestedAbsmax);
            amax.close();
            return new Nf4Weight(packed, qabsmax, nestedAbsmax, map, offset, rows, cols, w.dtype());
        }
    }

    /**
     * Whether {@code sum}, a double sum of nonnegative floats whose set bits all lie at or above 2^lowest (in some order),
     * is the sum in every order: true when it is not finite (NaN if a term is, else infinity, in any order), zero, or
     * below 2^(lowest + 52). Then the exact sum is below 2^(lowest + 53) (an order's rounding errs by far less than
     * half), so it and every partial sum of any order are multiples of 2^lowest under 2^53 of them: each addition is
     * exact, and the host's sequential sum ({@link #sum}) is this one.
     */
    static boolean exactInAnyOrder(double sum, int lowest) {
        if (!Double.isFinite(sum) || sum == 0) return true;
        return lowest < Integer.MAX_VALUE && sum < Math.scalb(1.0, lowest + 52);
    }

    /** The block absmax summed as the host quantizer sums them: in double, in order. */
    static double sum(float[] amax) {
        double s = 0;
        for (float a : amax) s += a;
        return s;
    }

    /** absmax.mean() as bnb's double quantization subtracts it: the sum over the block count, in f32. */
    static float mean(double sum, long blocks) { return (float) (sum / blocks); }

    private static void checkShape(String name, int rows, int cols) {
        if (rows <= 0 || cols <= 0 || cols % BLOCK != 0)
            throw new IllegalArgumentException("nf4 quantize: " + name + " [" + rows + ", " + cols + "]: K = " + cols
                    + " is not a multiple of the block size " + BLOCK + " (blocks would cross rows); keep this weight unquantized");
        if ((long) rows * cols / 2 > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("nf4 quantize: " + name + " [" + rows + ", " + cols + "] has more than 2^32 elements");
    }

    /**
     * An NF4 weight [N, K] built from its rows in order, so that a stack of tensors (a layer's experts) is quantized
     * one piece at a time without the whole in memory: the 4-bit codes and f32 absmax of each piece go straight into
     * the stacked buffers, and {@link #build} double-quantizes the absmax over the whole stack (one offset, nested
     * blocks of 256 across piece boundaries). Rows quantized with {@link #add(Tensor)} give exactly the bytes of
     * {@link #quantize} over the concatenated rows. {@link #add(Nf4Weight)} re-stacks an already quantized piece:
     * its codes unchanged, its absmax dequantized and quantized again with the stack's statistics (within half a step
     * of the dynamic map times the stack's nested absmax, {@link #dynamicMapHalfStep}).
     */
    public static final class Builder {
        private final String name;
        private final int rows, cols;
        private final byte[] packed;
        private final float[] amax;
        private int filled;                                     // rows added so far

        public Builder(String name, int rows, int cols) {
            checkShape(name, rows, cols);
            long n = (long) rows * cols;
            this.name = name;
            this.rows = rows;
            this.cols = cols;
            packed = new byte[(int) (n / 2)];
            amax = new float[(int) (n / BLOCK)];
        }

        /** Quantizes w [r, K] (any floating dtype, any device) as the next r rows. */
        public Builder add(Tensor w) {
            if (w.rank() != 2 || !w.dtype().floating || w.size(1) != cols)
                throw new IllegalArgumentException("nf4 quantize: " + name + ": rows " + w.dtype().lower() + " " + Check.str(w.shape())
                        + " are not floating [r, " + cols + "]");
            int from = reserve(w.size(0));
            int first = (int) ((long) from * cols / BLOCK), blocks = (int) ((long) w.size(0) * cols / BLOCK);
            float[] bounds = midpoints(CODE);
            // bnb quantizes A.float(): bf16 widens exactly, so its raw bits are read in place (no f32 copy of the rows).
            boolean bf16 = w.dtype() == DType.BF16;
            try (var arena = java.lang.foreign.Arena.ofShared()) {
                MemorySegment raw = bf16 ? w.toHost(arena) : null;
                float[] x = bf16 ? null : w.toFloatArray();
                int chunk = 1024;                                         // blocks per task
                java.util.stream.IntStream.range(0, (blocks + chunk - 1) / chunk).parallel().forEach(c -> {
                    float[] v = new float[BLOCK];
                    for (int b = c * chunk; b < Math.min(blocks, (c + 1) * chunk); b++) {
                        long base = (long) b * BLOCK;
                        float m = 0;
                        for (int j = 0; j < BLOCK; j++) {
                            v[j] = bf16 ? Float.intBitsToFloat((raw.getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, base + j) & 0xffff) << 16)
                                    : x[(int) base + j];
                            m = Math.max(m, Math.abs(v[j]));
                        }
                        amax[first + b] = m;
                        float inv = 1f / Math.max(m, 1e-38f);
                        int at = (first + b) * (BLOCK / 2);
                        for (int j = 0; j < BLOCK; j += 2)
                            packed[at++] = (byte) (level(bounds, clamp(v[j] * inv)) << 4 | level(bounds, clamp(v[j + 1] * inv)));
                    }
                });
            }
            return this;
        }

        /** Appends an NF4 weight [r, K] as the next r rows: its codes as they are, its dequantized absmax to be quantized again. */
        public Builder add(Nf4Weight w) {
            if (w.cols() != cols)
                throw new IllegalArgumentException("nf4 stack: " + name + ": piece [" + w.rows() + ", " + w.cols() + "] is not [r, " + cols + "]");
            int from = reserve(w.rows());
            byte[] codes = w.packed().toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            byte[] q = w.absmax().toHost(java.lang.foreign.Arena.ofAuto()).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            float[] nested = w.nestedAbsmax().toFloatArray(), map = w.nestedCode().toFloatArray();
            System.arraycopy(codes, 0, packed, (int) ((long) from * cols / 2), codes.length);
            int first = (int) ((long) from * cols / BLOCK);
            for (int b = 0; b < q.length; b++) amax[first + b] = absmax(map, q[b], nested, b, w.offset());
            return this;
        }

        private int reserve(int r) {
            if (r > rows - filled)
                throw new IllegalArgumentException("nf4 quantize: " + name + ": " + r + " more rows overflow [" + rows + ", " + cols + "] ("
                        + filled + " rows given)");
            int from = filled;
            filled += r;
            return from;
        }

        /** The weight, dequantizing to {@code dtype}; every row must have been given. */
        public Nf4Weight build(DType dtype) {
            if (filled != rows)
                throw new IllegalStateException("nf4 quantize: " + name + ": " + filled + " of " + rows + " rows given");
            int blocks = amax.length;
            // Double quantization: offset = absmax.mean(), then quantize_blockwise(absmax − offset, blocksize=256).
            float offset = mean(sum(amax), blocks);
            float[] map = dynamicMap(), mapBounds = midpoints(map);
            int nested = (blocks + NESTED_BLOCK - 1) / NESTED_BLOCK;
            float[] nestedAbsmax = new float[nested];
            byte[] qabsmax = new byte[blocks];
            for (int c = 0; c < nested; c++) {
                int from = c * NESTED_BLOCK, to = Math.min(blocks, from + NESTED_BLOCK);
                float m = 0;
                for (int b = from; b < to; b++) m = Math.max(m, Math.abs(amax[b] - offset));
                nestedAbsmax[c] = m;
                float inv = 1f / Math.max(m, 1e-38f);
                for (int b = from; b < to; b++) qabsmax[b] = (byte) bucket(mapBounds, clamp((amax[b] - offset) * inv));
            }
            Device cpu = Device.cpu();
            return new Nf4Weight(Tensor.fromHost(cpu, DType.U8, MemorySegment.ofArray(packed), packed.length),
                    Tensor.fromHost(cpu, DType.U8, MemorySegment.ofArray(qabsmax), blocks),
                    Tensor.fromHost(cpu, DType.F32, MemorySegment.ofArray(nestedAbsmax), nested),
                    Tensor.fromHost(cpu, DType.F32, MemorySegment.ofArray(map), 256),
                    offset, rows, cols, dtype);
        }
    }

    /** This weight's parts, dequantizing to {@code dtype} instead (the codes and scales do not depend on it). */
    public Nf4Weight withDtype(DType dtype) {
        return dtype == this.dtype ? this : new Nf4Weight(packed, absmax, nestedAbsmax, nestedCode, offset, rows, cols, dtype);
    }

    /**
     * The largest half gap between neighbouring entries of the dynamic map: quantizing an absmax a (with |a − offset| at
     * most the nested absmax m) to the nearest map entry errs by at most this times m.
     */
    public static float dynamicMapHalfStep() {
        float[] map = dynamicMap();
        float h = Math.max(map[0] + 1, 1 - map[map.length - 1]);     // the ends of [−1, 1], where clamped values land
        for (int i = 0; i + 1 < map.length; i++) h = Math.max(h, (map[i + 1] - map[i]) / 2);
        return h;
    }

    /** The block scales as the kernels use them: absmax[b] = f32(f32(nestedCode[q]·nestedAbsmax[b/256]) + offset). */
    public static float absmax(float[] nestedCode, int q, float[] nestedAbsmax, int block, float offset) {
        return nestedCode[q & 0xff] * nestedAbsmax[block / NESTED_BLOCK] + offset;
    }

    private static float clamp(float v) { return Math.max(-1f, Math.min(1f, v)); }

    /** torch.bucketize(v, bounds, right=False): the number of bounds strictly below v. */
    /** {@link #bucket} over the 15 NF4 midpoints, counted without branches (the quantizer's inner loop). */
    private static int level(float[] bounds, float v) {
        int n = 0;
        for (float b : bounds) n += b < v ? 1 : 0;
        return n;
    }

    private static int bucket(float[] bounds, float v) {
        int lo = 0, hi = bounds.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (bounds[mid] < v) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /** (code[i] + code[i+1]) / 2 in f32, for a sorted code. */
    private static float[] midpoints(float[] code) {
        float[] m = new float[code.length - 1];
        for (int i = 0; i < m.length; i++) m[i] = (code[i] + code[i + 1]) / 2;
        return m;
    }

    /** bitsandbytes' signed 8-bit dynamic map ({@code create_dynamic_map(signed=True)}), the one the 8-bit optimizer uses. */
    public static float[] dynamicMap() { return AdamWStep.dynamicMap(true); }
}

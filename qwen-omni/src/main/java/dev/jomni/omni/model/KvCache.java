package dev.jomni.omni.model;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.IndexCopy;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The keys (after q/k-norm and RoPE) and values a forward pass attends to, for a batch of sequences
 * whose tokens live in the blocks of a {@link KvBlockPool}: row r of the batch is {@code rows.get(r)}.
 * Nothing is ever grown or concatenated: each step writes its new tokens into the rows' blocks.
 *
 * <p>Batch view. A forward pass with T new tokens and past = {@link #length()} (the longest row) sees,
 * per layer, K and V [B, nkv, past + T, d]: row r's cached tokens at 0 … len_r − 1, the zero block's
 * slot from len_r to past − 1 (the caller's attention mask must be 0 there), the new tokens at past …
 * past + T − 1. Rows of one length (as {@link Generation} decodes them) give exactly the tensor the old
 * concatenating cache gave. The view is gathered from the block table with one indexSelect per layer
 * into a step-local tensor (O(B·S) per step, released with the step's scope, no growth across steps);
 * attention reads it as a strided [B, nkv, S, d] view.
 *
 * <p>Paged decode. A cache over a shared pool (the engine's) decodes one token per row without the batch
 * view: {@link #decodes} is true, and each layer writes its new k and v into the rows' slots (one
 * {@link IndexCopy} each) and attends with {@link ScaledDotProductAttention#decode} over the pool's blocks
 * through a block table [B, maxBlocks] and the rows' lengths, planned once per step and read by every layer
 * (each row sees exactly its own tokens: no gap, no mask, nothing gathered). Where the device's decode kernels do not
 * take the pool's dtype or head size (CUDA: bf16/f16, head_dim 64 or 128) it keeps the batch view.
 */
public final class KvCache implements AutoCloseable {
    /** Tokens per row a {@link #KvCache(int)} cache holds. */
    public static final int DEFAULT_MAX_TOKENS = 1024;
    /** Block size of the pools a cache creates for itself. */
    static final int OWN_BLOCK_SIZE = 16;

    private final int layers, maxTokens;
    private KvBlockPool pool;
    private final boolean ownsPool;
    private List<Sequence> rows;
    /** Per row, set by the prefill: decode positions are (valid tokens before) + delta (spec §6, §9). */
    long[] ropeDeltas;

    // The plan of the current forward pass, made at layer 0 and used by every layer.
    private int planT = -1, planPast;
    private boolean planned;                                   // planStep ran for the step layer 0 is about to append
    private final boolean paged;                               // T = 1 steps attend over the pool's blocks (see the class comment)
    private Tensor writeIndex;                                 // [B·T] I64 pool slot of each new token, row-major
    private Tensor gatherIndex;                                // batch view: [B·(past + T)] I64 on the pool's device, in the caller's scope
    private Tensor blockTable, seqLens;                        // paged decode: I32 [B, maxBlocks] and [B]

    /** The one block table of a sequence: its tokens' slots in a pool, in order. */
    public static final class Sequence {
        private final KvBlockPool pool;
        private final List<Integer> blocks = new ArrayList<>();
        private int length;
        private long ropeDelta;
        private boolean freed;

        public Sequence(KvBlockPool pool) { this.pool = pool; }

        /** Tokens cached. */
        public int length() { return length; }

        /** Blocks held. */
        public int blocks() { return blocks.size(); }

        int slot(int position) { return blocks.get(position / pool.blockSize) * pool.blockSize + position % pool.blockSize; }

        /** Blocks for {@code tokens} tokens, the one the next token goes into made this sequence's own (copy-on-write). */
        void reserve(int tokens) {
            if (freed) throw new IllegalStateException("kv cache: sequence already freed");
            int last = length / pool.blockSize;
            if (tokens > length && last < blocks.size() && pool.shared(blocks.get(last))) {
                int own = pool.allocate(), shared = blocks.get(last);
                if (length % pool.blockSize > 0) pool.copyBlock(shared, own, length % pool.blockSize);
                pool.release(shared);
                blocks.set(last, own);
            }
            while (blocks.size() * pool.blockSize < tokens) blocks.add(pool.allocate());
        }

        /**
         * A second sequence with the same tokens, sharing every block (the n samples of one prompt): neither
         * copies anything until it writes into a shared, partly filled last block.
         */
        public Sequence fork() {
            if (freed) throw new IllegalStateException("kv cache: sequence already freed");
            var s = new Sequence(pool);
            for (int b : blocks) {
                pool.retain(b);
                s.blocks.add(b);
            }
            s.length = length;
            s.ropeDelta = ropeDelta;
            return s;
        }

        /** Returns the blocks to the pool; the sequence cannot be used again. Idempotent. */
        public void free() {
            if (freed) return;
            freed = true;
            for (int b : blocks) pool.release(b);
            blocks.clear();
            length = 0;
        }
    }

    /** A batch over sequences of a shared pool; closing it frees nothing (the sequences are the caller's). */
    public KvCache(KvBlockPool pool, List<Sequence> rows) {
        if (rows.isEmpty()) throw new IllegalArgumentException("kv cache: no rows");
        this.layers = pool.layers;
        this.maxTokens = Integer.MAX_VALUE;
        this.pool = pool;
        this.ownsPool = false;
        this.rows = List.copyOf(rows);
        this.paged = ScaledDotProductAttention.decodes(pool.keys[0].device(), pool.keys[0].dtype(), pool.headDim);
        ropeDeltas = new long[rows.size()];
        for (int r = 0; r < ropeDeltas.length; r++) ropeDeltas[r] = rows.get(r).ropeDelta;
    }

    /** A cache with a pool of its own for up to {@code maxTokens} tokens per row, allocated at the first forward pass (which fixes B). */
    public KvCache(int layers, int maxTokens) {
        if (layers <= 0 || maxTokens <= 0) throw new IllegalArgumentException("kv cache: layers " + layers + ", max tokens " + maxTokens);
        this.layers = layers;
        this.maxTokens = maxTokens;
        this.ownsPool = true;
        this.paged = false;                                    // its rows may hold padding (Generation's left-padded batch)
    }

    public KvCache(int layers) { this(layers, DEFAULT_MAX_TOKENS); }

    /** Tokens cached so far: the longest row. */
    public int length() {
        if (rows == null) return 0;
        int n = 0;
        for (Sequence s : rows) n = Math.max(n, s.length);
        return n;
    }

    /**
     * Writes this step's k and v for a layer into the rows' blocks and returns the batch view
     * (see the class comment) of everything cached for it.
     *
     * @param k [B, nkv, T, d], v the same
     * @return {K, V} [B, nkv, past + T, d] each, views of step-local tensors
     */
    Tensor[] append(int layer, Tensor k, Tensor v) {
        planLayer(layer, k);
        int b = k.size(0), t = k.size(2);
        try (var g = Autograd.noGrad()) {
            write(layer, k, v);
            int s = planPast + t;
            return new Tensor[] {view(pool.keys[layer], b, s), view(pool.values[layer], b, s)};
        }
    }

    /** Whether a step of {@code t} new tokens per row attends with {@link #attend} (paged decode) rather than {@link #append}. */
    boolean decodes(int t) { return paged && t == 1; }

    /**
     * Paged decode of one layer: writes this step's k and v into the rows' slots and returns the attention of q
     * over each row's tokens, the new one included.
     *
     * @param q [B, nh, 1, d]; k, v [B, nkv, 1, d]
     * @return [B, nh, 1, d]
     */
    Tensor attend(int layer, Tensor q, Tensor k, Tensor v) {
        planLayer(layer, k);
        if (blockTable == null) throw new IllegalStateException("kv cache: layer " + layer + " attends paged, but the step was planned with T = " + planT);
        try (var g = Autograd.noGrad()) {
            write(layer, k, v);
            return ScaledDotProductAttention.decode(q, pool.pagedKeys(layer), pool.pagedValues(layer), blockTable, seqLens);
        }
    }

    /** Layer 0 plans the step unless the thinker already has; every layer checks it appends what was planned. */
    private void planLayer(int layer, Tensor k) {
        if (layer == 0) {
            if (!planned) plan(k.size(0), k.size(2), k.size(1), k.size(3), k.dtype(), k.device());
            else if (pool.keys[0].dtype() != k.dtype() || !pool.keys[0].device().equals(k.device()))
                throw new IllegalStateException("kv cache: layer 0 appends " + k.dtype().lower() + " keys on " + k.device()
                        + " to a pool of " + pool.keys[0].dtype().lower() + " on " + pool.keys[0].device());
            planned = false;
        }
        int b = k.size(0), t = k.size(2);
        if (t != planT || b != rows.size())
            throw new IllegalStateException("kv cache: layer " + layer + " appends " + Arrays.toString(k.shape())
                    + " but layer 0 planned " + rows.size() + " rows of " + planT + " tokens");
    }

    /**
     * Plans this step before its layers run (the thinker does, so that the gather index lives in the
     * step's scope, not in layer 0's): keys [b, kvHeads, t, headDim] of dtype on device.
     */
    void planStep(int b, int t, int kvHeads, int headDim, DType dtype, Device device) {
        plan(b, t, kvHeads, headDim, dtype, device);
        planned = true;
    }

    /** Blocks for the new tokens, their slots, the gather index (or the block table); the rows' lengths move on by T. */
    private void plan(int b, int t, int kvHeads, int headDim, DType dtype, Device device) {
        if (rows == null) {                                    // own pool, first pass: B is known now
            int perRow = (maxTokens + OWN_BLOCK_SIZE - 1) / OWN_BLOCK_SIZE;
            pool = new KvBlockPool(layers, kvHeads, headDim, OWN_BLOCK_SIZE, 1 + b * perRow, dtype, device);
            List<Sequence> own = new ArrayList<>();
            for (int r = 0; r < b; r++) own.add(new Sequence(pool));
            rows = own;
        }
        if (b != rows.size())
            throw new IllegalArgumentException("kv cache: a batch of " + b + " rows for a cache of " + rows.size());
        if (kvHeads != pool.kvHeads || headDim != pool.headDim)
            throw new IllegalArgumentException("kv cache: k [" + b + ", " + kvHeads + ", " + t + ", " + headDim + "] does not fit a pool of "
                    + pool.kvHeads + " kv heads of " + pool.headDim);
        int past = length();
        for (int r = 0; r < b; r++) {
            Sequence seq = rows.get(r);
            if (seq.length + t > maxTokens)
                throw new IllegalStateException("kv cache: row " + r + " would hold " + (seq.length + t) + " tokens, more than its "
                        + maxTokens + " (new KvCache(layers, maxTokens))");
            seq.reserve(seq.length + t);
        }
        long[] slots = new long[b * t];
        for (int r = 0; r < b; r++) for (int j = 0; j < t; j++) slots[r * t + j] = rows.get(r).slot(rows.get(r).length + j);
        writeIndex = Tensor.of(slots, slots.length).to(device);
        if (decodes(t)) {
            int width = 0;
            for (Sequence seq : rows) width = Math.max(width, seq.blocks.size());
            int[] table = new int[b * width], lens = new int[b];
            for (int r = 0; r < b; r++) {
                Sequence seq = rows.get(r);
                for (int j = 0; j < seq.blocks.size(); j++) table[r * width + j] = seq.blocks.get(j);
                lens[r] = seq.length + t;
            }
            blockTable = Tensor.of(table, b, width).to(device);
            seqLens = Tensor.of(lens, b).to(device);
            gatherIndex = null;                                // made by append if asked for (not by the thinker's paged steps)
        } else {
            gatherIndex = gatherIndex(past, t, 0, device);
            blockTable = seqLens = null;
        }
        for (int r = 0; r < b; r++) {
            rows.get(r).length += t;
            rows.get(r).ropeDelta = ropeDeltas == null ? 0 : ropeDeltas[r];   // the prefill has just set them (Thinker.applyRopeDeltas)
        }
        planT = t;
        planPast = past;
    }

    /**
     * The batch view's slots (see the class comment) for a step of t tokens after past, each row holding its
     * length − moved tokens before the step (moved: 0 while planning, T once the lengths have moved on).
     */
    private Tensor gatherIndex(int past, int t, int moved, Device device) {
        long[] index = new long[rows.size() * (past + t)];     // slot 0 (the zero block) where a row is shorter than past
        for (int r = 0; r < rows.size(); r++) {
            Sequence seq = rows.get(r);
            int before = seq.length - moved;
            for (int j = 0; j < before + t; j++) index[r * (past + t) + (j < before ? j : past + j - before)] = seq.slot(j);
        }
        return Tensor.of(index, index.length).to(device);
    }

    /** Copies this step's k and v [B, nkv, T, d] into the planned slots of the layer's stores [slots, nkv, d]: one copy each. */
    private void write(int layer, Tensor k, Tensor v) {
        int b = k.size(0), t = k.size(2);
        IndexCopy.indexCopy(pool.keys[layer], writeIndex, k.transpose(1, 2).reshape(b * t, pool.kvHeads, pool.headDim));
        IndexCopy.indexCopy(pool.values[layer], writeIndex, v.transpose(1, 2).reshape(b * t, pool.kvHeads, pool.headDim));
    }

    private Tensor view(Tensor store, int b, int s) {
        if (gatherIndex == null) gatherIndex = gatherIndex(planPast, planT, planT, store.device());   // a paged step asked for it (tests do)
        return store.indexSelect(0, gatherIndex).reshape(b, s, pool.kvHeads, pool.headDim).transpose(1, 2);   // [B, nkv, S, d]
    }

    /** A cache with its own pool frees it; one over shared sequences leaves them to their owner. */
    @Override
    public void close() {
        if (!ownsPool || pool == null) return;
        for (Sequence s : rows) s.free();
        pool.close();
        pool = null;
    }
}

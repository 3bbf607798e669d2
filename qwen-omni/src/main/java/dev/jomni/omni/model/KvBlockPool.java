package dev.jomni.omni.model;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.ArrayDeque;

/**
 * Keys and values of every decoder layer in fixed-size blocks, allocated once (vLLM's paged KV cache,
 * arXiv:2309.06180): per layer one K and one V tensor [blocks·blockSize, nkv, d], token-major so that
 * the slots of any set of sequences are read with one indexSelect, written with one indexCopy, and viewed
 * without a copy as the [blocks, nkv, blockSize, d] caches the paged decode op reads. A sequence owns a block table
 * ({@link KvCache.Sequence}); blocks are reference-counted, so the samples of one prompt share its
 * blocks ({@link KvCache.Sequence#fork}, copy-on-write), and go back to the free list when the last
 * sequence holding them ends. Block 0 is never handed out: it stays zero and fills the padding of a
 * batch view, so masked keys are finite.
 *
 * <p>Not thread-safe: the engine thread allocates and frees.
 */
public final class KvBlockPool implements AutoCloseable {
    final int layers, kvHeads, headDim, blockSize, blocks;
    final Tensor[] keys, values;                               // per layer [blocks·blockSize, nkv, d]
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    private final int[] refs;                                  // sequences holding each block
    private final long bytes;

    /**
     * @param blocks blocks in the pool, the reserved zero block included (so blocks − 1 can be handed out)
     */
    public KvBlockPool(int layers, int kvHeads, int headDim, int blockSize, int blocks, DType dtype, Device device) {
        if (layers <= 0 || kvHeads <= 0 || headDim <= 0 || blockSize <= 0 || blocks < 2)
            throw new IllegalArgumentException("kv pool: layers " + layers + ", kv heads " + kvHeads + ", head_dim " + headDim
                    + ", block size " + blockSize + ", blocks " + blocks + " (all positive, at least 2 blocks: block 0 is the zero block)");
        long slots = (long) blocks * blockSize;
        if (slots > Integer.MAX_VALUE)
            throw new IllegalArgumentException("kv pool: " + blocks + " blocks of " + blockSize + " tokens exceed 2^31 slots");
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.blockSize = blockSize;
        this.blocks = blocks;
        keys = new Tensor[layers];
        values = new Tensor[layers];
        try (var g = Autograd.noGrad()) {
            for (int l = 0; l < layers; l++) {
                keys[l] = Scope.unscoped(Tensor.zeros(device, dtype, (int) slots, kvHeads, headDim));
                values[l] = Scope.unscoped(Tensor.zeros(device, dtype, (int) slots, kvHeads, headDim));
            }
        }
        for (int b = 1; b < blocks; b++) free.add(b);
        refs = new int[blocks];
        bytes = 2L * layers * slots * kvHeads * headDim * dtype.byteSize;
    }

    /** A pool shaped for {@code thinker}'s decoder, in its weights' dtype and on its device. */
    public static KvBlockPool of(Thinker thinker, int blockSize, int blocks) {
        var t = thinker.config.text();
        return new KvBlockPool(t.numHiddenLayers(), t.numKeyValueHeads(), t.headDim(), blockSize, blocks,
                thinker.lmHead.weight.value().dtype(), thinker.device());
    }

    public int blockSize() { return blockSize; }

    /** Blocks that can be handed out (the zero block excluded). */
    public int capacity() { return blocks - 1; }

    public int freeBlocks() { return free.size(); }

    /** Device bytes held by the pool's K and V tensors. */
    public long bytes() { return bytes; }

    /** Blocks needed to hold {@code tokens} tokens. */
    public int blocksFor(long tokens) { return (int) ((tokens + blockSize - 1) / blockSize); }

    int allocate() {
        Integer b = free.poll();
        if (b == null) throw new IllegalStateException("kv pool: all " + capacity() + " blocks of " + blockSize + " tokens are in use");
        refs[b] = 1;
        return b;
    }

    /** One more sequence holds {@code block}. */
    void retain(int block) {
        assert refs[block] > 0 : "block " + block + " is free";
        refs[block]++;
    }

    /** Whether more than one sequence holds {@code block} (a write must copy it first). */
    boolean shared(int block) { return refs[block] > 1; }

    void release(int block) {
        assert block > 0 && block < blocks && refs[block] > 0 : "block " + block + " released twice or out of range";
        if (--refs[block] == 0) free.add(block);
    }

    /** Layer {@code layer}'s keys as the paged decode op reads them: [blocks, nkv, blockSize, d], a view of the store. */
    Tensor pagedKeys(int layer) { return paged(keys[layer]); }

    /** Layer {@code layer}'s values as {@link #pagedKeys} gives its keys. */
    Tensor pagedValues(int layer) { return paged(values[layer]); }

    private Tensor paged(Tensor store) { return store.reshape(blocks, blockSize, kvHeads, headDim).permute(0, 2, 1, 3); }

    /** Copies the first {@code tokens} slots of block {@code from} into block {@code to}, in every layer. */
    void copyBlock(int from, int to, int tokens) {
        try (var g = Autograd.noGrad()) {
            for (int l = 0; l < layers; l++) {
                keys[l].narrow(0, (long) to * blockSize, tokens).assign(keys[l].narrow(0, (long) from * blockSize, tokens));
                values[l].narrow(0, (long) to * blockSize, tokens).assign(values[l].narrow(0, (long) from * blockSize, tokens));
            }
        }
    }

    @Override
    public void close() {
        for (int l = 0; l < layers; l++) {
            keys[l].close();
            values[l].close();
        }
    }
}

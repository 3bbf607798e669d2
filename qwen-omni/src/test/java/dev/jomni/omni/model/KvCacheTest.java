package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class KvCacheTest {
    static Thinker thinker;

    @BeforeAll
    static void load() { thinker = Thinker.load(ThinkerParityTest.tiny("model"), DType.F32, Device.cpu()); }

    /**
     * The old cache returned cat(all appended k) along the token axis; attention sees only what append returns,
     * so a view bit-equal to that concatenation gives the old logits bit for bit.
     */
    @Test
    void appendReturnsExactlyTheConcatenationOfEveryAppendedStep() {
        var g = new Generator(3);
        int b = 3, nkv = 2, d = 5;
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(2, 40)) {
            List<Tensor> ks = new ArrayList<>(), vs = new ArrayList<>();
            for (int t : new int[] {7, 1, 1, 17, 1, 9}) {                  // crosses block boundaries (block size 16)
                Tensor k = Tensor.randn(g, DType.F32, b, t, nkv, d).transpose(1, 2), v = Tensor.randn(g, DType.F32, b, nkv, t, d);
                ks.add(k);
                vs.add(v);
                Tensor[] kv0 = cache.append(0, k, v);
                Tensor[] kv1 = cache.append(1, v, k);                        // another layer, other data
                assertArrayEquals(Tensor.cat(ks, 2).toDoubleArray(), kv0[0].toDoubleArray(), 0, "layer 0 keys after a step of " + t);
                assertArrayEquals(Tensor.cat(vs, 2).toDoubleArray(), kv0[1].toDoubleArray(), 0, "layer 0 values after a step of " + t);
                assertArrayEquals(Tensor.cat(vs, 2).toDoubleArray(), kv1[0].toDoubleArray(), 0, "layer 1 keys");
                assertArrayEquals(new int[] {b, nkv, cache.length(), d}, kv0[0].shape());
            }
            assertEquals(36, cache.length());
        }
    }

    @Test
    void rowsOfDifferentLengthsSeeTheirTokensThenTheZeroBlockThenTheNewTokens() {
        var g = new Generator(5);
        try (var noGrad = Autograd.noGrad(); var pool = new KvBlockPool(1, 1, 2, 4, 8, DType.F32, Device.cpu())) {
            var a = new KvCache.Sequence(pool);
            var c = new KvCache.Sequence(pool);
            Tensor ka = Tensor.randn(g, DType.F32, 1, 1, 6, 2), kc = Tensor.randn(g, DType.F32, 1, 1, 2, 2);
            new KvCache(pool, List.of(a)).append(0, ka, ka);
            new KvCache(pool, List.of(c)).append(0, kc, kc);
            assertEquals(2, a.blocks());
            assertEquals(1, c.blocks());
            Tensor step = Tensor.randn(g, DType.F32, 2, 1, 1, 2);
            var batch = new KvCache(pool, List.of(a, c));
            Tensor k = batch.append(0, step, step)[0];                          // [2, 1, 7, 2]
            double[] want = new double[2 * 7 * 2];
            double[] av = ka.toDoubleArray(), cv = kc.toDoubleArray(), sv = step.toDoubleArray();
            System.arraycopy(av, 0, want, 0, 12);
            System.arraycopy(sv, 0, want, 12, 2);
            System.arraycopy(cv, 0, want, 14, 4);                              // row 1: 2 tokens, 4 zero slots, the new token
            System.arraycopy(sv, 2, want, 14 + 12, 2);
            assertArrayEquals(want, k.toDoubleArray(), 0);
            assertEquals(7, a.length());
            assertEquals(3, c.length());
            assertEquals(7 - 3, pool.freeBlocks());
            a.free();
            c.free();
            assertEquals(7, pool.freeBlocks(), "every block is back");
        }
    }

    @Test
    void anExhaustedPoolSaysSo() {
        try (var noGrad = Autograd.noGrad(); var pool = new KvBlockPool(1, 1, 2, 4, 2, DType.F32, Device.cpu())) {
            var s = new KvCache.Sequence(pool);
            Tensor k = Tensor.zeros(DType.F32, 1, 1, 5, 2);
            var e = assertThrows(IllegalStateException.class, () -> new KvCache(pool, List.of(s)).append(0, k, k));
            assertTrue(e.getMessage().contains("all 1 blocks of 4 tokens are in use"), e.getMessage());
        }
    }

    /**
     * Memory per decode step: the cache's storage is allocated once; a step allocates only the gather index, the
     * write index (the new token's slot) and two gathered views per layer (B·S·nkv·d each, linear in S, the size attention reads anyway) and leaves
     * nothing live behind once its scope closes. The old cache re-allocated and copied the whole cache every
     * step and kept it.
     */
    @Test
    void appendAllocatesOnlyTheGatheredViews() {
        int nkv = 2, d = 16;
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(2, 300)) {
            Tensor prompt = Tensor.zeros(DType.F32, 1, nkv, 40, d);
            cache.append(0, prompt, prompt);
            cache.append(1, prompt, prompt);
            for (int step = 0; step < 100; step++) {
                int s = cache.length() + 1;
                try (var scope = Scope.open()) {
                    Tensor k = Tensor.full(DType.F32, step, 1, nkv, 1, d);
                    long mark = Memory.mark();
                    cache.append(0, k, k);
                    long[] layer0 = Memory.liveSince(mark);
                    assertEquals(4, layer0[0], "the gather and write indices and the two gathered views, nothing else");
                    assertEquals(2L * s * nkv * d * 4 + 8L * s + 8, layer0[1], "bytes of layer 0's append at S = " + s);
                    mark = Memory.mark();
                    cache.append(1, k, k);
                    assertEquals(2L * s * nkv * d * 4, Memory.liveSince(mark)[1], "layer 1 reuses the index");
                }
            }
        }
    }

    /**
     * A paged decode step over a shared pool gathers nothing: per step only the write index [B], the block table
     * [B, maxBlocks] and the lengths [B] (4 bytes a block, not S·nkv·d), per layer only the attention's output; and
     * what it attends to is each row's own tokens, the new one included, as full attention over them gives.
     */
    @Test
    void aPagedStepAllocatesOnlyItsTablesAndAttendsToEachRowsOwnTokens() {
        var g = new Generator(13);
        int nkv = 2, nh = 4, d = 8, bs = 4;
        try (var noGrad = Autograd.noGrad(); var pool = new KvBlockPool(2, nkv, d, bs, 64, DType.F32, Device.cpu())) {
            var a = new KvCache.Sequence(pool);
            var c = new KvCache.Sequence(pool);
            List<List<Tensor>> keys = List.of(new ArrayList<>(), new ArrayList<>()), values = List.of(new ArrayList<>(), new ArrayList<>());
            int r = 0;
            for (var seq : List.of(a, c)) {
                int n = r == 0 ? 30 : 5;
                Tensor k = Tensor.randn(g, DType.F32, 1, nkv, n, d), v = Tensor.randn(g, DType.F32, 1, nkv, n, d);
                var prefill = new KvCache(pool, List.of(seq));
                prefill.append(0, k, v);
                prefill.append(1, v, k);
                keys.get(r).add(k);
                values.get(r++).add(v);
            }
            for (int step = 0; step < 12; step++) {                           // row c crosses block boundaries
                var batch = new KvCache(pool, List.of(a, c));
                assertTrue(batch.decodes(1));
                Tensor q = Tensor.randn(g, DType.F32, 2, nh, 1, d), k = Tensor.randn(g, DType.F32, 2, nkv, 1, d), v = Tensor.randn(g, DType.F32, 2, nkv, 1, d);
                for (int row = 0; row < 2; row++) {
                    keys.get(row).add(k.narrow(0, row, 1));
                    values.get(row).add(v.narrow(0, row, 1));
                }
                try (var scope = Scope.open()) {
                    long mark = Memory.mark();
                    Tensor out = batch.attend(0, q, k, v);
                    long[] live = Memory.liveSince(mark);
                    int width = Math.max(a.blocks(), c.blocks());
                    assertEquals(4, live[0], "the write index, block table, lengths and the output, nothing else");
                    assertEquals(8L * 2 + 4L * 2 * width + 4L * 2 + 4L * 2 * nh * d, live[1], "bytes of layer 0's paged step");
                    mark = Memory.mark();
                    batch.attend(1, q, v, k);
                    assertEquals(4L * 2 * nh * d, Memory.liveSince(mark)[1], "layer 1 reuses the step's tables");
                    for (int row = 0; row < 2; row++) {
                        Tensor want = q.narrow(0, row, 1).scaledDotProductAttention(Tensor.cat(keys.get(row), 2), Tensor.cat(values.get(row), 2), null);
                        assertArrayEquals(want.toDoubleArray(), out.narrow(0, row, 1).toDoubleArray(), 1e-6, "row " + row + " at step " + step);
                    }
                }
            }
            a.free();
            c.free();
            assertEquals(63, pool.freeBlocks());
        }
    }

    @Test
    void decodingHoldsNoMoreMemoryAfterEachStep() {
        var t = thinker.config.text();
        long[] prompt = new long[40];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 100 + 7 * i;
        long[] ones = new long[200];
        Arrays.fill(ones, 1);
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(t.numHiddenLayers(), 200)) {
            try (var scope = Scope.open()) {
                thinker.forward(Tensor.of(prompt, 1, prompt.length), Tensor.of(Arrays.copyOf(ones, prompt.length), 1, prompt.length), null, cache);
            }
            long mark = Memory.mark();                          // storages made from here on; older garbage does not count
            for (int step = 0; step < 60; step++) {
                int s = cache.length() + 1;
                try (var scope = Scope.open()) {
                    thinker.forward(Tensor.of(new long[] {300 + step}, 1, 1), Tensor.of(Arrays.copyOf(ones, s), 1, s), null, cache);
                }
                assertArrayEquals(new long[] {0, 0}, Memory.liveSince(mark), "storages and bytes left live by decode steps 0.." + step);
            }
        }
    }

    /** The engine's decode step (rows of different lengths over the paged pool) gives each row the logits it gets alone. */
    @Test
    void aBatchOfSequencesOfDifferentLengthsGivesEachItsOwnLogits() {
        int v = thinker.config.text().vocabSize();
        long[][] prompts = {{1005, 1004, 10, 100, 200, 300, 400, 500, 600}, {1005, 1004, 10, 77}};
        try (var noGrad = Autograd.noGrad(); var pool = KvBlockPool.of(thinker, 4, 16)) {
            List<KvCache.Sequence> seqs = new ArrayList<>();
            double[][] alone = new double[2][];
            for (long[] p : prompts) {
                var seq = new KvCache.Sequence(pool);
                long[] ones = new long[p.length];
                Arrays.fill(ones, 1);
                thinker.forward(Tensor.of(p, 1, p.length), Tensor.of(ones, 1, p.length), null, new KvCache(pool, List.of(seq)));
                seqs.add(seq);
                long[] more = Arrays.copyOf(p, p.length + 1);
                more[p.length] = 42;
                long[] ones2 = Arrays.copyOf(ones, p.length + 1);
                ones2[p.length] = 1;
                double[] all = thinker.forward(Tensor.of(more, 1, more.length), Tensor.of(ones2, 1, more.length), null, null).logits().toDoubleArray();
                alone[seqs.size() - 1] = Arrays.copyOfRange(all, p.length * v, (p.length + 1) * v);
            }
            int past = prompts[0].length;
            long[] mask = new long[2 * (past + 1)];
            for (int r = 0; r < 2; r++) {
                for (int j = 0; j < prompts[r].length; j++) mask[r * (past + 1) + j] = 1;
                mask[r * (past + 1) + past] = 1;
            }
            var batch = new KvCache(pool, seqs);
            assertTrue(batch.decodes(1), "the step attends over the paged pool (ScaledDotProductAttention.decode)");
            var out = thinker.forward(Tensor.of(new long[] {42, 42}, 2, 1), Tensor.of(mask, 2, past + 1), null, batch);
            double[] got = out.logits().toDoubleArray();
            for (int r = 0; r < 2; r++) {
                assertEquals(prompts[r].length, out.positions()[0][r][0], "row " + r + ": the position counts its own tokens only");
                double[] row = Arrays.copyOfRange(got, r * v, (r + 1) * v);
                for (int i = 0; i < v; i++) assertEquals(alone[r][i], row[i], 1e-5, "row " + r + " logit " + i);
            }
        }
    }

    @Test
    void aForkSharesTheBlocksAndCopiesOnlyTheLastOneWhenItWrites() {
        var g = new Generator(11);
        try (var noGrad = Autograd.noGrad(); var pool = new KvBlockPool(2, 1, 3, 4, 10, DType.F32, Device.cpu())) {
            var a = new KvCache.Sequence(pool);
            Tensor prompt = Tensor.randn(g, DType.F32, 1, 1, 6, 3);             // 6 tokens: one full block, one half-full
            new KvCache(pool, List.of(a)).append(0, prompt, prompt);
            var b = a.fork();
            assertEquals(9 - 2, pool.freeBlocks(), "the fork copies nothing");
            Tensor ta = Tensor.randn(g, DType.F32, 1, 1, 1, 3), tb = Tensor.randn(g, DType.F32, 1, 1, 1, 3);
            Tensor ka = new KvCache(pool, List.of(a)).append(0, ta, ta)[0];
            assertEquals(9 - 3, pool.freeBlocks(), "the first writer copies the shared half-full block");
            Tensor kb = new KvCache(pool, List.of(b)).append(0, tb, tb)[0];
            assertEquals(9 - 3, pool.freeBlocks(), "the last holder writes in place");
            assertArrayEquals(Tensor.cat(List.of(prompt, ta), 2).toDoubleArray(), ka.toDoubleArray(), 0);
            assertArrayEquals(Tensor.cat(List.of(prompt, tb), 2).toDoubleArray(), kb.toDoubleArray(), 0);
            assertArrayEquals(Tensor.cat(List.of(prompt, ta), 2).toDoubleArray(), new KvCache(pool, List.of(a)).append(0, ta, ta)[0].narrow(2, 0, 7).toDoubleArray(), 0,
                    "b's write did not touch a's copy");
            a.free();
            assertEquals(9 - 2, pool.freeBlocks(), "b still holds the shared full block and its own");
            b.free();
            assertEquals(9, pool.freeBlocks());
        }
    }
}

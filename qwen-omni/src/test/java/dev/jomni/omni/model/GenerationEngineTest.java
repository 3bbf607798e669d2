package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.npy;
import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The engine on the tiny fixture against {@link Generation} run one request at a time. */
class GenerationEngineTest {
    static Thinker thinker;
    static List<long[]> prompts = new ArrayList<>();
    static List<Thinker.Audio> clips = new ArrayList<>();

    @BeforeAll
    static void load() {
        thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        Tensor ids = npy("input_ids.npy"), labels = npy("labels.npy");
        Thinker.Audio audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        long[] id = ids.toLongArray(), lab = labels.toLongArray();
        int t = ids.size(1);
        for (int r = 0; r < 2; r++) {                                          // the fixture's two audio prompts
            int len = 0;
            while (lab[r * t + len] == -100) len++;
            prompts.add(Arrays.copyOfRange(id, r * t, r * t + len));
            clips.add(new Thinker.Audio(audio.features().narrow(0, r, 1), new int[] {audio.frames()[r]}));
        }
        for (int n : new int[] {3, 11, 6, 20}) {                               // text-only prompts of other lengths
            long[] p = new long[n];
            for (int i = 0; i < n; i++) p[i] = (37L * i + 11L * n) % 1000;
            prompts.add(p);
            clips.add(null);
        }
    }

    static GenerationEngine engine(int blocks, int maxRunning) {
        return new GenerationEngine(thinker, new GenerationEngine.Options(4, blocks, maxRunning, 64));
    }

    @Test
    void continuousBatchingGivesEachRequestItsOneByOneGreedyTokens() {
        int[] maxNew = {9, 5, 12, 1, 7, 10};
        try (var engine = engine(200, 4)) {
            List<GenerationEngine.Handle> handles = new ArrayList<>();
            List<List<Long>> streamed = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                List<Long> got = new ArrayList<>();
                streamed.add(got);
                handles.add(engine.submit(new GenerationEngine.Request(prompts.get(i), clips.get(i), Generation.Settings.greedy(maxNew[i]), null), got::add));
                if (i % 2 == 1) for (int s = 0; s < 3; s++) engine.step();    // requests join a batch already decoding
            }
            engine.runUntilIdle();
            for (int i = 0; i < prompts.size(); i++) {
                long[] want = Generation.greedy(thinker, prompts.get(i), clips.get(i), maxNew[i]);
                var result = handles.get(i).result().join();
                assertArrayEquals(want, result.tokens(), "request " + i);
                assertEquals(GenerationEngine.Finish.LENGTH, result.finish());
                assertEquals(Arrays.stream(want).boxed().toList(), streamed.get(i), "request " + i + " streamed");
            }
            assertEquals(0, engine.stats().blocksUsed(), "every block is back in the pool");
        }
    }

    /**
     * Greedy over the paged decode path in the situations it must get right at once: prompts of 7, 8 and 9 tokens
     * (blocks of 4: the first decoded token fills a block, opens one, or lands mid-block) joining a running batch
     * at different steps, n = 3 samples sharing a prompt whose last block is partly filled (copy-on-write on the
     * first write), and the LoRA adapter on some requests only. Each equals {@link Generation#greedy} alone (with
     * the adapter applied for its requests).
     */
    @Test
    void pagedDecodeOfMixedLengthsSharedPromptsAndAdaptersGivesTheOneByOneGreedyTokens() {
        List<long[]> ps = new ArrayList<>();
        for (int n : new int[] {7, 8, 9, 6}) {
            long[] p = new long[n];
            for (int i = 0; i < n; i++) p[i] = (53L * i + 29L * n) % 1000;
            ps.add(p);
        }
        int[] maxNew = {11, 6, 9, 13};
        String[] adapter = {null, "tuned", null, "tuned"};
        long[][] want = new long[4][];
        for (int i = 0; i < 4; i++) if (adapter[i] == null) want[i] = Generation.greedy(thinker, ps.get(i), null, maxNew[i]);
        long[] shared = Generation.greedy(thinker, ps.get(2), null, 10);
        LoraAdapter applied = LoraAdapter.apply(tiny("lora/adapter"), thinker);
        try {
            for (int i = 0; i < 4; i++) if (adapter[i] != null) want[i] = Generation.greedy(thinker, ps.get(i), null, maxNew[i]);
        } finally {
            applied.detach();
        }
        assertFalse(Arrays.equals(want[3], Generation.greedy(thinker, ps.get(3), null, maxNew[3])), "the adapter changes request 3's tokens");
        try (var engine = engine(200, 8)) {
            engine.loadAdapter("tuned", tiny("lora/adapter"));
            List<GenerationEngine.Handle> handles = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                handles.add(engine.submit(new GenerationEngine.Request(ps.get(i), null, Generation.Settings.greedy(maxNew[i]), adapter[i]), t -> {}));
                for (int s = 0; s < i + 1; s++) engine.step();                  // each joins a batch already decoding
            }
            var samples = engine.submit(new GenerationEngine.Request(ps.get(2), null, Generation.Settings.greedy(10), null), 3, i -> t -> {});
            int before = engine.stats().blocksUsed();
            engine.step();                                                     // prefilled once: 3 blocks of 9 tokens, then one token each
            int prompt = (ps.get(2).length + 3) / 4;
            assertTrue(engine.stats().blocksUsed() - before < 3 * prompt, "the samples share their prompt's blocks");
            engine.runUntilIdle();
            for (int i = 0; i < 4; i++) assertArrayEquals(want[i], handles.get(i).result().join().tokens(), "request " + i + " (" + adapter[i] + ")");
            for (int i = 0; i < 3; i++) assertArrayEquals(shared, samples.get(i).result().join().tokens(), "greedy sample " + i + " of the shared prompt");
            assertEquals(0, engine.stats().blocksUsed(), "every block is back in the pool");
        }
    }

    @Test
    void samplingFollowsEachRequestsSeedWhateverElseRuns() {
        var topK = new Generation.Settings(8, 1.0, 5, 0.9, 7, Set.of());
        var full = new Generation.Settings(8, 0.8, 0, 1.0, 3, Set.of());
        try (var engine = engine(200, 8)) {
            List<GenerationEngine.Handle> handles = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++)
                handles.add(engine.submit(new GenerationEngine.Request(prompts.get(i), clips.get(i), i % 2 == 0 ? topK : full, null), t -> {}));
            engine.runUntilIdle();
            for (int i = 0; i < prompts.size(); i++)
                assertArrayEquals(Generation.generate(thinker, prompts.get(i), clips.get(i), i % 2 == 0 ? topK : full, t -> {}),
                        handles.get(i).result().join().tokens(), "request " + i);
        }
    }

    @Test
    void aStopTokenEndsOnlyItsSequence() {
        long[] free = Generation.greedy(thinker, prompts.get(2), null, 10);
        long stop = free[3];
        int at = 0;
        while (free[at] != stop) at++;
        var stopping = new Generation.Settings(10, 0, 0, 1, 0, Set.of(stop));
        try (var engine = engine(200, 4)) {
            var a = engine.submit(new GenerationEngine.Request(prompts.get(2), null, stopping, null), t -> {});
            var b = engine.submit(new GenerationEngine.Request(prompts.get(3), null, Generation.Settings.greedy(10), null), t -> {});
            engine.runUntilIdle();
            var ra = a.result().join();
            assertArrayEquals(Arrays.copyOf(free, at + 1), ra.tokens(), "up to and with the stop token");
            assertEquals(GenerationEngine.Finish.STOP, ra.finish());
            assertArrayEquals(Generation.greedy(thinker, prompts.get(3), null, 10), b.result().join().tokens());
        }
    }

    @Test
    void adaptersAreAppliedPerRequestAndTheBaseStaysAsLoaded() {
        var s = new Generation.Settings(8, 1.0, 0, 1.0, 7, Set.of());
        long[] base = Generation.generate(thinker, prompts.get(1), clips.get(1), s, t -> {});
        LoraAdapter applied = LoraAdapter.apply(tiny("lora/adapter"), thinker);
        long[] adapted = Generation.generate(thinker, prompts.get(1), clips.get(1), s, t -> {});
        applied.detach();
        assertFalse(Arrays.equals(base, adapted), "the adapter changes this sample");
        try (var engine = engine(200, 8)) {
            engine.loadAdapter("tuned", tiny("lora/adapter"));
            var h = new ArrayList<GenerationEngine.Handle>();
            for (String name : new String[] {null, "tuned", null, "tuned"})
                h.add(engine.submit(new GenerationEngine.Request(prompts.get(1), clips.get(1), s, name), t -> {}));
            engine.runUntilIdle();
            assertArrayEquals(base, h.get(0).result().join().tokens());
            assertArrayEquals(adapted, h.get(1).result().join().tokens());
            assertArrayEquals(base, h.get(2).result().join().tokens());
            assertArrayEquals(adapted, h.get(3).result().join().tokens());
            engine.removeAdapter("tuned");
            var e = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new GenerationEngine.Request(prompts.get(1), null, s, "tuned"), t -> {}));
            assertTrue(e.getMessage().startsWith("model: no adapter named tuned"), e.getMessage());
        }
        assertArrayEquals(base, Generation.generate(thinker, prompts.get(1), clips.get(1), s, t -> {}), "the base is untouched");
    }

    @Test
    void cancelledQueuedAndFailingRequestsGiveTheirBlocksBack() {
        try (var engine = engine(24, 3)) {                                    // 23 blocks of 4: room for the first two requests only
            var first = engine.submit(new GenerationEngine.Request(prompts.get(5), null, Generation.Settings.greedy(30), null), t -> {});
            var second = engine.submit(new GenerationEngine.Request(prompts.get(4), null, Generation.Settings.greedy(30), null), t -> {});
            var third = engine.submit(new GenerationEngine.Request(prompts.get(2), null, Generation.Settings.greedy(4), null), t -> {});
            engine.step();
            assertEquals(1, engine.stats().waiting(), "the third waits for blocks");
            first.cancel();
            engine.runUntilIdle();
            assertEquals(GenerationEngine.Finish.CANCELLED, first.result().join().finish());
            assertEquals(30, second.result().join().tokens().length);
            assertArrayEquals(Generation.greedy(thinker, prompts.get(2), null, 4), third.result().join().tokens());
            var tooLong = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(new GenerationEngine.Request(prompts.get(0), null, Generation.Settings.greedy(200), null), t -> {}));
            assertTrue(tooLong.getMessage().startsWith("max_tokens:"), tooLong.getMessage());
            var broken = engine.submit(new GenerationEngine.Request(prompts.get(0), null, Generation.Settings.greedy(3), null), t -> {});
            engine.runUntilIdle();                                                // audio placeholders but no audio: the thinker refuses
            var r = broken.result().join();
            assertEquals(GenerationEngine.Finish.ERROR, r.finish());
            assertTrue(r.error().contains("audio placeholders"), r.error());
            assertEquals(0, engine.stats().blocksUsed(), "every block is back in the pool");
        }
    }

    @Test
    void theEngineThreadServesRequestsFromOtherThreads() throws Exception {
        try (var engine = engine(200, 4)) {
            engine.start();
            List<GenerationEngine.Handle> handles = new ArrayList<>();
            for (int i = 2; i < prompts.size(); i++)
                handles.add(engine.submit(new GenerationEngine.Request(prompts.get(i), null, Generation.Settings.greedy(5), null), t -> {}));
            for (int i = 2; i < prompts.size(); i++)
                assertArrayEquals(Generation.greedy(thinker, prompts.get(i), null, 5), handles.get(i - 2).result().get().tokens(), "request " + i);
        }
    }

    @Test
    void nSamplesShareThePromptAndEachFollowsItsSeed() {
        var s = new Generation.Settings(10, 1.0, 8, 0.95, 21, Set.of());
        int n = 4;
        try (var engine = engine(400, 8)) {
            var handles = engine.submit(new GenerationEngine.Request(prompts.get(0), clips.get(0), s, null), n, i -> t -> {});
            engine.step();
            int shared = engine.stats().blocksUsed();
            int alone = n * ((prompts.get(0).length + 1 + 3) / 4);
            assertTrue(shared < alone, "the samples share the prompt's blocks: " + shared + " used, " + alone + " without sharing");
            engine.runUntilIdle();
            for (int i = 0; i < n; i++) {
                var si = new Generation.Settings(10, 1.0, 8, 0.95, 21 + i, Set.of());
                assertArrayEquals(Generation.generate(thinker, prompts.get(0), clips.get(0), si, t -> {}), handles.get(i).result().join().tokens(), "sample " + i);
            }
            assertEquals(0, engine.stats().blocksUsed());
        }
    }

    @Test
    void minPAndTheRepetitionPenaltyPickAsGenerationDoes() {
        var penalised = new Generation.Settings(12, 0, 0, 1, 0, Set.of(), 0, 1.8);
        var minP = new Generation.Settings(12, 1.0, 10, 1.0, 9, Set.of(), 0.3, 1.0);
        var both = new Generation.Settings(12, 0.7, 0, 0.9, 4, Set.of(), 0.1, 1.3);
        List<Generation.Settings> settings = List.of(penalised, minP, both);
        try (var engine = engine(300, 8)) {
            List<GenerationEngine.Handle> handles = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++)
                handles.add(engine.submit(new GenerationEngine.Request(prompts.get(i), clips.get(i), settings.get(i % 3), null), t -> {}));
            engine.runUntilIdle();
            for (int i = 0; i < prompts.size(); i++)
                assertArrayEquals(Generation.generate(thinker, prompts.get(i), clips.get(i), settings.get(i % 3), t -> {}),
                        handles.get(i).result().join().tokens(), "request " + i);
        }
        long[] plain = Generation.greedy(thinker, prompts.get(3), null, 12);
        long[] penalisedTokens = Generation.generate(thinker, prompts.get(3), null, penalised, t -> {});
        assertFalse(Arrays.equals(plain, penalisedTokens), "the penalty changes the greedy answer of the random model");
    }

    @Test
    void theRepetitionPenaltyAndMinPFollowTransformers() {
        double[] logits = {2.0, -1.0, 0.5, 3.0};
        Generation.penalize(logits, new long[] {0, 1, 1}, new long[] {3, 0}, 1, 2.0);    // seen: 0, 1, 3 (out's 0 not produced yet)
        assertArrayEquals(new double[] {1.0, -2.0, 0.5, 1.5}, logits, 0);
        // min-p 0.5 at temperature 1: p ∝ e^3, e^2, e^0.5: e^0.5 / e^3 < 0.5 drops; e^2 / e^3 = 0.37 < 0.5 drops too
        var s = new Generation.Settings(1, 1.0, 0, 1.0, 0, Set.of(), 0.5, 1.0);
        for (int seed = 0; seed < 20; seed++)
            assertEquals(1, Generation.pick(new double[] {2.0, 3.0, 0.5}, s, new dev.jomni.tensor.Generator(seed)));
        var loose = new Generation.Settings(1, 1.0, 0, 1.0, 0, Set.of(), 0.3, 1.0);
        boolean sawZero = false;
        for (int seed = 0; seed < 40; seed++) {
            long t = Generation.pick(new double[] {2.0, 3.0, 0.5}, loose, new dev.jomni.tensor.Generator(seed));
            assertTrue(t == 0 || t == 1, "token 2 (ratio 0.08) is below min-p 0.3: " + t);
            sawZero |= t == 0;
        }
        assertTrue(sawZero, "token 0 (ratio 0.37) stays");
    }
}

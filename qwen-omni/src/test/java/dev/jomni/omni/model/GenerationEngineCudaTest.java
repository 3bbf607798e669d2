package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jomni.cuda.Cuda;
import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.CudaDevice;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine on CUDA over its paged pool with the flash-decoding kernel (sdpa_decode_*): the tiny fixture's
 * config with head_dim 64 (the kernel takes 64 or 128), random bf16 weights. Greedy tokens are checked against
 * full forward passes over each request's prompt and the tokens before (teacher forcing, no cache): every token
 * must be the reference's argmax, or within a bf16 rounding margin of it (the decode kernel keeps the
 * probabilities in f32, the prefill kernel rounds them to bf16: near-ties may go either way). A decode step
 * synchronises with the host once, to read the tokens.
 */
@Tag("gpu")
class GenerationEngineCudaTest {
    @TempDir
    static Path dir;
    static Thinker thinker;

    @BeforeAll
    static void load() throws Exception {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        System.setProperty("jomni.attention.pagedDecode", "true");     // opt-in on CUDA: the path under test
        String config = Files.readString(tiny("model").resolve("config.json"));
        assertTrue(config.contains("\"head_dim\": 16,"), "the fixture's text head_dim");
        Path file = dir.resolve("config.json");
        Files.writeString(file, config.replace("\"head_dim\": 16,", "\"head_dim\": 64,"));
        thinker = RandomWeights.build(file, 5, DType.BF16, Device.cuda(0));
        assertEquals(64, thinker.config.text().headDim());
    }

    @AfterAll
    static void gatheredAgain() { System.clearProperty("jomni.attention.pagedDecode"); }

    static List<long[]> prompts() {
        List<long[]> ps = new ArrayList<>();
        for (int n : new int[] {7, 8, 9, 30, 3}) {
            long[] p = new long[n];
            for (int i = 0; i < n; i++) p[i] = (53L * i + 29L * n) % 1000 + 10;
            ps.add(p);
        }
        return ps;
    }

    @Test
    void greedyTokensOverThePagedPoolAreTheFullForwardsArgmax() {
        List<long[]> ps = prompts();
        int[] maxNew = {11, 6, 9, 14, 20};
        List<GenerationEngine.Handle> handles = new ArrayList<>();
        List<GenerationEngine.Handle> samples;
        try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(4, 400, 16, 64))) {
            for (int i = 0; i < ps.size(); i++) {
                handles.add(engine.submit(new GenerationEngine.Request(ps.get(i), null, Generation.Settings.greedy(maxNew[i]), null), t -> {}));
                for (int s = 0; s <= i; s++) engine.step();                     // each joins a batch already decoding
            }
            samples = engine.submit(new GenerationEngine.Request(ps.get(2), null, Generation.Settings.greedy(10), null), 3, i -> t -> {});
            engine.runUntilIdle();
            assertEquals(0, engine.stats().blocksUsed(), "every block is back in the pool");
        }
        int nearTies = 0, tokens = 0;
        for (int i = 0; i < ps.size(); i++) {
            long[] got = handles.get(i).result().join().tokens();
            assertEquals(maxNew[i], got.length);
            nearTies += checkAgainstFullForwards(ps.get(i), got, "request " + i);
            tokens += got.length;
        }
        long[] first = samples.getFirst().result().join().tokens();
        for (var h : samples) assertTrue(Arrays.equals(first, h.result().join().tokens()), "greedy samples of one shared prompt agree");
        nearTies += checkAgainstFullForwards(ps.get(2), first, "shared prompt");
        tokens += first.length;
        System.out.println("engine on CUDA: " + tokens + " greedy tokens, " + nearTies + " within the rounding margin of the argmax, the rest the argmax");
        assertTrue(nearTies * 10 <= tokens, nearTies + " of " + tokens + " tokens were near-ties: more than a tenth");
    }

    /** Each token against a full forward pass over the prompt and the tokens before it; returns the near-ties (not the argmax). */
    private static int checkAgainstFullForwards(long[] prompt, long[] got, String what) {
        int ties = 0;
        try (var g = Autograd.noGrad()) {
            for (int i = 0; i < got.length; i++) {
                long[] seq = Arrays.copyOf(prompt, prompt.length + i);
                System.arraycopy(got, 0, seq, prompt.length, i);
                long[] ones = new long[seq.length];
                Arrays.fill(ones, 1);
                float[] ref = thinker.nextTokenLogits(Tensor.of(seq, 1, seq.length), Tensor.of(ones, 1, seq.length), null, null).toFloatArray();
                int best = 0;
                float scale = 1;
                for (int v = 0; v < ref.length; v++) {
                    if (ref[v] > ref[best]) best = v;
                    scale = Math.max(scale, Math.abs(ref[v]));
                }
                float margin = ref[best] - ref[(int) got[i]];
                assertTrue(margin <= 2e-2f * scale, what + " token " + i + ": " + got[i] + " is " + margin + " below the argmax " + best + " (scale " + scale + ")");
                if (got[i] != best) ties++;
            }
        }
        return ties;
    }

    @Test
    void aDecodeStepSynchronisesOnceToReadItsTokens() {
        CudaDevice device = CudaBackend.of(Device.cuda(0));
        try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(4, 400, 16, 64))) {
            for (long[] p : prompts()) engine.submit(new GenerationEngine.Request(p, null, Generation.Settings.greedy(40), null), t -> {});
            for (int s = 0; s < 3; s++) engine.step();                         // admitted, prefilled, decoding, kernels loaded
            assertEquals(0, engine.stats().waiting());
            for (int s = 0; s < 5; s++) {                                       // crossing block boundaries on the way
                device.synchronize();
                device.traceSyncs(true);
                long before = device.hostSyncs();
                engine.step();
                long during = device.hostSyncs() - before;
                List<String> sites = device.syncSites();
                device.traceSyncs(false);
                assertEquals(1, during, "host synchronisations in a decode step of " + engine.stats().running() + " sequences: " + sites);
            }
        }
    }
}

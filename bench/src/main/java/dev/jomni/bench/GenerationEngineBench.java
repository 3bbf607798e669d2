package dev.jomni.bench;

import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The generation engine on the tiny in-repo thinker (CPU, f32): {@code concurrency} text requests of a
 * 24-token prompt, each decoding {@link #NEW_TOKENS} greedy tokens, submitted together and run to the end
 * (prefill included). Output tokens/s = concurrency · NEW_TOKENS / time. The peer, in the same run, is
 * {@link Generation#generateBatch} on the same prompts (one left-padded batch, the cache it used to grow by
 * concatenation). Run from the repository root:
 * {@code java -cp bench/target/bench.jar:bench/target/lib/* org.openjdk.jmh.Main GenerationEngineBench}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 5)
@Measurement(iterations = 3, time = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GenerationEngineBench {
    static final int NEW_TOKENS = 32, PROMPT = 24;

    @Param({"1", "16"})
    int concurrency;

    @Param({"qwen-omni/src/test/resources/tiny/model"})
    String model;

    private Thinker thinker;
    private GenerationEngine engine;
    private List<long[]> prompts;

    @Setup(Level.Trial)
    public void setup() {
        thinker = Thinker.load(Path.of(model), DType.F32, Device.cpu());
        engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, 1 + concurrency * 4, concurrency, concurrency));
        prompts = new ArrayList<>();
        for (int r = 0; r < concurrency; r++) {
            long[] p = new long[PROMPT];
            for (int i = 0; i < PROMPT; i++) p[i] = (31L * i + 17L * r) % 900 + 10;
            prompts.add(p);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() { engine.close(); }

    @Benchmark
    public int decode() {
        List<GenerationEngine.Handle> handles = new ArrayList<>();
        for (long[] p : prompts) handles.add(engine.submit(new GenerationEngine.Request(p, null, Generation.Settings.greedy(NEW_TOKENS), null), t -> {}));
        engine.runUntilIdle();
        int tokens = 0;
        for (var h : handles) tokens += h.result().join().tokens().length;
        return tokens;
    }

    @Benchmark
    public int generationBatch() {
        List<Thinker.Audio> none = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) none.add(null);
        int tokens = 0;
        for (long[] t : Generation.generateBatch(thinker, prompts, none, Generation.Settings.greedy(NEW_TOKENS), (row, token) -> {})) tokens += t.length;
        return tokens;
    }
}

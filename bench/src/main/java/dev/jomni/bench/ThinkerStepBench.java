package dev.jomni.bench;

import dev.jomni.nn.Module;
import dev.jomni.nn.Parameter;
import dev.jomni.omni.config.TextConfig;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.omni.model.ModelInputs;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Path;
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
 * One training step (forward, loss, backward) of the thinker, f32 on the CPU, bf16 on the GPU ({@code -p device=cuda}):
 * <ul>
 * <li>{@code tiny}: the tiny fixture model on its fixture batch (audio + text, labels), every parameter trained;</li>
 * <li>{@code layer2048}: one decoder layer at the real width (hidden 2048, 32/4 heads of 128, 128 experts of
 * 768, top-8) on {@code tokens} tokens (B=1; 512 on the CPU, 4096 on the GPU beside peers.py's
 * transformers layer) with a 1024-word vocabulary so that the layer dominates; the base is
 * frozen as under LoRA, only the embedding (hence the layer's input gradients) is trained.</li>
 * </ul>
 * After each iteration it prints the peak of the tensor core's live native bytes and of the Java heap
 * (native: above what was live before the step, i.e. the weights and inputs). Run from the repository root (the tiny model is read
 * from qwen-omni's test resources): {@code scripts/bench-step-cpu}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx8g"})
public class ThinkerStepBench {
    static final Path TINY = Path.of("qwen-omni/src/test/resources/tiny");

    @Param({"tiny", "layer2048"})
    public String shape;

    /** Tokens of the layer2048 batch (B=1): 512 on the CPU; 4096 on the GPU, as the transformers peer. */
    @Param({"512"})
    public int tokens;

    /** layer2048: "input" trains the embedding only (the frozen base of LoRA); "all" every parameter, as peers.py's layer. */
    @Param({"input"})
    public String grads;

    /** cpu (f32) or cuda (bf16 weights and activations, the GPU run beside peers.py). */
    @Param({"cpu"})
    public String device;

    private Thinker thinker;
    private Tensor ids, mask, labels;
    private Thinker.Audio audio;
    private long liveAtStart;

    @Setup(Level.Trial)
    public void setUp() {
        if (shape.equals("tiny")) {
            thinker = Thinker.load(TINY.resolve("model"), dtype(), device());
            var in = ModelInputs.read(TINY, TINY.resolve("model"), thinker.config);
            ids = in.inputIds().to(device());
            mask = in.attentionMask();
            audio = in.audio();
            labels = in.labels().to(device());
            for (Parameter p : thinker.parameters().values()) p.value().requiresGrad(true);
            return;
        }
        ThinkerConfig tiny = ThinkerConfig.load(TINY.resolve("model"));
        TextConfig t = tiny.text();
        var text = new TextConfig(2048, 1, 32, 4, 128, 1024, t.rmsNormEps(), 128, 8, 768, true, 1, List.of(), 0,
                0, false, t.ropeTheta(), t.mropeSection());
        var config = new ThinkerConfig(tiny.audioTokenId(), tiny.audioStartTokenId(), tiny.audioEndTokenId(),
                tiny.visionTokenIds(), false, text, tiny.audio());
        thinker = new Thinker(config);
        randomise(thinker, new Generator(7), dtype(), device());
        for (var e : thinker.parameters().entrySet())
            if (grads.equals("all") || e.getKey().equals("model.embed_tokens.weight")) e.getValue().value().requiresGrad(true);
        var gen = new Generator(11);
        ids = Tensor.rand(gen, DType.F32, 1, tokens).mul(1000).to(DType.I64).to(device());   // < 1024, never the audio id
        mask = Tensor.ones(DType.I64, 1, tokens);
        labels = Tensor.rand(gen, DType.F32, 1, tokens).mul(1000).to(DType.I64).to(device());
    }

    /** Every parameter ~ N(0, 0.02²), norms' weights 1 + N(0, 0.02²). */
    static void randomise(Module m, Generator gen, DType dtype, Device device) {
        for (var e : m.parameters().entrySet()) {
            Parameter p = e.getValue();
            Tensor v = Tensor.randn(gen, DType.F32, p.shape()).mul(0.02);
            if (e.getKey().endsWith("norm.weight") || e.getKey().endsWith("layernorm.weight")) v = v.add(1);
            p.set(v.to(dtype).to(device));
        }
    }

    private Device device() { return Device.parse(device); }

    private DType dtype() { return device.equals("cpu") ? DType.F32 : DType.BF16; }

    @Setup(Level.Iteration)
    public void resetPeaks() {
        for (Parameter p : thinker.parameters().values()) p.value().zeroGrad();
        System.gc();
        liveAtStart = Memory.resetPeak();
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) pool.resetPeakUsage();
    }

    @TearDown(Level.Iteration)
    public void reportPeaks() {
        long heap = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans())
            if (pool.getType() == MemoryType.HEAP) heap += pool.getPeakUsage().getUsed();
        System.out.printf("peak native %.1f MiB above the %.1f MiB held before the step, peak heap %.1f MiB%n",
                (Memory.peakBytes() - liveAtStart) / 1048576.0, liveAtStart / 1048576.0, heap / 1048576.0);
    }

    @Benchmark
    public double step() {
        try (var scope = dev.jomni.tensor.Scope.open()) {
            var out = thinker.forward(ids, mask, audio, null);
            Tensor loss = Thinker.loss(out.logits(), labels);
            loss.backward();
            return loss.item();
        }
    }
}

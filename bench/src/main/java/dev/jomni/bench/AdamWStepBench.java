package dev.jomni.bench;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.cuda.Cuda;
import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
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
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * adamw_step.cu over one f32 parameter of 100M elements (f32 gradient), against a device-to-device copy of the
 * parameter's 400 MB in the same process; CUDA events, medians. Bandwidth counts the bytes each must read and
 * write: blockwise 8-bit reads p, g, both codes and both absmax and writes p, the codes and the absmax, 16 + 16/256
 * bytes per element; torch's f32 AdamW reads p, g, m, v and writes p, m, v, 28 bytes; the copy 8. Paged: the 8-bit
 * state in CUDA managed memory (resident: it fits). Target: the 8-bit step at ≥ 0.8× the copy's bandwidth.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class AdamWStepBench {
    static final int N = 100_000_000, BLOCKS = (N + AdamWStep.BLOCK - 1) / AdamWStep.BLOCK;

    @Param({"adamw_8bit", "paged_adamw_8bit", "adamw_torch", "copy"})
    public String op;

    private Device gpu;
    private Stream stream;
    private Tensor p, g, m, v, absmax1, absmax2, qmap1, qmap2, copy;
    private final AdamWStep.Hyper hyper = new AdamWStep.Hyper(0.9f, 0.999f, 1e-8f, 1e-4f, 0.01f, -1e-4f, 0.5f);
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        if (!Cuda.available()) throw new IllegalStateException("AdamWStepBench needs a GPU: " + Cuda.unavailableReason());
        gpu = Device.cuda(0);
        stream = CudaBackend.stream(gpu);
        try (var ng = Autograd.noGrad()) {
            var gen = new Generator(System.nanoTime());
            p = Tensor.randn(gen, DType.F32, N).to(gpu);                    // random, never zeros
            g = Tensor.randn(gen, DType.F32, N).mul(1e-3).to(gpu);
            boolean paged = op.startsWith("paged");
            switch (op) {
                case "adamw_torch" -> {
                    m = Tensor.zeros(gpu, DType.F32, N);
                    v = Tensor.zeros(gpu, DType.F32, N);
                }
                case "copy" -> copy = Tensor.empty(gpu, DType.F32, N);
                default -> {
                    m = paged ? Tensor.emptyPaged(gpu, DType.U8, N) : Tensor.empty(gpu, DType.U8, N);
                    v = paged ? Tensor.emptyPaged(gpu, DType.U8, N) : Tensor.empty(gpu, DType.U8, N);
                    absmax1 = paged ? Tensor.emptyPaged(gpu, DType.F32, BLOCKS) : Tensor.empty(gpu, DType.F32, BLOCKS);
                    absmax2 = paged ? Tensor.emptyPaged(gpu, DType.F32, BLOCKS) : Tensor.empty(gpu, DType.F32, BLOCKS);
                    m.assign(Tensor.full(gpu, DType.U8, 127, 1));
                    v.assign(Tensor.zeros(gpu, DType.U8, 1));
                    absmax1.assign(Tensor.zeros(gpu, DType.F32, 1));
                    absmax2.assign(Tensor.zeros(gpu, DType.F32, 1));
                    qmap1 = Tensor.of(AdamWStep.dynamicMap(true), 256).to(gpu);
                    qmap2 = Tensor.of(AdamWStep.dynamicMap(false), 256).to(gpu);
                }
            }
        }
        Backend.of(gpu).synchronize(gpu);
        times = new DeviceTimes(Cuda.context(0));
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams params) {
        times.measuring = params.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void run() {
        times.begin(stream);
        switch (op) {
            case "adamw_torch" -> AdamWStep.torch(p, g, m, v, hyper);
            case "copy" -> copy.assign(p);
            default -> AdamWStep.blockwise8bit(p, g, m, v, absmax1, absmax2, qmap1, qmap2, hyper);
        }
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        double ms = times.median();
        double bytes = switch (op) {
            case "adamw_torch" -> 28.0 * N;
            case "copy" -> 8.0 * N;
            default -> 16.0 * N + 16.0 * BLOCKS;
        };
        DeviceTimes.report(op + "_100M_ms", ms, "ms", "median of " + times.samples());
        DeviceTimes.report(op + "_100M_TBps", bytes / ms / 1e9, "TB/s", "bytes read + written");
        times.close();
        for (Tensor t : new Tensor[] {p, g, m, v, absmax1, absmax2, qmap1, qmap2, copy}) if (t != null) t.close();
    }
}

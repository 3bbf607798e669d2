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
 * adamw_step.cu over one f32 parameter of 100M elements (f32 gradient), each invocation followed by a
 * device-to-device copy moving as many bytes (so every trial measures its own reference side by side, under the
 * same clocks); CUDA events, medians. Bandwidth counts the bytes each must read and write: blockwise 8-bit reads
 * p, g, both codes and both absmax and writes p, the codes and the absmax, 16 + 16/256 bytes per element; torch's
 * f32 AdamW reads p, g, m, v and writes p, m, v, 28 bytes; the copy reads and writes half of that each. Paged: the
 * 8-bit state in CUDA managed memory (resident: it fits). kernel: v2 the vectorised kernels (opt-in), v1 the first ones (the default)
 * (-Djomni.adamw.kernel). Results: OP[_v1]_100M_ms, OP[_v1]_100M_TBps, OP[_v1]_copy_100M_TBps and OP[_v1]_vs_copy,
 * plus copy_100M_TBps (adamw_8bit's copy, for scripts/gpu's summary). Target: the 8-bit step at ≥ 0.8× the copy.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 500, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class AdamWStepBench {
    static final int N = 100_000_000, BLOCKS = (N + AdamWStep.BLOCK - 1) / AdamWStep.BLOCK;

    @Param({"adamw_8bit", "paged_adamw_8bit", "adamw_torch"})
    public String op;

    @Param({"v2", "v1"})
    public String kernel;

    private Device gpu;
    private Stream stream;
    private Tensor p, g, m, v, absmax1, absmax2, qmap1, qmap2, copyFrom, copyTo;
    private final AdamWStep.Hyper hyper = new AdamWStep.Hyper(0.9f, 0.999f, 1e-8f, 1e-4f, 0.01f, -1e-4f, 0.5f);
    private DeviceTimes times, copyTimes;
    private String before;

    /** The bytes the step must read and write. */
    private double bytes() {
        return op.equals("adamw_torch") ? 28.0 * N : 16.0 * N + 16.0 * BLOCKS;
    }

    @Setup(Level.Trial)
    public void setUp() {
        if (!Cuda.available()) throw new IllegalStateException("AdamWStepBench needs a GPU: " + Cuda.unavailableReason());
        before = System.getProperty("jomni.adamw.kernel");
        System.setProperty("jomni.adamw.kernel", kernel);
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
            int copied = (int) (bytes() / 2 / 4);                           // f32 elements read, and written
            copyFrom = Tensor.empty(gpu, DType.F32, copied);
            copyFrom.assign(Tensor.full(gpu, DType.F32, 1.5, 1));
            copyTo = Tensor.empty(gpu, DType.F32, copied);
        }
        Backend.of(gpu).synchronize(gpu);
        times = new DeviceTimes(Cuda.context(0));
        copyTimes = new DeviceTimes(Cuda.context(0));
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams params) {
        times.measuring = copyTimes.measuring = params.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void run() {
        times.begin(stream);
        switch (op) {
            case "adamw_torch" -> AdamWStep.torch(p, g, m, v, hyper);
            default -> AdamWStep.blockwise8bit(p, g, m, v, absmax1, absmax2, qmap1, qmap2, hyper);
        }
        times.end(stream);
        copyTimes.begin(stream);
        copyTo.assign(copyFrom);
        copyTimes.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        String name = op + (kernel.equals("v2") ? "" : "_" + kernel);
        double ms = times.median(), copyMs = copyTimes.median(), tbps = bytes() / ms / 1e9, copyTbps = bytes() / copyMs / 1e9;
        DeviceTimes.report(name + "_100M_ms", ms, "ms", "median of " + times.samples());
        DeviceTimes.report(name + "_100M_TBps", tbps, "TB/s", "bytes read + written");
        DeviceTimes.report(name + "_copy_100M_TBps", copyTbps, "TB/s", "a copy of as many bytes, after each step, median of " + copyTimes.samples());
        DeviceTimes.report(name + "_vs_copy", tbps / copyTbps, "x", "target >= 0.8 for the 8-bit step");
        if (name.equals("adamw_8bit")) DeviceTimes.report("copy_100M_TBps", copyTbps, "TB/s", "the copy beside adamw_8bit");
        times.close();
        copyTimes.close();
        for (Tensor t : new Tensor[] {p, g, m, v, absmax1, absmax2, qmap1, qmap2, copyFrom, copyTo}) if (t != null) t.close();
        if (before == null) System.clearProperty("jomni.adamw.kernel");
        else System.setProperty("jomni.adamw.kernel", before);
    }
}

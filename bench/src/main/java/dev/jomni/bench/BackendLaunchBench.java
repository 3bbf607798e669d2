package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.UnaryOp;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * Launch overhead of a tiny op through the tensor core's Backend SPI on CUDA: 1000 calls of
 * {@code backend.unary(NEG, x, out)} on one-element f32 tensors (shape merging, argument packing,
 * the cuLaunchKernel downcall), then one synchronize; time per op. Target ≤ 5 µs (the bare downcall
 * measured 3.7–3.9 µs on the H100 host; EmptyKernelBench measures it in the same run).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class BackendLaunchBench {
    static final int OPS = 1000;
    static final int QUEUED = 500;

    private Device gpu;
    private Backend backend;
    private Tensor x, out, blocker;
    private DeviceTimes times, deviceTimes;

    @Setup(Level.Trial)
    public void setUp() {
        gpu = Device.cuda(0);
        backend = Backend.of(gpu);
        x = Tensor.full(gpu, DType.F32, 1.5, 1);
        out = Tensor.empty(gpu, DType.F32, 1);
        backend.unary(UnaryOp.NEG, x, out, 0, 0);
        Backend.of(gpu).synchronize(gpu);
        times = new DeviceTimes(CudaBackend.stream(gpu).context());
        deviceTimes = new DeviceTimes(CudaBackend.stream(gpu).context());
        blocker = Tensor.empty(gpu, DType.F32, 1 << 29);                 // 2 GiB: ~1.3 ms a fill on an H100
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
        deviceTimes.measuring = times.measuring;
    }

    @Benchmark
    @OperationsPerInvocation(OPS)
    public void unaryOp() {
        long t0 = System.nanoTime();
        for (int i = 0; i < OPS; i++) backend.unary(UnaryOp.NEG, x, out, 0, 0);
        Backend.of(gpu).synchronize(gpu);
        times.add((System.nanoTime() - t0) / 1e3 / OPS);
    }

    /**
     * The GPU's own rate: a few ms of fills keep it busy while {@link #QUEUED} tiny ops are queued behind
     * them, and CUDA events around the queued ops time them back to back (not the host: behind a busy
     * GPU the driver's queue fills and launches wait for room).
     */
    @Benchmark
    @OperationsPerInvocation(QUEUED)
    public void queuedBehindBusyGpu() {
        Stream s = CudaBackend.stream(gpu);
        for (int i = 0; i < 8; i++) backend.fill(blocker, i);
        deviceTimes.begin(s);
        for (int i = 0; i < QUEUED; i++) backend.unary(UnaryOp.NEG, x, out, 0, 0);
        deviceTimes.end(s);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (out.toFloatArray()[0] != -1.5f) throw new IllegalStateException("neg(1.5) gave " + out.toFloatArray()[0]);
        if (deviceTimes.samples() > 0) {
            DeviceTimes.report("backend_tiny_op_device", deviceTimes.median() * 1e3 / QUEUED, "us", "GPU time per queued op (CUDA events)");
        }
        if (times.samples() > 0)
            DeviceTimes.report("backend_tiny_op_launch", times.median(), "us", "per backend.unary on 1 element, median of " + times.samples() + " batches of " + OPS);
        times.close();
        deviceTimes.close();
        blocker.close();
        x.close();
        out.close();
    }
}

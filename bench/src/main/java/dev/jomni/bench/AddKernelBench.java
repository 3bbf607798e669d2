package dev.jomni.bench;

import dev.jomni.cuda.AddKernel;
import dev.jomni.cuda.Cuda;
import dev.jomni.cuda.CudaContext;
import dev.jomni.cuda.DeviceBuffer;
import dev.jomni.cuda.FillKernel;
import dev.jomni.cuda.Stream;
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
 * add.cu on two 256M-element bf16 tensors (512 MiB each: reads 1 GiB, writes 512 MiB), against a
 * device-to-device copy of 512 MiB in the same process; both timed with CUDA events, medians.
 * Bandwidth counts bytes read plus written. Target: add ≥ 85% of the copy's bandwidth.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class AddKernelBench {
    static final long N = 256L << 20;

    @Param({"add", "copy"})
    public String op;

    private Stream stream;
    private DeviceBuffer a, b, out;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        if (!Cuda.available()) throw new IllegalStateException("AddKernelBench needs a GPU: " + Cuda.unavailableReason());
        CudaContext ctx = Cuda.context(0);
        stream = ctx.createStream();
        a = ctx.allocate(2 * N);
        b = ctx.allocate(2 * N);
        out = ctx.allocate(2 * N);
        FillKernel.uniformBf16(stream, a, N, System.nanoTime(), -1f, 1f);  // random, never zeros
        FillKernel.uniformBf16(stream, b, N, System.nanoTime() + 1, -1f, 1f);
        stream.synchronize();
        times = new DeviceTimes(ctx);
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void run() {
        times.begin(stream);
        if (op.equals("add")) AddKernel.bf16(stream, out, a, b, N);
        else out.copyFromAsync(a, 2 * N, stream);
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        double ms = times.median();
        long bytes = (op.equals("add") ? 3 : 2) * 2 * N;
        DeviceTimes.report(op.equals("add") ? "add_bf16_256M_ms" : "copy_dtod_512MiB_ms", ms, "ms", "median of " + times.samples());
        DeviceTimes.report(op.equals("add") ? "add_bf16_256M_TBps" : "copy_dtod_512MiB_TBps", bytes / ms / 1e9, "TB/s", "bytes read + written");
        times.close();
        for (DeviceBuffer d : new DeviceBuffer[] {a, b, out}) d.close();
        stream.close();
    }
}

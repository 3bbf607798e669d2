package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
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
 * {@code Tensor.add} of two 256M-element bf16 tensors on CUDA (the result allocated from the caching
 * allocator and closed each time), against a device copy of one such tensor through the backend
 * ({@code Backend.copy}, a cuMemcpyDtoDAsync) in the same process; CUDA events on the backend's
 * stream, medians. Bandwidth counts bytes read plus written. Target: add ≥ 85% of the copy's.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class BackendAddBench {
    static final int N = 256 << 20;

    @Param({"add", "copy"})
    public String op;

    private Device gpu;
    private Stream stream;
    private Tensor a, b, out;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        gpu = Device.cuda(0);
        stream = CudaBackend.stream(gpu);
        try (var g = Autograd.noGrad()) {                  // random values, never zeros: 1M drawn, tiled 256 times
            Tensor ra = Tensor.rand(new Generator(1), DType.BF16, 1 << 20).to(gpu).mul(2).add(-0.999);
            Tensor rb = Tensor.rand(new Generator(2), DType.BF16, 1 << 20).to(gpu).mul(2).add(-0.999);
            a = ra.expand(256, 1 << 20).contiguous().reshape(N);
            b = rb.expand(256, 1 << 20).contiguous().reshape(N);
        }
        out = Tensor.empty(gpu, DType.BF16, N);
        Backend.of(gpu).synchronize(gpu);
        times = new DeviceTimes(stream.context());
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void run() {
        times.begin(stream);
        if (op.equals("add")) {
            try (var g = Autograd.noGrad()) {
                a.add(b).close();
            }
        } else Backend.of(gpu).copy(a, out);
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        double ms = times.median();
        long bytes = (op.equals("add") ? 3L : 2L) * 2 * N;
        DeviceTimes.report(op.equals("add") ? "tensor_add_bf16_256M_ms" : "backend_copy_bf16_256M_ms", ms, "ms", "median of " + times.samples());
        DeviceTimes.report(op.equals("add") ? "tensor_add_bf16_256M_TBps" : "backend_copy_bf16_256M_TBps", bytes / ms / 1e9, "TB/s", "bytes read + written");
        times.close();
        a.close();
        b.close();
        out.close();
    }
}

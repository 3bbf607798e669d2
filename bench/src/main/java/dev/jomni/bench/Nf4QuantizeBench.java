package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
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
 * use_4bit's quantizer on bf16 weights. {@code device} cpu: the host quantizer (Nf4Weight.Builder over the rows, all
 * cores); cuda: Nf4Weight.quantize of a device tensor (nf4_quantize.cu: the blocks, the absmax sum read back, the nested
 * blocks; the outputs allocated per call), timed by CUDA events around the whole call, median, and reported as GB/s of
 * bf16 read (2·rows·cols / time). {@code shape}: "q_proj" [4096, 2048] (16 MB of bf16: it fits the H200's L2 after the
 * first call), "expert" one expert's gate + up rows [1536, 2048] as Thinker.load adds them to a stack, "gate_up" a
 * layer's stacked gate_up [128·1536, 2048] of the 30B model (805 MB; about 25 s a call on the host: give
 * {@code -p device=cuda} with it). The 30B thinker's text weights are about 29·10⁹ weights, so load time from
 * quantizing ≈ 29·10⁹ / the rate.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class Nf4QuantizeBench {
    @Param({"q_proj", "expert"})
    public String shape;

    @Param({"cpu", "cuda"})
    public String device;

    private Tensor w;
    private Stream stream;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        int rows = switch (shape) {
            case "q_proj" -> 4096;
            case "expert" -> 1536;
            case "gate_up" -> 128 * 1536;
            default -> throw new IllegalArgumentException("Nf4QuantizeBench: unknown shape " + shape);
        };
        Device d = Device.parse(device);
        w = Tensor.randn(new Generator(1), DType.BF16, rows, 2048).mul(0.02).to(d);
        if (d.kind() == Device.Kind.CUDA) {
            Backend.of(d).checkAvailable();
            stream = CudaBackend.stream(d);
            times = new DeviceTimes(CudaBackend.of(d).context());
            double ms = times.burst(this::quantizeOnce, stream, 2, 5);
            report("burst", ms, "2 warm-up, median of 5");
        }
    }

    private void quantizeOnce() {
        Nf4Weight.quantize(shape, w).close();
    }

    private void report(String what, double ms, String note) {
        String name = "nf4_quantize_" + shape + "_" + device + "_" + what;
        DeviceTimes.report(name + "_ms", ms, "ms", note);
        DeviceTimes.report(name + "_gbps", 2.0 * w.numel() / ms / 1e6, "GB/s", "bf16 bytes read / time");
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        if (times != null) times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public long quantize() {
        if (times != null) times.begin(stream);
        long bytes;
        try (Nf4Weight q = stream != null ? Nf4Weight.quantize(shape, w) : new Nf4Weight.Builder(shape, w.size(0), w.size(1)).add(w).build(DType.BF16)) {
            bytes = q.bytes();
        }
        if (times != null) times.end(stream);
        return bytes;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (times != null) {
            report("median", times.median(), "JMH, median of " + times.samples());
            times.close();
        }
        w.close();
    }
}

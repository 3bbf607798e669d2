package dev.jomni.bench;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.CudaDevice;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
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
 * ScaledDotProductAttention.Kernels.decode on CUDA (attention.cu's sdpa_decode_*): one query per head over
 * {@code tokens} cached tokens in blocks of {@code blockSize} through a shuffled block table, 32 query heads
 * over {@code kvHeads} kv heads, d=128, bf16, B=1. Reports the K and V bytes read per second, and that as a
 * fraction of the H200's 4.14 TB/s device copy bandwidth (the target: ≥ 80%). CUDA events, median.
 * Run: {@code JOMNI_BENCH=dev.jomni.bench.AttentionDecodeBench scripts/gpu ...}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class AttentionDecodeBench {
    static final int H = 32, D = 128;
    static final double COPY_BYTES_PER_S = 4.14e12;

    @Param({"32768"})
    public int tokens;

    @Param({"4", "32"})
    public int kvHeads;

    @Param({"16"})
    public int blockSize;

    private ScaledDotProductAttention.Kernels kernels;
    private Tensor q, k, v, table, lens, out, lse;
    private Stream stream;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        Device gpu = Device.cuda(0);
        CudaDevice dev = CudaBackend.of(gpu);
        stream = dev.stream();
        kernels = Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        Generator g = new Generator(20261204);
        int blocks = (tokens + blockSize - 1) / blockSize;
        List<Integer> order = new ArrayList<>();
        for (int x = 0; x < blocks; x++) order.add(x);
        Collections.shuffle(order, new Random(1));
        int[] tab = new int[blocks];
        for (int x = 0; x < blocks; x++) tab[x] = order.get(x);
        q = Tensor.randn(g, DType.BF16, 1, H, 1, D).to(gpu);
        k = Tensor.randn(g, DType.BF16, blocks, kvHeads, blockSize, D).to(gpu);
        v = Tensor.randn(g, DType.BF16, blocks, kvHeads, blockSize, D).to(gpu);
        table = Tensor.of(tab, 1, blocks).to(gpu);
        lens = Tensor.of(new int[] {tokens}, 1).to(gpu);
        out = Tensor.empty(gpu, DType.BF16, 1, H, 1, D);
        lse = Tensor.empty(gpu, DType.F32, 1, H, 1);
        dev.synchronize();
        times = new DeviceTimes(dev.context());
    }

    private double bytes() {
        return 2.0 * tokens * kvHeads * D * 2;
    }

    private String name() {
        return "sdpa_decode_tokens" + tokens + "_kv" + kvHeads + "_bs" + blockSize;
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void decode() {
        times.begin(stream);
        kernels.decode(q, k, v, table, lens, 1 / Math.sqrt(D), out, lse);
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        double ms = times.median();
        DeviceTimes.report(name() + "_us", ms * 1e3, "us", "median of " + times.samples());
        DeviceTimes.report(name() + "_TBps", bytes() / (ms * 1e-3) / 1e12, "TB/s", "K and V bytes read");
        DeviceTimes.report(name() + "_of_copy", bytes() / (ms * 1e-3) / COPY_BYTES_PER_S, "fraction", "of 4.14 TB/s device copy");
        times.close();
        for (Tensor t : new Tensor[] {q, k, v, table, lens, out, lse}) t.close();
    }
}

package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Matmul;
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
 * Nf4Matmul on CUDA: "gemv" is the decode lm_head, M = 1, K = 2048, N = 152064 (peers.py times 151936),
 * reported in GB/s of the packed weight bytes read (codes + absmax codes: N·K/2 + N·K/64); "gemm" is
 * prefill / training, M = 4096, K = 2048, N = 4096 (the q_proj shape), in TFLOP/s (2·M·N·K / time), and
 * "dx" its input gradient. The weight is quantized on the host (Nf4Weight.quantize) and moved to the GPU.
 * CUDA events around each call, median. Compare with the bf16 GEMV / cuBLASLt GEMM rows of the same run.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class Nf4MatmulBench {
    @Param({"gemv", "gemm", "dx"})
    public String pass;

    private int m, n, k;
    private Device gpu;
    private Stream stream;
    private Nf4Matmul.Kernels kernels;
    private Nf4Weight w;
    private Tensor x, y, dy, dx;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        gpu = Device.cuda(0);
        Backend.of(gpu).checkAvailable();
        stream = CudaBackend.stream(gpu);
        kernels = Backend.of(gpu).kernels(Nf4Matmul.Kernels.class);
        boolean gemv = pass.equals("gemv");
        m = gemv ? 1 : 4096;
        n = gemv ? 152064 : 4096;
        k = 2048;
        Generator g = new Generator(20261203L);
        try (Tensor host = Tensor.randn(g, DType.BF16, n, k).mul(0.02)) {
            Nf4Weight q = Nf4Weight.quantize(gemv ? "lm_head.weight" : "q_proj.weight", host);
            w = q.to(gpu);
            q.close();
        }
        x = Tensor.randn(g, DType.BF16, m, k).to(gpu);
        y = Tensor.empty(gpu, DType.BF16, m, n);
        dy = Tensor.randn(g, DType.BF16, m, n).to(gpu);
        dx = Tensor.empty(gpu, DType.BF16, m, k);
        CudaBackend.of(gpu).synchronize();
        times = new DeviceTimes(CudaBackend.of(gpu).context());
        report("burst", times.burst(this::run, stream, 3, 10), "3 warm-up, median of 10");
    }

    private void run() {
        if (pass.equals("dx")) kernels.backwardInput(dy, w, dx);
        else kernels.forward(x, w, y);
    }

    private void report(String what, double ms, String note) {
        String name = "nf4_matmul_" + pass + "_M" + m + "_K" + k + "_N" + n + "_" + what;
        DeviceTimes.report(name + "_ms", ms, "ms", note);
        if (pass.equals("gemv")) {
            double bytes = (double) n * k / 2 + (double) n * k / 64;
            DeviceTimes.report(name + "_gbps", bytes / ms / 1e6, "GB/s", "packed codes + absmax codes read / time; peer: bf16 GEMV of the lm_head");
        } else
            DeviceTimes.report(name + "_tflops", 2.0 * m * n * k / ms / 1e9, "TFLOP/s", "2·M·N·K / time; peer: cuBLASLt bf16 GEMM of the shape");
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void nf4Matmul() {
        times.begin(stream);
        run();
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        report("median", times.median(), "JMH, median of " + times.samples());
        times.close();
        w.close();
        for (Tensor t : new Tensor[] {x, y, dy, dx}) t.close();
    }
}

package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.Autograd;
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
 * Nf4Matmul on CUDA against the bf16 matmul of the same shape in the same run. {@code shape} names the thinker's
 * weight W [N, K]: lm_head [152064, 2048] (peers.py times 151936), q [4096, 2048], kv [512, 2048], o [2048, 4096],
 * expert_up [768, 2048] (gate or up: 2048 → 768), expert_down [2048, 768]. {@code m} rows of x: 1 is decode (the
 * GEMV for M ≤ 16), 4096 prefill / training (the GEMM). {@code pass}: fwd y = x·Wᵀ or dx = dy·W. {@code variant}:
 * the NF4 kernel variant (jomni.nf4.gemv for M ≤ 16 forward: tc, tc8, tc2, tcs, tcp, tcp2, tca, simt; jomni.nf4.gemm
 * otherwise: tc, tcs, tcw, wmma; see CudaNf4Matmul) or
 * "bf16", the peer: the project's matmul (cuBLASLt) on the dequantized bf16 W.
 * Reported: ms, the GEMV's GB/s of packed bytes (codes + absmax codes, N·K/2 + N·K/64; the bf16 peer's figure is
 * its bf16 bytes 2·N·K) and the GEMM's TFLOP/s (2·M·N·K / time). CUDA events around each call, median; a 3-call
 * warm-up, median-of-10 "burst" first.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 2, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class Nf4MatmulBench {
    @Param({"lm_head", "q"})
    public String shape;

    @Param({"1", "4096"})
    public int m;

    @Param({"fwd", "dx"})
    public String pass;

    @Param({"tc", "bf16"})
    public String variant;

    private int n, k;
    private Device gpu;
    private Stream stream;
    private Nf4Matmul.Kernels kernels;
    private Nf4Weight w;
    private Tensor wb, x, y, dy, dx;
    private DeviceTimes times;
    private String property, before;

    @Setup(Level.Trial)
    public void setUp() {
        gpu = Device.cuda(0);
        Backend.of(gpu).checkAvailable();
        stream = CudaBackend.stream(gpu);
        kernels = Backend.of(gpu).kernels(Nf4Matmul.Kernels.class);
        int[] nk = switch (shape) {
            case "lm_head" -> new int[] {152064, 2048};
            case "q" -> new int[] {4096, 2048};
            case "kv" -> new int[] {512, 2048};
            case "o" -> new int[] {2048, 4096};
            case "expert_up" -> new int[] {768, 2048};
            case "expert_down" -> new int[] {2048, 768};
            default -> throw new IllegalArgumentException("Nf4MatmulBench: unknown shape " + shape);
        };
        n = nk[0];
        k = nk[1];
        if (!variant.equals("bf16")) {
            property = m <= 16 && pass.equals("fwd") ? "jomni.nf4.gemv" : "jomni.nf4.gemm";
            before = System.setProperty(property, variant);
        }
        Generator g = new Generator(20261203L);
        try (Tensor host = Tensor.randn(g, DType.BF16, n, k).mul(0.02); Tensor dense = host.to(gpu)) {
            System.setProperty(Nf4Weight.DEVICE_QUANTIZE, "true");        // the host quantizer takes seconds at the lm_head's size
            w = Nf4Weight.quantize(shape + ".weight", dense);
        }
        if (variant.equals("bf16")) wb = w.dequantize();
        x = Tensor.randn(g, DType.BF16, m, k).to(gpu);
        y = Tensor.empty(gpu, DType.BF16, m, n);
        dy = Tensor.randn(g, DType.BF16, m, n).to(gpu);
        dx = Tensor.empty(gpu, DType.BF16, m, k);
        CudaBackend.of(gpu).synchronize();
        times = new DeviceTimes(CudaBackend.of(gpu).context());
        report("burst", times.burst(this::run, stream, 3, 10), "3 warm-up, median of 10");
    }

    private void run() {
        if (wb != null) {
            try (var none = Autograd.noGrad(); Tensor r = pass.equals("dx") ? dy.matmul(wb) : x.matmul(wb.mT())) {
                // the product is the work; the result goes back to the allocator
            }
        } else if (pass.equals("dx")) kernels.backwardInput(dy, w, dx);
        else kernels.forward(x, w, y);
    }

    private void report(String what, double ms, String note) {
        String name = "nf4_matmul_" + shape + "_M" + m + "_" + pass + "_" + variant + "_" + what;
        DeviceTimes.report(name + "_ms", ms, "ms", note);
        if (m <= 16) {
            double bytes = wb != null ? 2.0 * n * k : (double) n * k / 2 + (double) n * k / 64;
            DeviceTimes.report(name + "_gbps", bytes / ms / 1e6, "GB/s", wb != null ? "bf16 weight bytes / time" : "packed codes + absmax codes / time");
        }
        DeviceTimes.report(name + "_tflops", 2.0 * m * n * k / ms / 1e9, "TFLOP/s", "2·M·N·K / time");
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
        for (Tensor t : new Tensor[] {wb, x, y, dy, dx}) if (t != null) t.close();
        if (property != null) {
            if (before == null) System.clearProperty(property);
            else System.setProperty(property, before);
        }
    }
}

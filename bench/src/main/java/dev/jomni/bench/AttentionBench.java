package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.CudaDevice;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AttentionMask;
import dev.jomni.tensor.ops.ScaledDotProductAttention;
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
 * ScaledDotProductAttention's CUDA kernels (attention.cu: the tensor-core forward and backward for bf16) at
 * peers.py's shape: B=1, 32 query heads and 32 kv heads ({@code kvHeads} 4 for the thinker's GQA), S=T=4096,
 * d=128, bf16, causal and not; {@code pass} fwd = forward, fwdbwd = forward then backward (dq, dk, dv);
 * {@code variant} the kernels' variant, as -Djomni.attention.variant takes it ("tc" the default: wgmma on
 * sm_90a, 128-row forward tiles, 64-row dQ tiles; "f64" 64-row forward tiles; "q128" 128-row forward and dQ
 * tiles; "mma" mma.sync alone; "simt" the SIMT kernels). CUDA events
 * around each call on the backend's stream, median. TFLOP/s as peers.py counts them: 4·B·H·S²·d, halved for
 * causal, forward + backward 3.5× that. Peers: peers.py's sdpa_flash_fwd_causal{0,1}_tflops and
 * sdpa_flash_fwdbwd_causal{0,1}_tflops; the "burst" figure uses peers.py's own protocol (3 warm-up, median of 20).
 * Run: {@code JOMNI_BENCH=dev.jomni.bench.AttentionBench scripts/gpu ...}; several variants:
 * {@code JOMNI_JMH_ARGS="-p variant=tc,mma,f64+mma,q128"}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class AttentionBench {
    static final int B = 1, H = 32, S = 4096, D = 128;

    @Param({"false", "true"})
    public boolean causal;

    @Param({"fwd", "fwdbwd"})
    public String pass;

    @Param({"32", "4"})
    public int kvHeads;

    @Param({"tc"})
    public String variant;

    private ScaledDotProductAttention.Kernels kernels;
    private Tensor q, k, v, out, lse, dOut, dq, dk, dv;
    private AttentionMask mask;
    private double scale;
    private Stream stream;
    private DeviceTimes times;

    @Setup(Level.Trial)
    public void setUp() {
        System.setProperty("jomni.attention.variant", variant);   // read by the kernels at each call
        Device gpu = Device.cuda(0);
        CudaDevice dev = CudaBackend.of(gpu);
        stream = dev.stream();
        kernels = Backend.of(gpu).kernels(ScaledDotProductAttention.Kernels.class);
        Generator g = new Generator(20261203);
        q = Tensor.randn(g, DType.BF16, B, H, S, D).to(gpu);
        k = Tensor.randn(g, DType.BF16, B, kvHeads, S, D).to(gpu);
        v = Tensor.randn(g, DType.BF16, B, kvHeads, S, D).to(gpu);
        dOut = Tensor.randn(g, DType.BF16, B, H, S, D).to(gpu);
        out = Tensor.empty(gpu, DType.BF16, B, H, S, D);
        lse = Tensor.empty(gpu, DType.F32, B, H, S);
        dq = Tensor.empty(gpu, DType.BF16, B, H, S, D);
        dk = Tensor.empty(gpu, DType.BF16, B, kvHeads, S, D);
        dv = Tensor.empty(gpu, DType.BF16, B, kvHeads, S, D);
        mask = causal ? AttentionMask.causal(0) : AttentionMask.none();
        scale = 1 / Math.sqrt(D);
        dev.synchronize();
        times = new DeviceTimes(dev.context());
        try {
            Thread.sleep(2000);  // idle, as the GPU is between peers.py's steps, before its protocol
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        double ms = times.burst(this::call, stream, 3, 20);
        DeviceTimes.report(name() + "_burst_TFLOPs", flops() / ms / 1e9, "TFLOP/s", "peers.py's protocol: 3 warm-up, median of 20 (" + ms + " ms)");
    }

    /** peers.py's count: 4·B·H·S²·d, /2 causal, ×3.5 forward + backward. */
    private double flops() {
        double f = 4.0 * B * H * S * (double) S * D / (causal ? 2 : 1);
        return pass.equals("fwd") ? f : 3.5 * f;
    }

    private String name() {
        return "sdpa_" + variant.replace('+', '_') + "_" + pass + "_causal" + (causal ? 1 : 0) + (kvHeads == H ? "" : "_kv" + kvHeads);
    }

    private void call() {
        kernels.forward(q, k, v, mask, scale, out, lse);
        if (pass.equals("fwdbwd")) kernels.backward(q, k, v, out, lse, dOut, mask, scale, dq, dk, dv);
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void attention() {
        times.begin(stream);
        call();
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        double ms = times.median();
        DeviceTimes.report(name() + "_ms", ms, "ms", "median of " + times.samples());
        DeviceTimes.report(name() + "_TFLOPs", flops() / ms / 1e9, "TFLOP/s", "");
        times.close();
        for (Tensor t : new Tensor[] {q, k, v, out, lse, dOut, dq, dk, dv}) t.close();
    }
}

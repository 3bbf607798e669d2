package dev.jomni.bench;

import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.Stream;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.ops.Nf4Weight;
import java.lang.foreign.MemorySegment;
import dev.jomni.tensor.spi.Backend;
import java.util.ArrayList;
import java.util.List;
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
 * MoeExperts on CUDA at the thinker's real size: H 2048, E 128 experts, top-8, I 768, bf16 activations,
 * uniform random distinct experts per token; tokens T = 4096 and 32768 (training) or 1 and 64 (decode).
 * weights: "bf16" (every gradient in forwardBackward: dx, the routing weights', gateUp's and down's), "bf16frozen"
 * (bf16 weights, no base gradients: QLoRA's work on dense weights) or "nf4" (the same experts as NF4, frozen; random
 * codes and block scales: the kernels' time does not depend on the values). kernel: the bf16 GEMM kernels
 * (-Djomni.moe.kernel, set in this fork before the backend starts): "mma" (mma.sync, 4 stages) or "wmma"; decode: the
 * decode path's kernel (-Djomni.moe.decode, used at T ≤ 64): "simt" or "mma16" (pass -p decode=simt for T ≥ 4096).
 * "forward" is the experts' forward; "forwardBackward" adds the backward. CUDA events around each call, median;
 * TFLOP/s = T·8·3·2·H·I / time (the three projections' multiply-adds once, as peers.py counts for both).
 * Peer: peers.py's hf_moe_grouped_mm_fwd_T4096_tflops / _fwdbwd_T4096_ms (transformers' SparseMoeBlock with
 * torch._grouped_mm, router included there), and the "burst" figure here uses its protocol (3 warm-up, median of 10),
 * printed first, in the trial's setup; a pass slower than 0.5 s per call (a regression) gets 1 warm-up and the
 * median of 3 instead, and JMH's iterations are short, so a slow pass still finishes in about 30 s. Decode
 * (T ≤ 64) also reports the floor: the bytes of the experts the tokens selected (their gate_up and down weights,
 * NF4 codes and scales included) over the copy bandwidth COPY_TBPS, and the ratio to it (target ≤ 2).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 2, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class MoeExpertsBench {
    static final int H = 2048, E = 128, K = 8, I = 768;
    /** Device-to-device copy bandwidth of the H200 (AddKernelBench's copy_dtod_512MiB, 2026-12-03), TB/s. */
    static final double COPY_TBPS = 4.14;

    @Param({"4096", "32768", "1", "64"})
    public int tokens;

    @Param({"bf16", "nf4", "bf16frozen"})
    public String weights;

    @Param({"forward", "forwardBackward"})
    public String pass;

    @Param({"mma", "wmma"})
    public String kernel;

    /** The decode path's kernel (-Djomni.moe.decode; T ≤ 64 only): "simt" (f32 FMA over streamed rows) or "mma16". */
    @Param({"simt", "mma16"})
    public String decode;

    private Device gpu;
    private Stream stream;
    private MoeExperts.Kernels kernels;
    private MoeExperts.Inputs in;
    private Tensor out, dy;
    private MoeExperts.Grads grads;
    private DeviceTimes times;
    private double floorMs;
    private final List<Tensor> held = new ArrayList<>();

    @Setup(Level.Trial)
    public void setUp() {
        System.setProperty("jomni.moe.kernel", kernel);
        System.setProperty("jomni.moe.decode", decode);                  // read when the backend makes its kernels
        gpu = Device.cuda(0);
        Backend.of(gpu).checkAvailable();
        stream = CudaBackend.stream(gpu);
        kernels = Backend.of(gpu).kernels(MoeExperts.Kernels.class);
        int t = tokens;
        Generator g = new Generator(20260517L);
        long[] ids = new long[t * K];
        java.util.Set<Long> used = new java.util.HashSet<>();
        for (int n = 0; n < t; n++) {                         // K distinct experts per token, uniformly (a balanced router)
            List<Long> pool = new ArrayList<>();
            for (long e = 0; e < E; e++) pool.add(e);
            for (int k = 0; k < K; k++) used.add(ids[n * K + k] = pool.remove(g.nextInt(pool.size())));
        }
        Tensor x = keep(Tensor.randn(g, DType.BF16, t, H).to(gpu));
        Tensor idt = keep(Tensor.of(ids, t, K).to(gpu));
        Tensor w = keep(Tensor.rand(g, DType.BF16, t, K).mul(0.25).to(gpu));
        boolean nf4 = weights.equals("nf4"), frozen = !weights.equals("bf16");
        double bytesPerWeight;
        if (nf4) {
            Nf4Weight gu = randomNf4(g, E * 2 * I, H), dn = randomNf4(g, E * H, I);
            in = new MoeExperts.Inputs(x, idt, w, null, null, null, null, gu, dn, E);
            bytesPerWeight = (double) (gu.bytes() + dn.bytes()) / ((long) E * 3 * H * I);
        } else {
            Tensor gateUp = keep(Tensor.randn(g, DType.BF16, E, 2 * I, H).mul(0.02).to(gpu));
            Tensor down = keep(Tensor.randn(g, DType.BF16, E, H, I).mul(0.02).to(gpu));
            in = new MoeExperts.Inputs(x, idt, w, gateUp, down, null, null);
            bytesPerWeight = 2;
        }
        floorMs = used.size() * 3.0 * H * I * bytesPerWeight / (COPY_TBPS * 1e9);
        out = keep(Tensor.empty(gpu, DType.BF16, t, H));
        dy = keep(Tensor.randn(g, DType.BF16, t, H).to(gpu));
        grads = new MoeExperts.Grads(keep(Tensor.empty(gpu, DType.BF16, t, H)), keep(Tensor.empty(gpu, DType.BF16, t, K)),
                frozen ? null : keep(Tensor.empty(gpu, DType.BF16, E, 2 * I, H)), frozen ? null : keep(Tensor.empty(gpu, DType.BF16, E, H, I)),
                null, null, null, null);
        CudaBackend.of(gpu).synchronize();
        times = new DeviceTimes(CudaBackend.of(gpu).context());
        double once = times.burst(this::run, stream, 1, 1);                // the first call's time decides the protocol
        boolean slow = once > 500;
        double ms = slow ? times.burst(this::run, stream, 0, 3) : times.burst(this::run, stream, 3, 10);
        report("burst", ms, slow ? "slow pass (" + Math.round(once) + " ms a call): 1 warm-up, median of 3" : "peers.py's protocol: 3 warm-up, median of 10");
    }

    /** An NF4 [rows, cols] weight on the GPU with random codes and absmax codes (absmax in [0, 0.04]). */
    private Nf4Weight randomNf4(Generator g, int rows, int cols) {
        long n = (long) rows * cols;
        java.util.Random r = new java.util.Random(g.nextLong());
        byte[] packed = new byte[(int) (n / 2)], qabs = new byte[(int) (n / Nf4Weight.BLOCK)];
        r.nextBytes(packed);
        r.nextBytes(qabs);
        int nested = (qabs.length + Nf4Weight.NESTED_BLOCK - 1) / Nf4Weight.NESTED_BLOCK;
        float[] nabs = new float[nested];
        java.util.Arrays.fill(nabs, 0.02f);
        float[] map = Nf4Weight.dynamicMap();
        Device cpu = Device.cpu();
        Tensor p = Tensor.fromHost(cpu, DType.U8, MemorySegment.ofArray(packed), packed.length);
        Tensor q = Tensor.fromHost(cpu, DType.U8, MemorySegment.ofArray(qabs), qabs.length);
        Tensor na = Tensor.fromHost(cpu, DType.F32, MemorySegment.ofArray(nabs), nested);
        Tensor mc = Tensor.fromHost(cpu, DType.F32, MemorySegment.ofArray(map), 256);
        Nf4Weight host = new Nf4Weight(p, q, na, mc, 0.02f, rows, cols, DType.BF16), dev = host.to(gpu);
        host.close();
        held.add(dev.packed());
        held.add(dev.absmax());
        held.add(dev.nestedAbsmax());
        held.add(dev.nestedCode());
        return dev;
    }

    private Tensor keep(Tensor t) {
        held.add(t);
        return t;
    }

    private void run() {
        kernels.forward(in, out);
        if (pass.equals("forwardBackward")) kernels.backward(in, dy, grads);
    }

    private void report(String what, double ms, String note) {
        String name = "moe_experts_" + (pass.equals("forward") ? "fwd" : "fwdbwd") + "_T" + tokens + (weights.equals("bf16") ? "" : "_" + weights)
                + (kernel.equals("mma") ? "" : "_" + kernel) + (decode.equals("simt") ? "" : "_" + decode) + "_" + what;
        DeviceTimes.report(name + "_ms", ms, "ms", note);
        double flop = (double) tokens * K * 3 * 2 * H * I;
        DeviceTimes.report(name + "_tflops", flop / ms / 1e9, "TFLOP/s", "T·8·3·2·2048·768 / time; peer hf_moe_grouped_mm");
        if (tokens <= 64)
            DeviceTimes.report(name + "_over_weight_floor", ms / floorMs, "x", String.format("floor %.4f ms: the selected experts' weight bytes at %.2f TB/s; target <= 2", floorMs, COPY_TBPS));
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams p) {
        times.measuring = p.getType() == IterationType.MEASUREMENT;
    }

    @Benchmark
    public void moeExperts() {
        times.begin(stream);
        run();
        times.end(stream);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        report("median", times.median(), "JMH, median of " + times.samples());
        times.close();
        for (Tensor t : held) t.close();
    }
}

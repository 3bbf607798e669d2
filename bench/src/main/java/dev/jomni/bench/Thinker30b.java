package dev.jomni.bench;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.omni.model.AudioEncoder;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LayerTimes;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.RandomWeights;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.MoeExperts;
import dev.jomni.tensor.ops.Nf4Weight;
import dev.jomni.train.AdamW;
import dev.jomni.train.AdamW8bit;
import dev.jomni.train.Optimizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The 30B-shaped thinker on one device, end to end, with random weights built in memory (no checkpoint on disk):
 * a LoRA training step at the release's shapes (r on q/k/v/o and every expert's gate/up/down, activation
 * checkpointing, bf16 compute) with tokens/s, the allocator's peak and the time by part; the NF4 experts op
 * beside the bf16 one; generation through the {@link GenerationEngine} at several concurrencies; time to first
 * token with 30 s of audio. Each part that fails prints its error in its row; one table is printed last.
 *
 * <pre>
 *   java -cp 'lib/*' dev.jomni.bench.Thinker30b [--layers 48] [--tokens 4096] [--rank 64] [--steps 3]
 *        [--optim adamw_torch|adamw_8bit|paged_adamw_8bit] [--concurrency 1,10,64] [--new-tokens 64] [--prompt 128]
 *        [--config FILE] [--device cuda|cpu] [--parts build,train,profile,nf4,generate,ttft] [--seed 0]
 *        [--in-memory true (the default) | --model DIR] [--use_4bit false|true]
 * </pre>
 * With --use_4bit true the base is QLoRA's: use_4bit's weights (Nf4Plan: attention projections and experts; router,
 * embeddings, lm_head, norms and the audio tower stay bf16) quantized to NF4 on the device as each is made
 * ({@link RandomWeights#buildNf4}), so the 48 layers fit as NF4; the train part then runs the LoRA step over it.
 * Default config: the Qwen3-Omni-30B-A3B-Instruct release's config.json (bundled). With --layers below the
 * config's, the step and memory rows are also given extrapolated to its layer count (marked so).
 */
public final class Thinker30b {
    private final Map<String, String> args;
    private final List<String[]> rows = new ArrayList<>();
    private final Device device;
    private final DType dtype;
    private Thinker thinker;
    private LoraAdapter adapter;
    private int layers, fullLayers;
    private final boolean use4bit;

    Thinker30b(Map<String, String> args) {
        this.args = args;
        device = Device.parse(arg("device", "cuda"));
        dtype = device.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16;
        use4bit = Boolean.parseBoolean(arg("use_4bit", "false"));
        if (use4bit) System.setProperty(Nf4Weight.DEVICE_QUANTIZE, "true");   // the host quantizer would take ~30 min for 48 layers
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 >= argv.length) throw new IllegalArgumentException("expected --name value pairs, got " + Arrays.toString(argv));
            args.put(argv[i].substring(2), argv[++i]);
        }
        if (args.containsKey("model") && Boolean.parseBoolean(args.getOrDefault("in-memory", "false")))
            throw new IllegalArgumentException("--model DIR loads a checkpoint; --in-memory builds random weights instead: give one");
        new Thinker30b(args).run();
        System.exit(0);
    }

    private String arg(String name, String def) { return args.getOrDefault(name, def); }

    private int intArg(String name, int def) { return Integer.parseInt(arg(name, String.valueOf(def))); }

    private boolean wanted(String part) {
        return Arrays.asList(arg("parts", "build,train,profile,nf4,generate,ttft").split(",")).contains(part);
    }

    void run() throws Exception {
        System.out.println("Thinker30b on " + device + " (" + dtype.lower() + (use4bit ? ", NF4 base" : "") + "), " + java.time.Instant.now());
        Path config = config();
        section("build", () -> build(config));
        if (thinker == null) {
            print();
            return;
        }
        if (wanted("train")) section("train", this::train);
        if (wanted("profile")) section("profile", this::profile);
        if (wanted("nf4")) section("nf4", this::nf4Experts);
        if (adapter != null) adapter.detach();
        if (wanted("generate")) section("generate", this::generate);
        if (wanted("ttft")) section("ttft", this::ttft);
        print();
    }

    interface Part { void run() throws Exception; }

    /** Runs a part; a failure becomes its row (the first line of the error), and the next part still runs. */
    private void section(String name, Part part) {
        System.out.println("== " + name);
        try {
            part.run();
        } catch (Throwable e) {
            e.printStackTrace(System.out);
            String msg = String.valueOf(e.getMessage()).lines().findFirst().orElse("");
            row(name, "FAILED", "", e.getClass().getSimpleName() + ": " + msg);
            if (device.kind() == Device.Kind.CUDA) {
                try { Backend.of(device).synchronize(device); } catch (Throwable ignored) { }
            }
        }
    }

    /** The table so far: name, value, unit, note. */
    List<String[]> rows() { return rows; }

    private void row(String name, String value, String unit, String note) {
        rows.add(new String[] {name, value, unit, note});
        System.out.printf("  %s = %s %s %s%n", name, value, unit, note);
    }

    private static String f(String format, double v) { return String.format(Locale.ROOT, format, v); }

    // ---------------------------------------------------------------- build

    /** The config file with num_hidden_layers replaced by --layers (when given), in a temporary folder. */
    private Path config() throws Exception {
        var json = new ObjectMapper();
        ObjectNode root;
        String given = args.get("config");
        if (given != null) root = (ObjectNode) json.readTree(Path.of(given).toFile());
        else try (InputStream in = Thinker30b.class.getResourceAsStream("qwen3-omni-30b-a3b-instruct.config.json")) {
            root = (ObjectNode) json.readTree(in);
        }
        ObjectNode thinkerNode = root.has("thinker_config") ? (ObjectNode) root.get("thinker_config") : root;
        ObjectNode text = (ObjectNode) thinkerNode.get("text_config");
        fullLayers = text.get("num_hidden_layers").asInt();
        layers = intArg("layers", fullLayers);
        text.put("num_hidden_layers", layers);
        Path dir = Files.createTempDirectory("thinker30b-");
        Path file = dir.resolve("config.json");
        json.writeValue(file.toFile(), root);
        file.toFile().deleteOnExit();
        dir.toFile().deleteOnExit();
        System.out.println("config: " + (given != null ? given : "the bundled Qwen3-Omni-30B-A3B-Instruct config.json") + ", " + layers + " of "
                + fullLayers + " layers");
        return file;
    }

    /** In memory (the default, --in-memory), or --model DIR: a checkpoint on disk (e.g. from omni init-random) loaded as omni loads one. */
    private void build(Path config) {
        long t0 = System.nanoTime();
        String model = args.get("model");
        long seed = Long.parseLong(arg("seed", "0"));
        RandomWeights.Nf4Built nf4 = null;
        if (model != null) thinker = Thinker.load(Path.of(model), dtype, device, use4bit);
        else if (use4bit) thinker = (nf4 = RandomWeights.buildNf4(config, seed, dtype, device)).thinker();
        else thinker = RandomWeights.build(config, seed, dtype, device);
        if (model != null) layers = fullLayers = thinker.config.text().numHiddenLayers();
        sync();
        double s = (System.nanoTime() - t0) / 1e9;
        long params = 0, nf4Params = 0;
        for (var p : thinker.parameters().values()) {
            params += p.numel();
            if (p.isNf4()) nf4Params += p.numel();
        }
        String held = nf4Params == 0 ? dtype.lower() : f("%.3f", nf4Params / 1e9) + "B of them NF4, the rest " + dtype.lower();
        row(model != null ? "weights loaded from " + model : "weights built in memory", f("%.1f", s), "s", f("%.3f", params / 1e9)
                + "B parameters (text + audio tower), " + held + ", " + layers + " layers");
        if (nf4 != null) {
            row("NF4 quantize on " + device, f("%.2f", nf4.quantizeSeconds()), "s", nf4.nf4Weights() + " weights (attention q/k/v/o + experts), "
                    + f("%.1f", nf4Params * 2 / 1e9 / nf4.quantizeSeconds()) + " GB/s of bf16; each bf16 copy released once quantized");
            for (String note : nf4.notes()) System.out.println("  " + note);
        }
        row("weights on the device", gb(allocated()), "GB", "allocator, after the build");
    }

    // ---------------------------------------------------------------- train

    private int tokens() { return intArg("tokens", 4096); }

    private void train() throws Exception {
        int tokens = tokens(), rank = intArg("rank", 64), steps = intArg("steps", 3);
        adapter = LoraAdapter.create(thinker, rank, 2.0 * rank, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), 1);
        long loraParams = 0;
        for (Tensor t : adapter.parameters()) loraParams += t.numel();
        thinker.gradientCheckpointing(true);
        var gen = new Generator(3);
        Tensor ids = Tensor.of(textTokens(gen, tokens), 1, tokens).to(device);
        Tensor labels = Tensor.of(textTokens(gen, tokens), 1, tokens).to(device);
        Tensor mask = Tensor.ones(DType.I64, 1, tokens);
        String optim = arg("optim", "adamw_torch");
        Optimizer opt = switch (optim) {
            case "adamw_torch" -> new AdamW(adapter.parameters(), AdamW.Config.defaults(1e-4));
            case "adamw_8bit" -> new AdamW8bit(adapter.parameters(), AdamW.Config.defaults(1e-4), false);
            case "paged_adamw_8bit" -> new AdamW8bit(adapter.parameters(), AdamW.Config.defaults(1e-4), true);
            default -> throw new IllegalArgumentException("--optim " + optim + ": adamw_torch, adamw_8bit or paged_adamw_8bit");
        };
        row("LoRA parameters", f("%.4f", loraParams / 1e9), "B", "r=" + rank + " on q/k/v/o and every expert's gate/up/down (gate_up at 2r as PEFT fuses it), f32 masters, " + optim);
        double[] stepMs = new double[steps];
        long peak = 0, before = 0;
        double loss = Double.NaN;
        for (int s = -1; s < steps; s++) {
            sync();
            System.gc();
            resetPeak();
            before = allocated();
            long t0 = System.nanoTime();
            try (var scope = Scope.open()) {
                var out = thinker.forwardHidden(ids, mask, null, null);
                Tensor l = thinker.loss(out, labels, mask);
                l.backward();
                if (s < 0) sync();                   // the warm-up step times the optimizer on its own
                long t1 = System.nanoTime();
                opt.step();
                if (s < 0) {
                    sync();
                    optimizerMs = (System.nanoTime() - t1) / 1e6;
                }
                opt.zeroGrad();
                if (s == steps - 1) loss = l.item();
                sync();
                long t2 = System.nanoTime();
                if (s >= 0) stepMs[s] = (t2 - t0) / 1e6;
            }
            peak = Math.max(peak, peakAllocated());
            System.out.printf("  step %d: %.0f ms%n", s, s >= 0 ? stepMs[s] : Double.NaN);
        }
        double ms = median(stepMs);
        row("train step " + tokens + " tokens", f("%.0f", ms), "ms", "median of " + steps + " after 1 warm-up; loss " + f("%.3f", loss));
        row("train tokens/s", f("%.0f", tokens / (ms / 1e3)), "tok/s", layers == fullLayers ? "" : layers + " layers");
        if (layers != fullLayers) row("train step ×" + fullLayers + "/" + layers + " (extrapolated)", f("%.0f", ms * fullLayers / layers), "ms",
                f("%.0f", tokens / (ms * fullLayers / layers / 1e3)) + " tok/s, estimate: time scaled by layers");
        row("peak device memory (step)", gb(peak), "GB", "allocator high-water mark; " + gb(before) + " GB held before the step (weights, LoRA, optimizer state)"
                + (layers == fullLayers ? "" : "; " + layers + " layers, not extrapolated"));
        if (opt instanceof AdamW8bit a) row("paged bytes (optimizer state in managed memory)", f("%.0f", (double) a.pagedBytes()), "B", a.name());
        trainStepMs = ms;
    }

    private double trainStepMs = Double.NaN, optimizerMs = Double.NaN;

    /** The step's time by part: layer 0's parts (each ×layers; forward ×2 under checkpointing), the head, the optimizer, the rest. */
    private void profile() throws Exception {
        if (adapter == null) throw new IllegalStateException("needs the train part (the adapter and the step time)");
        var t = LayerTimes.measure(thinker, 0, tokens(), 3, 5);
        double attn = layers * (2 * t.attention().forwardMs() + t.attention().backwardMs());
        double moe = layers * (2 * t.moe().forwardMs() + t.moe().backwardMs());
        double head = t.head().forwardMs() + t.head().backwardMs();
        double rest = trainStepMs - attn - moe - head - optimizerMs;
        String per = "layer fwd %.1f + bwd %.1f ms";
        row("  attention (×" + layers + ", fwd×2 + bwd)", f("%.0f", attn), "ms", String.format(Locale.ROOT, per, t.attention().forwardMs(), t.attention().backwardMs()) + share(attn));
        row("  MoE (×" + layers + ", fwd×2 + bwd)", f("%.0f", moe), "ms", String.format(Locale.ROOT, per, t.moe().forwardMs(), t.moe().backwardMs()) + share(moe));
        row("  lm_head + loss (fwd + bwd)", f("%.0f", head), "ms", share(head));
        row("  optimizer step", f("%.1f", optimizerMs), "ms", "timed in the warm-up step" + share(optimizerMs));
        row("  rest (step − parts)", f("%.0f", rest), "ms", "embedding, norms, residuals, launches; the parts are timed apart, synchronised,"
                + " so this is a rough balance" + share(rest));
    }

    private String share(double ms) {
        return Double.isNaN(trainStepMs) ? "" : f("; %.0f%% of the step", 100 * ms / trainStepMs);
    }

    // ---------------------------------------------------------------- NF4 experts

    /**
     * Layer 0's experts as NF4 (quantized on the device; with --use_4bit the base's own) against the bf16 stacked ones
     * (the base's dequantized under --use_4bit): MoE op forward + backward with LoRA.
     */
    private void nf4Experts() throws Exception {
        var text = thinker.config.text();
        int e = text.numExperts(), h = text.hiddenSize(), i = text.moeIntermediateSize(), k = text.numExpertsPerTok(), n = tokens();
        Map<String, dev.jomni.nn.Parameter> p = thinker.parameters();
        var pgu = p.get("model.layers.0.mlp.experts.gate_up_proj");
        var pdn = p.get("model.layers.0.mlp.experts.down_proj");
        Tensor gateUp, down;
        Nf4Weight gu4, dn4;
        try (var g = Autograd.noGrad()) {
            gateUp = pgu.dense();
            down = pdn.dense();
            sync();
            long t0 = System.nanoTime();
            gu4 = Nf4Weight.quantize("layers.0 gate_up", gateUp.reshape(e * 2 * i, h));
            dn4 = Nf4Weight.quantize("layers.0 down", down.reshape(e * h, i));
            sync();
            double q = (System.nanoTime() - t0) / 1e9;
            row("NF4 quantize layer 0 experts (" + device + ")", f("%.3f", q), "s", f("%.1f", 2.0 * (gateUp.numel() + down.numel()) / 1e9 / q)
                    + " GB/s of bf16; ×" + fullLayers + " = " + f("%.1f", q * fullLayers) + " s for a whole model");
        }
        var gen = new Generator(9);
        int r = intArg("rank", 64);
        Tensor x = Tensor.randn(gen, DType.F32, n, h).to(dtype).to(device);
        Tensor logits = Tensor.randn(gen, DType.F32, n, e).to(device);
        var top = logits.softmax(-1).topk(k, -1, true);
        Tensor w = top.values().div(top.values().sum(-1, true)).to(dtype);
        Tensor ids = top.indices();
        Tensor dy = Tensor.randn(gen, DType.F32, n, h).mul(1e-3).to(dtype).to(device);
        MoeExperts.Lora lgu = new MoeExperts.Lora(Tensor.randn(gen, DType.F32, e, 2 * r, h).mul(0.01).to(dtype).to(device).requiresGrad(true),
                Tensor.zeros(device, dtype, e, 2 * i, 2 * r).requiresGrad(true), 1.0);
        MoeExperts.Lora ldn = new MoeExperts.Lora(Tensor.randn(gen, DType.F32, e, r, i).mul(0.01).to(dtype).to(device).requiresGrad(true),
                Tensor.zeros(device, dtype, e, h, r).requiresGrad(true), 1.0);
        double bf16 = fwdBwd(() -> MoeExperts.moeExperts(x.detach().requiresGrad(true), ids, w, gateUp, down, lgu, ldn), dy);
        double nf4 = fwdBwd(() -> MoeExperts.moeExperts(x.detach().requiresGrad(true), ids, w, gu4, dn4, e, lgu, ldn), dy);
        row("MoE experts bf16, fwd+bwd " + n + " tok", f("%.1f", bf16), "ms", "one layer, LoRA r=" + r + "; ×" + fullLayers + " = " + f("%.0f", bf16 * fullLayers) + " ms");
        row("MoE experts NF4, fwd+bwd " + n + " tok", f("%.1f", nf4), "ms", "one layer, LoRA r=" + r + "; ×" + fullLayers + " = " + f("%.0f", nf4 * fullLayers) + " ms"
                + (Backend.of(device).kernels(MoeExperts.Kernels.class).takesNf4() ? "" : " (no NF4 kernel: dequantized copies per call)"));
        long nf4Bytes = gu4.packed().numel() + gu4.absmax().numel() + 4 * gu4.nestedAbsmax().numel() + dn4.packed().numel() + dn4.absmax().numel() + 4 * dn4.nestedAbsmax().numel();
        row("experts per layer, NF4 vs bf16", gb(nf4Bytes), "GB", "bf16: " + gb(2L * (gateUp.numel() + down.numel())) + " GB; ×" + fullLayers + ": "
                + gb(nf4Bytes * fullLayers) + " vs " + gb(2L * (gateUp.numel() + down.numel()) * fullLayers) + " GB");
    }

    private double fwdBwd(java.util.function.Supplier<Tensor> f, Tensor dy) {
        double[] t = new double[3];
        for (int rep = -1; rep < t.length; rep++) {
            try (var scope = Scope.open()) {
                sync();
                long t0 = System.nanoTime();
                f.get().backward(dy);
                sync();
                if (rep >= 0) t[rep] = (System.nanoTime() - t0) / 1e6;
            }
        }
        return median(t);
    }

    // ---------------------------------------------------------------- generation

    private void generate() throws Exception {
        int newTokens = intArg("new-tokens", 64), prompt = intArg("prompt", 128);
        for (String c : arg("concurrency", "1,10,64").split(",")) {
            int conc = Integer.parseInt(c.trim());
            String name = "generate concurrency " + conc;
            try {
                int blocksPer = (prompt + newTokens) / 16 + 2;
                try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, 1 + conc * blocksPer, conc, conc))) {
                    var gen = new Generator(100 + conc);
                    List<long[]> prompts = new ArrayList<>();
                    for (int r = 0; r < conc; r++) {
                        prompts.add(textTokens(gen, prompt));
                    }
                    // warm-up: one short request
                    engine.submit(new GenerationEngine.Request(prompts.getFirst(), null, Generation.Settings.greedy(4), null), tok -> {});
                    engine.runUntilIdle();
                    AtomicLong firstAt = new AtomicLong();
                    long t0 = System.nanoTime();
                    List<GenerationEngine.Handle> handles = new ArrayList<>();
                    for (long[] ids : prompts)
                        handles.add(engine.submit(new GenerationEngine.Request(ids, null, Generation.Settings.greedy(newTokens), null),
                                tok -> firstAt.compareAndSet(0, System.nanoTime())));
                    engine.runUntilIdle();
                    double s = (System.nanoTime() - t0) / 1e9;
                    int out = 0;
                    for (var hnd : handles) {
                        var res = hnd.result().join();
                        if (res.error() != null) throw new IllegalStateException(res.error());
                        out += res.tokens().length;
                    }
                    double decode = (System.nanoTime() - firstAt.get()) / 1e9;
                    row(name, f("%.1f", out / s), "tok/s", out + " tokens in " + f("%.2f", s) + " s (prompt " + prompt + ", prefill included); after the first token "
                            + f("%.1f", (out - 1) / Math.max(decode, 1e-9)) + " tok/s");
                }
            } catch (Throwable e) {
                e.printStackTrace(System.out);
                row(name, "FAILED", "", e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
            }
        }
    }

    /** Time to first token of one request holding 30 s of audio (3000 log-mel frames, random features) and a short text prompt. */
    private void ttft() throws Exception {
        var audioCfg = thinker.config.audio();
        int frames = intArg("audio-frames", 3000);
        int slots = AudioEncoder.outputLength(frames, audioCfg.nWindow());
        var gen = new Generator(21);
        Tensor features = Tensor.randn(gen, DType.F32, 1, audioCfg.numMelBins(), frames);
        long[] prompt = new long[slots + 2 + 16];
        int at = 0;
        prompt[at++] = thinker.config.audioStartTokenId();
        for (int j = 0; j < slots; j++) prompt[at++] = thinker.config.audioTokenId();
        prompt[at++] = thinker.config.audioEndTokenId();
        long[] text = textTokens(gen, prompt.length - at);
        System.arraycopy(text, 0, prompt, at, text.length);
        var audio = new Thinker.Audio(features, new int[] {frames});
        double[] t = new double[3];
        try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, prompt.length / 16 + 8, 1, 1))) {
            for (int rep = -1; rep < t.length; rep++) {
                AtomicLong first = new AtomicLong();
                long t0 = System.nanoTime();
                engine.submit(new GenerationEngine.Request(prompt, audio, Generation.Settings.greedy(1), null), tok -> first.compareAndSet(0, System.nanoTime()));
                engine.runUntilIdle();
                if (rep >= 0) t[rep] = (first.get() - t0) / 1e6;
            }
        }
        row("time to first token, 30 s audio", f("%.0f", median(t)), "ms", frames + " mel frames → " + slots + " audio tokens + " + (prompt.length - slots) + " text; median of 3");
    }

    /** Random text token ids: below the first special id (151643 in the release) and never an audio or vision marker. */
    private long[] textTokens(Generator gen, int n) {
        var c = thinker.config;
        int bound = Math.min(c.text().vocabSize(), 151643);
        long[] ids = new long[n];
        for (int j = 0; j < n; j++) {
            int id;
            do id = gen.nextInt(bound);
            while (id == c.audioTokenId() || id == c.audioStartTokenId() || id == c.audioEndTokenId() || c.visionTokenIds().contains(id));
            ids[j] = id;
        }
        return ids;
    }

    // ---------------------------------------------------------------- memory, output

    private long allocated() {
        return device.kind() == Device.Kind.CUDA ? dev.jomni.cuda.CudaBackend.memoryStats(device).allocatedBytes() : Memory.liveBytes();
    }

    private long peakAllocated() {
        return device.kind() == Device.Kind.CUDA ? dev.jomni.cuda.CudaBackend.memoryStats(device).peakAllocatedBytes() : Memory.peakBytes();
    }

    private void resetPeak() {
        if (device.kind() == Device.Kind.CUDA) dev.jomni.cuda.CudaBackend.resetPeakMemory(device);
        else Memory.resetPeak();
    }

    private void sync() { Backend.of(device).synchronize(device); }

    private static String gb(long bytes) { return String.format(Locale.ROOT, "%.2f", bytes / 1e9); }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length == 0 ? Double.NaN : s[s.length / 2];
    }

    private void print() {
        System.out.println();
        System.out.println("== Thinker30b: " + layers + " of " + fullLayers + " layers, " + tokens() + " tokens, " + device + ", " + java.time.Instant.now());
        int w = 8;
        for (String[] r : rows) w = Math.max(w, r[0].length());
        for (String[] r : rows) System.out.printf("%-" + w + "s %10s %-6s %s%n", r[0], r[1], r[2], r[3]);
    }
}

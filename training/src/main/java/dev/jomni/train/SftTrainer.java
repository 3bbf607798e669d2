package dev.jomni.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.data.SftData;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Supervised fine-tuning of a LoRA adapter on the thinker, as transformers' {@code Trainer} runs the seed's
 * {@code rest/train.py} (seed-pipeline.md §3.1), on the thinker's device. On CUDA the base is bf16 and computes in
 * bf16 (the LoRA terms cast their f32 master weights to the activations' dtype), the loss is the fused linear
 * cross-entropy over lm_head (unless lm_head has an adapter), and a step waits for the device once: its
 * micro-batches' losses stay on the device until all have run backward, clipping computes its scale on the
 * device, and the optimizer is one fused kernel per parameter; the gradient norm is read only on logged steps.
 *
 * <h2>A step</h2>
 * Optimizer step s (0-based) takes micro-batches [s'·G, (s'+1)·G) of its epoch (s' = s mod steps-per-epoch,
 * G = gradient_accumulation_steps; an epoch's last step may take fewer, as transformers does), each of
 * per_device_train_batch_size samples in the epoch's shuffled order. Every micro-batch's mean token loss is
 * weighted by its share of the step's label tokens, so the step's loss is the mean over all its tokens, as
 * transformers ≥ 4.46 does with {@code num_items_in_batch} (not the mean of micro-batch means). Then the global
 * gradient norm is clipped to max_grad_norm, the learning rate set from the schedule for step s, and the
 * optimizer steps.
 *
 * <h2>Exact resume</h2>
 * Nothing random runs from a stream that a checkpoint would have to capture: epoch e's order is a Fisher–Yates
 * shuffle from a generator seeded by (seed, e), and micro-batch k's LoRA dropout masks by (seed, k) (see
 * {@link dev.jomni.nn.Lora.Dropout}); the schedule is a function of the step. A checkpoint therefore holds the
 * adapter, the optimizer state and the step (with the data position and seed for checking), and a resumed run
 * computes bit for bit what the uninterrupted one would.
 *
 * <h2>Checkpoints</h2>
 * {@code OUTPUT_DIR/checkpoint-<step>/}: {@code adapter_config.json} + {@code adapter_model.safetensors} (PEFT),
 * {@code optimizer.safetensors}, {@code scheduler.json}, {@code rng_state.json}, {@code trainer_state.json}; written
 * into a hidden temporary folder and renamed, so a checkpoint is complete or absent after a crash (a power loss
 * may still lose what the OS had not flushed: files are not fsynced). The oldest beyond save_total_limit are
 * deleted. The final adapter goes to {@code OUTPUT_DIR} itself, as {@code Trainer.save_model} writes it.
 */
public final class SftTrainer {
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String STATE = "trainer_state.json", OPTIMIZER = "optimizer.safetensors", SCHEDULER = "scheduler.json",
            RNG = "rng_state.json", METRICS = "metrics.jsonl";

    /** HF TrainingArguments' names: see {@code omni sft --help}. maxSteps &gt; 0 overrides numTrainEpochs. */
    public record Config(Path outputDir, double numTrainEpochs, int maxSteps, int perDeviceTrainBatchSize, int gradientAccumulationSteps,
                         double learningRate, String lrSchedulerType, double warmupRatio, int warmupSteps, double weightDecay,
                         double maxGradNorm, int saveSteps, int saveTotalLimit, int loggingSteps, long seed, String optim) {
        public Config {
            if (perDeviceTrainBatchSize < 1) throw new IllegalArgumentException("per_device_train_batch_size " + perDeviceTrainBatchSize + " < 1");
            if (gradientAccumulationSteps < 1) throw new IllegalArgumentException("gradient_accumulation_steps " + gradientAccumulationSteps + " < 1");
            if (maxSteps <= 0 && !(numTrainEpochs > 0)) throw new IllegalArgumentException("num_train_epochs " + numTrainEpochs + " must be positive (or give max_steps)");
            if (loggingSteps < 1) throw new IllegalArgumentException("logging_steps " + loggingSteps + " < 1");
        }
    }

    /** A step's loss was NaN or infinite: training stopped, the last checkpoint written before it is intact. */
    public static final class NonFiniteLossException extends RuntimeException {
        NonFiniteLossException(String message) { super(message); }
    }

    /** What the run did: its steps, the first and last logged losses, and the optimizer state size. */
    public record Result(int globalStep, double firstLoss, double lastLoss, long optimizerStateBytes, List<Path> checkpoints) {}

    private final Thinker thinker;
    private final LoraAdapter adapter;
    private final SftData data;
    private final Config c;
    private final PrintStream log;
    private final boolean tty;
    private final List<Tensor> params;
    private final int batchesPerEpoch, stepsPerEpoch, totalSteps;
    private final LrSchedule schedule;

    public SftTrainer(Thinker thinker, LoraAdapter adapter, SftData data, Config config, PrintStream log, boolean tty) {
        this.thinker = thinker;
        this.adapter = adapter;
        this.data = data;
        this.c = config;
        this.log = log;
        this.tty = tty;
        params = adapter.parameters();
        for (Tensor p : params) p.requiresGrad(true);                    // the base stays frozen
        batchesPerEpoch = (data.size() + c.perDeviceTrainBatchSize() - 1) / c.perDeviceTrainBatchSize();
        stepsPerEpoch = Math.max(1, (batchesPerEpoch + c.gradientAccumulationSteps() - 1) / c.gradientAccumulationSteps());
        totalSteps = c.maxSteps() > 0 ? c.maxSteps() : (int) Math.ceil(c.numTrainEpochs() * stepsPerEpoch);
        schedule = LrSchedule.of(c.lrSchedulerType(), c.learningRate(), c.warmupRatio(), c.warmupSteps(), totalSteps);
    }

    public int totalSteps() { return totalSteps; }

    /**
     * The checkpoint {@code spec} names: a folder, or {@code latest} for the highest-numbered complete
     * {@code checkpoint-N} in {@code outputDir}. An error when there is none.
     */
    public static Path resolveCheckpoint(Path outputDir, String spec) {
        if (!spec.equals("latest")) {
            Path p = Path.of(spec);
            if (!Files.isRegularFile(p.resolve(STATE))) throw new IllegalArgumentException(p.resolve(STATE) + ": no such file (not a checkpoint folder)");
            return p;
        }
        return checkpoints(outputDir).stream().reduce((a, b) -> b)
                .orElseThrow(() -> new IllegalArgumentException(outputDir + ": no checkpoint-N folder to resume from"));
    }

    /** Complete checkpoints (those with a trainer_state.json) in step order. */
    static List<Path> checkpoints(Path outputDir) {
        if (!Files.isDirectory(outputDir)) return List.of();
        try (Stream<Path> s = Files.list(outputDir)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+") && Files.isRegularFile(p.resolve(STATE)))
                    .sorted(Comparator.comparingLong(SftTrainer::stepOf)).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(outputDir + ": cannot list", e);
        }
    }

    private static long stepOf(Path checkpoint) { return Long.parseLong(checkpoint.getFileName().toString().substring("checkpoint-".length())); }

    /** Trains from scratch, or from {@code resume} (a checkpoint folder whose adapter is already applied); returns what it did. */
    public Result train(Path resume) {
        var optimizer = Optimizer.create(c.optim(), params, new AdamW.Config(c.learningRate(), 0.9, 0.999, 1e-8, c.weightDecay()));
        try (optimizer) {
            return run(optimizer, resume);
        }
    }

    private Result run(Optimizer optimizer, Path resume) {
        int start = 0;
        ArrayNode history = JSON.createArrayNode();
        if (resume != null) {
            ObjectNode state = readJson(resume.resolve(STATE));
            checkSame(resume.resolve(STATE), state);
            start = state.get("global_step").asInt();
            state.withArray("log_history").forEach(history::add);
            Path opt = resume.resolve(OPTIMIZER);
            if (!Files.isRegularFile(opt)) throw new IllegalArgumentException(opt + ": no such file (the checkpoint is incomplete)");
            try (var st = SafeTensors.open(opt)) {
                Map<String, TensorData> saved = new LinkedHashMap<>();
                for (String n : st.names()) saved.put(n, st.get(n).data());
                String savedOptim = st.metadata().getOrDefault("optim", "?");
                if (!savedOptim.equals(optimizer.name()))
                    throw new IllegalArgumentException(opt + ": state of optim " + savedOptim + ", this run uses --optim " + optimizer.name());
                optimizer.loadState(saved, opt.toString());
            }
            if (optimizer.steps() != start)
                throw new IllegalArgumentException(opt + ": optimizer step " + optimizer.steps() + " differs from global_step " + start + " in " + STATE);
            log.println("resuming from " + resume + " at step " + start + " of " + totalSteps);
        }
        writeMetrics(history);
        long trainable = params.stream().mapToLong(Tensor::numel).sum();
        log.printf(Locale.ROOT, "sft: %d samples, %d batch(es) of %d per epoch, %d step(s) per epoch (accumulating %d), %d steps; "
                        + "warmup %d; %s, state %d bytes (f32 AdamW would take %d)%n", data.size(), batchesPerEpoch, c.perDeviceTrainBatchSize(),
                stepsPerEpoch, c.gradientAccumulationSteps(), totalSteps, schedule.warmupSteps(), optimizer.name(), optimizer.stateBytes(), trainable * 8);
        if (optimizer instanceof AdamW8bit o && o.name().startsWith("paged"))
            log.println(thinker.device().kind() == Device.Kind.CPU
                    ? "paged: the 8-bit state is memory-mapped from a temporary file (the OS may page it); on the CPU no bytes move to a device"
                    : "paged: " + o.pagedBytes() + " bytes of optimizer state in CUDA managed memory on " + thinker.device()
                            + " (evicted to the host under memory pressure, fetched back page by page when a step touches it)");
        log.println("LoRA: " + trainable + " trainable parameters; targets " + adapter.matches());
        if (adapter.dropoutNote() != null) log.println(adapter.dropoutNote());
        double first = Double.NaN, last = Double.NaN, windowLoss = 0;
        int windowSteps = 0;
        long windowTokens = 0, windowStart = System.nanoTime();
        if (history.size() > 0) first = history.get(0).path("loss").asDouble(Double.NaN);
        List<Path> saved = new ArrayList<>();
        try (var bar = Progress.start("sft", totalSteps, log, tty)) {
            bar.advance(start);
            for (int s = start; s < totalSteps; s++) {
                double lr = schedule.at(s);
                optimizer.learningRate(lr);
                StepResult r = step(s, optimizer);
                windowLoss += r.loss;
                double gradNorm = Double.NaN;
                windowSteps++;
                windowTokens += r.tokens;
                int done = s + 1;
                if (done % c.loggingSteps() == 0 || done == totalSteps) {
                    gradNorm = r.norm();
                    double secs = (System.nanoTime() - windowStart) / 1e9;
                    ObjectNode entry = JSON.createObjectNode();
                    entry.put("step", done).put("epoch", (double) done / stepsPerEpoch).put("loss", windowLoss / windowSteps)
                            .put("learning_rate", lr).put("grad_norm", gradNorm).put("tokens_per_s", secs > 0 ? windowTokens / secs : 0);
                    history.add(entry);
                    appendMetric(entry);
                    if (Double.isNaN(first)) first = windowLoss / windowSteps;
                    last = windowLoss / windowSteps;
                    bar.status(String.format(Locale.ROOT, "loss %.4f, lr %.3g, %.0f tok/s", last, lr, secs > 0 ? windowTokens / secs : 0));
                    windowLoss = 0;
                    windowSteps = 0;
                    windowTokens = 0;
                    windowStart = System.nanoTime();
                }
                if (r.gradNorm != null) r.gradNorm.close();
                bar.advance(1);
                if ((c.saveSteps() > 0 && done % c.saveSteps() == 0) || done == totalSteps) saved.add(save(done, optimizer, history));
            }
        }
        adapter.save(c.outputDir());
        log.println("wrote the adapter to " + c.outputDir() + " (" + LoraAdapter.CONFIG + ", " + LoraAdapter.WEIGHTS + ")");
        return new Result(totalSteps, first, last, optimizer.stateBytes(), saved);
    }

    /** A step's loss (read back once per step), its gradient norm (on the device until a logged step reads it) and tokens. */
    private record StepResult(double loss, Tensor gradNorm, long tokens) {
        double norm() { return gradNorm == null ? 0 : gradNorm.item(); }
    }

    /**
     * One optimizer step. On a GPU nothing waits for the device but one read per step: the micro-batches' losses
     * stay on the device as they are computed, then are read together (with their finiteness check) after the
     * last backward; clipping and the optimizer run on the device, and the gradient norm is read only when a
     * step is logged.
     */
    private StepResult step(int s, Optimizer optimizer) {
        int epoch = s / stepsPerEpoch, inEpoch = s % stepsPerEpoch;
        int[] order = order(epoch);
        int g = c.gradientAccumulationSteps(), bs = c.perDeviceTrainBatchSize();
        int from = inEpoch * g, to = Math.min(batchesPerEpoch, from + g);
        List<SftData.Batch> batches = new ArrayList<>();
        long targets = 0, tokens = 0;
        for (int k = from; k < to; k++) {
            int lo = k * bs, hi = Math.min(data.size(), lo + bs);
            int[] idx = new int[hi - lo];
            System.arraycopy(order, lo, idx, 0, idx.length);
            SftData.Batch b = data.batch(idx);
            batches.add(b);
            targets += b.targetTokens();
        }
        Device device = thinker.device();
        Tensor losses = Tensor.zeros(device, DType.F32, batches.size());        // each micro-batch's weighted loss
        for (int k = 0; k < batches.size(); k++) {
            SftData.Batch b = batches.get(k);
            tokens += (long) b.attentionMask().sum().item();                   // a host tensor: no device wait
            if (b.targetTokens() == 0) continue;                               // nothing to learn from (all prompt)
            try (var scope = Scope.open()) {
                adapter.dropout().set(true, mix(c.seed(), (long) s * g + k + 1));
                Thinker.Output out = thinker.forwardHidden(b.inputIds(), b.attentionMask(), b.audio(), null);
                Tensor l = loss(out, b).mul(b.weight() * b.targetTokens() / targets);   // weight: 1 unless SftData.weighted()
                try (var ng = Autograd.noGrad()) {
                    losses.narrow(0, k, 1).assign(l.reshape(1));
                }
                l.backward();
            }
        }
        adapter.dropout().set(false, 0);
        double[] values = losses.toDoubleArray();                              // the step's one read of the device
        losses.close();
        double loss = 0;
        for (int k = 0; k < values.length; k++) {
            if (!Double.isFinite(values[k]))
                throw new NonFiniteLossException("step " + (s + 1) + ": the loss is " + values[k] + " on the batch of samples " + batches.get(k).ids()
                        + "; training stopped, the last checkpoint written is intact");
            loss += values[k];
        }
        Tensor norm;
        try (var scope = Scope.open()) {
            norm = GradClip.clipOnDevice(params, c.maxGradNorm());
            optimizer.step();
        }
        optimizer.zeroGrad();
        return new StepResult(loss, norm, tokens);
    }

    /**
     * The training loss of one micro-batch: the one place it is computed (a fused linear–cross-entropy path can
     * replace it). Mean over the batch's label tokens, with the router's auxiliary loss when the config asks.
     */
    private Tensor loss(Thinker.Output out, SftData.Batch b) {
        return thinker.loss(out, b.labels(), b.attentionMask());
    }

    int[] order(int epoch) { return Seeds.epochOrder(data.size(), c.seed(), epoch); }

    static long mix(long seed, long n) { return Seeds.mix(seed, n); }

    private ObjectNode runState(int step, ArrayNode history) {
        ObjectNode s = JSON.createObjectNode();
        s.put("global_step", step).put("epoch", (double) step / stepsPerEpoch).put("max_steps", totalSteps)
                .put("num_train_epochs", c.numTrainEpochs()).put("logging_steps", c.loggingSteps()).put("save_steps", c.saveSteps())
                .put("train_batch_size", c.perDeviceTrainBatchSize()).put("gradient_accumulation_steps", c.gradientAccumulationSteps())
                .put("seed", c.seed()).put("num_samples", data.size()).put("optim", c.optim());
        s.putObject("data_position").put("epoch", step / stepsPerEpoch).put("step_in_epoch", step % stepsPerEpoch)
                .put("micro_batch_in_epoch", Math.min(batchesPerEpoch, (step % stepsPerEpoch) * c.gradientAccumulationSteps()));
        s.set("log_history", history.deepCopy());
        return s;
    }

    /** A resumed run must be the same run: fields that decide the data order, the steps or the state must agree. */
    private void checkSame(Path file, ObjectNode saved) {
        ObjectNode now = runState(0, JSON.createArrayNode());
        for (String f : List.of("max_steps", "train_batch_size", "gradient_accumulation_steps", "seed", "num_samples", "optim"))
            if (!saved.path(f).asText().equals(now.path(f).asText()))
                throw new IllegalArgumentException(file + ": field '" + f + "' is " + saved.path(f) + ", this run has " + now.path(f)
                        + " (an exact resume needs the same data and settings)");
    }

    private Path save(int step, Optimizer optimizer, ArrayNode history) {
        Path dir = c.outputDir().resolve("checkpoint-" + step), tmp = c.outputDir().resolve(".checkpoint-" + step + ".tmp");
        try {
            deleteTree(tmp);
            Files.createDirectories(tmp);
            adapter.save(tmp);
            SafeTensors.write(tmp.resolve(OPTIMIZER), optimizer.state(), Map.of("optim", optimizer.name(), "format", "pt"));
            ObjectNode sched = JSON.createObjectNode();
            sched.put("lr_scheduler_type", schedule.type()).put("base_lr", schedule.lr()).put("warmup_steps", schedule.warmupSteps())
                    .put("total_steps", totalSteps).put("last_epoch", step).put("next_lr", schedule.at(step));
            writeJson(tmp.resolve(SCHEDULER), sched);
            ObjectNode rng = JSON.createObjectNode();
            rng.put("seed", c.seed()).put("scheme", "counter-based: epoch order from (seed, epoch), LoRA dropout from (seed, micro-batch); "
                    + "no stream position to restore");
            writeJson(tmp.resolve(RNG), rng);
            writeJson(tmp.resolve(STATE), runState(step, history));      // last: its presence marks the folder complete
            if (Files.exists(dir)) {
                Path old = c.outputDir().resolve(".checkpoint-" + step + ".old");
                deleteTree(old);
                Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
                deleteTree(old);
            } else Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write the checkpoint", e);
        }
        if (c.saveTotalLimit() > 0) {
            List<Path> all = checkpoints(c.outputDir());
            for (int i = 0; i < all.size() - c.saveTotalLimit(); i++) deleteTree(all.get(i));
        }
        return dir;
    }

    private void writeMetrics(ArrayNode history) {
        var sb = new StringBuilder();
        for (JsonNode e : history) sb.append(e).append('\n');
        try {
            Files.createDirectories(c.outputDir());
            Path tmp = c.outputDir().resolve(METRICS + ".tmp");
            Files.writeString(tmp, sb, StandardCharsets.UTF_8);
            Files.move(tmp, c.outputDir().resolve(METRICS), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(c.outputDir().resolve(METRICS) + ": cannot write", e);
        }
    }

    private void appendMetric(ObjectNode entry) {
        try {
            Files.writeString(c.outputDir().resolve(METRICS), entry + "\n", StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(c.outputDir().resolve(METRICS) + ": cannot append", e);
        }
    }

    private static ObjectNode readJson(Path file) {
        try {
            if (JSON.readTree(file.toFile()) instanceof ObjectNode o) return o;
            throw new IllegalArgumentException(file + ": not a JSON object");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage());
        }
    }

    private static void writeJson(Path file, JsonNode node) throws IOException {
        JSON.writerWithDefaultPrettyPrinter().writeValue(file.toFile(), node);
    }

    private static void deleteTree(Path p) {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        } catch (IOException e) {
            throw new UncheckedIOException(p + ": cannot delete", e);
        }
    }
}

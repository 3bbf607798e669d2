package dev.jomni.grpo;

import dev.jomni.train.Seeds;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.AdamW;
import dev.jomni.train.GradClip;
import dev.jomni.train.LrSchedule;
import dev.jomni.train.Optimizer;
import dev.jomni.train.Progress;
import dev.jomni.train.SftTrainer;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * GRPO on the thinker's LoRA adapter, as TRL's GRPOTrainer schedules it, on the thinker's device.
 *
 * <h2>A generation batch and its steps</h2>
 * TRL's per_device_train_batch_size counts completions: a generation batch is per_device_train_batch_size ×
 * gradient_accumulation_steps completions, i.e. that divided by num_generations prompts, taken in the epoch's shuffled
 * order. Each prompt is sampled num_generations times by the in-process {@link GenerationEngine} with the current
 * adapter live (sample i from seed + i), the completions decoded and scored ({@link Rewards}), and the advantages
 * normalised per group ({@link Advantages}). With β ≠ 0 the reference log-probs come from the same thinker with the
 * adapter detached (no second copy of the weights); with num_iterations μ &gt; 1 the sampling policy's log-probs are
 * computed once, before the first update, and the batch is reused for μ optimizer steps. Each step runs the
 * gradient_accumulation_steps micro-batches of per_device_train_batch_size completions ({@link GrpoLoss}), clips the
 * gradient norm and steps the optimizer with the schedule's learning rate.
 *
 * <h2>Per-token log-probs</h2>
 * One forward per completion over prompt + completion (its audio included); the logits at the positions that predict
 * the completion tokens, divided by the sampling temperature as TRL does, go through log-softmax and a gather.
 *
 * <h2>Exact resume</h2>
 * Nothing random comes from a stream: the epoch order from (seed, epoch), the sampling seeds from (seed, generation
 * batch, prompt), the LoRA dropout from (seed, micro-batch). Checkpoints are written only at the end of a generation
 * batch's μ steps (a save_steps falling inside is taken at its end), so a resumed run regenerates from the restored
 * adapter exactly what the uninterrupted one generated.
 */
public final class GrpoTrainer {
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String STATE = SftTrainer.STATE, OPTIMIZER = SftTrainer.OPTIMIZER, METRICS = SftTrainer.METRICS;

    /** TRL GRPOConfig's names; see {@code omni grpo --help}. maxSteps &gt; 0 overrides numTrainEpochs. */
    public record Config(Path outputDir, double numTrainEpochs, int maxSteps, int perDeviceTrainBatchSize, int gradientAccumulationSteps,
                         int numGenerations, int numIterations, double learningRate, String lrSchedulerType, double warmupRatio,
                         double weightDecay, double maxGradNorm, int saveSteps, int saveTotalLimit, int loggingSteps, long seed, String optim,
                         double temperature, double topP, int topK, int maxCompletionLength, boolean maskTruncatedCompletions,
                         Advantages.Scale scaleRewards, GrpoLoss.Config loss) {
        public Config {
            if (numGenerations < 2) throw new IllegalArgumentException("num_generations " + numGenerations + " must be at least 2 (a group needs a spread)");
            if ((perDeviceTrainBatchSize * gradientAccumulationSteps) % numGenerations != 0)
                throw new IllegalArgumentException("per_device_train_batch_size × gradient_accumulation_steps = " + perDeviceTrainBatchSize * gradientAccumulationSteps
                        + " completions must be a multiple of num_generations " + numGenerations + " (TRL's rule)");
            if (numIterations < 1) throw new IllegalArgumentException("num_iterations " + numIterations + " < 1");
            if (maxSteps <= 0 && !(numTrainEpochs > 0)) throw new IllegalArgumentException("num_train_epochs " + numTrainEpochs + " must be positive (or give max_steps)");
            if (loggingSteps < 1) throw new IllegalArgumentException("logging_steps " + loggingSteps + " < 1");
        }
    }

    /** What the run did. */
    public record Result(int globalStep, double firstReward, double lastReward, List<Path> checkpoints) {}

    private final Thinker thinker;
    private final LoraAdapter adapter;
    private final List<GrpoPrompt> prompts;
    private final Rewards rewards;
    private final Config c;
    private final Set<Long> stops;
    private final PrintStream log;
    private final boolean tty;
    private final List<Tensor> params;
    private final int promptsPerGeneration, generationsPerEpoch, stepsPerEpoch, totalSteps;
    private final LrSchedule schedule;

    public GrpoTrainer(Thinker thinker, LoraAdapter adapter, List<GrpoPrompt> prompts, Rewards rewards, Config config, Decoder decoder,
                       Set<Long> stopTokens, PrintStream log, boolean tty) {
        this.thinker = thinker;
        this.adapter = adapter;
        this.prompts = List.copyOf(prompts);
        this.rewards = rewards;
        this.c = config;
        this.decoder = decoder;
        this.stops = Set.copyOf(stopTokens);
        this.log = log;
        this.tty = tty;
        if (prompts.isEmpty()) throw new IllegalArgumentException("grpo: no training prompts");
        params = adapter.parameters();
        for (Tensor p : params) p.requiresGrad(true);
        promptsPerGeneration = c.perDeviceTrainBatchSize() * c.gradientAccumulationSteps() / c.numGenerations();
        generationsPerEpoch = Math.max(1, (prompts.size() + promptsPerGeneration - 1) / promptsPerGeneration);
        stepsPerEpoch = generationsPerEpoch * c.numIterations();
        totalSteps = c.maxSteps() > 0 ? c.maxSteps() : (int) Math.ceil(c.numTrainEpochs() * stepsPerEpoch);
        schedule = LrSchedule.of(c.lrSchedulerType(), c.learningRate(), c.warmupRatio(), 0, totalSteps);
    }

    /** Completion tokens (the stop token excluded) to text. */
    public interface Decoder {
        String decode(long[] tokens);
    }

    private final Decoder decoder;

    public int totalSteps() { return totalSteps; }

    /** One sampled completion and what the loss needs of it. */
    record Rollout(int prompt, long[] tokens, boolean truncated, double[] rewards, double reward, double advantage, Tensor oldLogps, Tensor refLogps,
                   String text) {}

    public Result train(Path resume) {
        var optimizer = Optimizer.create(c.optim(), params, new AdamW.Config(c.learningRate(), 0.9, 0.999, 1e-8, c.weightDecay()));
        int blocks = 8 + promptsPerGeneration * c.numGenerations()
                * ((prompts.stream().mapToInt(p -> p.ids().length).max().orElse(1) + c.maxCompletionLength()) / 16 + 2);
        try (optimizer; var engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, blocks, Math.max(1, promptsPerGeneration * c.numGenerations()), 256))) {
            engine.addAdapter("policy", adapter);
            return run(optimizer, engine, resume);
        }
    }

    private Result run(Optimizer optimizer, GenerationEngine engine, Path resume) {
        int start = 0;
        ArrayNode history = JSON.createArrayNode();
        if (resume != null) {
            ObjectNode state = readJson(resume.resolve(STATE));
            for (String f : List.of("max_steps", "train_batch_size", "gradient_accumulation_steps", "num_generations", "num_iterations", "seed", "num_samples", "optim"))
                if (!state.path(f).asText().equals(runState(0, JSON.createArrayNode()).path(f).asText()))
                    throw new IllegalArgumentException(resume.resolve(STATE) + ": field '" + f + "' is " + state.path(f) + ", this run has "
                            + runState(0, JSON.createArrayNode()).path(f) + " (an exact resume needs the same data and settings)");
            start = state.get("global_step").asInt();
            state.withArray("log_history").forEach(history::add);
            Path opt = resume.resolve(OPTIMIZER);
            try (var st = SafeTensors.open(opt)) {
                Map<String, TensorData> saved = new LinkedHashMap<>();
                for (String n : st.names()) saved.put(n, st.get(n).data());
                optimizer.loadState(saved, opt.toString());
            }
            log.println("resuming from " + resume + " at step " + start + " of " + totalSteps);
        }
        writeMetrics(history);
        log.printf(Locale.ROOT, "grpo: %d prompts, %d per generation batch × %d generations, %d step(s) per epoch (num_iterations %d), %d steps; "
                        + "loss_type %s, beta %s, epsilon %s/%s, scale_rewards %s, temperature %s; rewards %s weights %s%n",
                prompts.size(), promptsPerGeneration, c.numGenerations(), stepsPerEpoch, c.numIterations(), totalSteps, c.loss().lossType().flag(),
                c.loss().beta(), c.loss().epsilon(), c.loss().epsilonHigh(), c.scaleRewards().name().toLowerCase(Locale.ROOT), c.temperature(),
                rewards.functions().stream().map(Rewards.Function::name).toList(), java.util.Arrays.toString(rewards.weights()));
        double first = history.size() > 0 ? history.get(0).path("reward").asDouble(Double.NaN) : Double.NaN, last = Double.NaN;
        List<Path> saved = new ArrayList<>();
        List<Rollout> batch = null;
        ObjectNode genMetrics = null;
        boolean pendingSave = false;
        try (var bar = Progress.start("grpo", totalSteps, log, tty)) {
            bar.advance(start);
            for (int s = start; s < totalSteps; s++) {
                int gen = s / c.numIterations();
                long t0 = System.nanoTime();
                if (batch == null || s % c.numIterations() == 0) {
                    genMetrics = JSON.createObjectNode();
                    batch = generate(engine, gen, genMetrics);
                }
                double genSecs = (System.nanoTime() - t0) / 1e9;
                double lr = schedule.at(s);
                optimizer.learningRate(lr);
                ObjectNode entry = JSON.createObjectNode();
                entry.put("step", s + 1).put("epoch", (double) (s + 1) / stepsPerEpoch);
                long t1 = System.nanoTime();
                update(s, batch, optimizer, entry);
                entry.put("learning_rate", lr);
                if (s % c.numIterations() == 0) entry.setAll(genMetrics);
                entry.put("generation_s", genSecs).put("train_s", (System.nanoTime() - t1) / 1e9);
                int done = s + 1;
                if (done % c.loggingSteps() == 0 || done == totalSteps) {
                    history.add(entry);
                    appendMetric(entry);
                }
                if (entry.has("reward")) {
                    if (Double.isNaN(first)) first = entry.get("reward").asDouble();
                    last = entry.get("reward").asDouble();
                }
                bar.status(String.format(Locale.ROOT, "reward %.3f, kl %.4f, lr %.3g", last, entry.path("kl").asDouble(0), lr));
                bar.advance(1);
                if (c.saveSteps() > 0 && done % c.saveSteps() == 0) pendingSave = true;
                boolean groupEnd = done % c.numIterations() == 0;
                if ((pendingSave && groupEnd) || done == totalSteps) {
                    saved.add(save(done, optimizer, history));
                    pendingSave = false;
                }
            }
        }
        adapter.attach();
        adapter.save(c.outputDir());
        log.println("wrote the adapter to " + c.outputDir() + " (" + LoraAdapter.CONFIG + ", " + LoraAdapter.WEIGHTS + ")");
        return new Result(totalSteps, first, last, saved);
    }

    /** Samples generation batch {@code gen}, scores it and fills the reward and completion metrics TRL logs. */
    private List<Rollout> generate(GenerationEngine engine, int gen, ObjectNode m) {
        int epoch = gen / generationsPerEpoch, k = gen % generationsPerEpoch, g = c.numGenerations();
        int[] order = order(epoch);
        adapter.dropout().set(false, 0);
        List<Integer> chosen = new ArrayList<>();
        for (int j = 0; j < promptsPerGeneration; j++) chosen.add(order[(k * promptsPerGeneration + j) % order.length]);   // the last batch wraps, as TRL's sampler repeats
        List<List<GenerationEngine.Handle>> handles = new ArrayList<>();
        try (var ng = Autograd.noGrad()) {
            for (int j = 0; j < chosen.size(); j++) {
                GrpoPrompt p = prompts.get(chosen.get(j));
                var settings = new Generation.Settings(c.maxCompletionLength(), c.temperature(), c.topK(), c.topP(), mix(c.seed(), (long) gen * 1_000_003L + j), stops);
                handles.add(engine.submit(new GenerationEngine.Request(p.ids(), p.audio(), settings, "policy", true), g, i -> t -> {}));
            }
            engine.runUntilIdle();
        }
        List<long[]> tokens = new ArrayList<>();
        List<Boolean> truncated = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        int nf = rewards.functions().size();
        double[][] per = new double[chosen.size() * g][];
        double[] total = new double[chosen.size() * g];
        for (int j = 0; j < chosen.size(); j++)
            for (int i = 0; i < g; i++) {
                GenerationEngine.Result r = handles.get(j).get(i).result().join();
                if (r.finish() == GenerationEngine.Finish.ERROR) throw new IllegalStateException("grpo: generation failed: " + r.error());
                long[] t = r.tokens();
                boolean cut = r.finish() == GenerationEngine.Finish.LENGTH && (t.length == 0 || !stops.contains(t[t.length - 1]));
                // A sampled audio or image/video placeholder cannot be fed back through a full forward (the thinker would take it
                // for a clip's slot, or refuse it, as transformers does): the completion ends before it, counted as truncated.
                for (int q = 0; q < t.length; q++)
                    if (placeholder(t[q])) {
                        t = java.util.Arrays.copyOf(t, q);
                        cut = true;
                        break;
                    }
                int n = t.length > 0 && stops.contains(t[t.length - 1]) ? t.length - 1 : t.length;
                String text = decoder.decode(java.util.Arrays.copyOf(t, n));
                int row = j * g + i;
                per[row] = rewards.perFunction(prompts.get(chosen.get(j)).item(), text);
                total[row] = rewards.total(per[row]);
                tokens.add(t);
                truncated.add(cut);
                texts.add(text);
            }
        var adv = Advantages.of(total, g, c.scaleRewards());
        List<Rollout> out = new ArrayList<>();
        for (int row = 0; row < total.length; row++) {
            GrpoPrompt p = prompts.get(chosen.get(row / g));
            long[] t = tokens.get(row);
            Tensor old = null, ref = null;
            if (t.length > 0) {
                try (var ng = Autograd.noGrad()) {
                    if (c.numIterations() > 1) {
                        adapter.attach();
                        old = logps(p, t, null).detach();
                    }
                    if (c.loss().beta() != 0) {
                        adapter.detach();
                        ref = logps(p, t, null).detach();
                    }
                }
            }
            out.add(new Rollout(chosen.get(row / g), t, truncated.get(row), per[row], total[row], adv.advantages()[row], old, ref, texts.get(row)));
        }
        adapter.attach();
        // what TRL logs per generation batch
        m.put("reward", Advantages.mean(total)).put("reward_std", Advantages.std(total, 0, total.length));
        for (int f = 0; f < nf; f++) {
            double[] col = new double[total.length];
            for (int row = 0; row < col.length; row++) col[row] = per[row][f];
            String name = rewards.functions().get(f).name();
            m.put("rewards/" + name + "/mean", Advantages.mean(col)).put("rewards/" + name + "/std", Advantages.std(col, 0, col.length));
        }
        m.put("frac_reward_zero_std", adv.fracZeroStd());
        double sum = 0, min = Double.MAX_VALUE, max = 0, termSum = 0;
        int cut = 0, term = 0;
        for (int row = 0; row < tokens.size(); row++) {
            int len = tokens.get(row).length;
            sum += len;
            min = Math.min(min, len);
            max = Math.max(max, len);
            if (truncated.get(row)) cut++;
            else {
                term++;
                termSum += len;
            }
        }
        m.put("completions/mean_length", sum / tokens.size()).put("completions/min_length", min).put("completions/max_length", max)
                .put("completions/clipped_ratio", (double) cut / tokens.size()).put("completions/mean_terminated_length", term > 0 ? termSum / term : 0);
        return out;
    }

    /** One optimizer step over the generation batch's micro-batches; fills loss, kl, entropy, clip ratios and grad_norm. */
    private void update(int s, List<Rollout> batch, Optimizer optimizer, ObjectNode entry) {
        int bs = c.perDeviceTrainBatchSize(), ga = c.gradientAccumulationSteps();
        double numItems = 0;
        for (Rollout r : batch) numItems += mask(r).length;
        double loss = 0, klSum = 0, tokens = 0, low = 0, high = 0, region = 0, cispo = 0, count = 0, entSum = 0, entTokens = 0;
        for (int k = 0; k < ga; k++) {
            List<Rollout> micro = batch.subList(k * bs, Math.min(batch.size(), (k + 1) * bs));
            int t = micro.stream().mapToInt(r -> r.tokens().length).max().orElse(0);
            if (t == 0) continue;
            try (var scope = Scope.open()) {
                adapter.dropout().set(true, mix(c.seed(), (long) s * ga + k + 1));
                List<Tensor> lp = new ArrayList<>(), old = new ArrayList<>(), ref = new ArrayList<>();
                double[] mask = new double[micro.size() * t], adv = new double[micro.size()];
                for (int i = 0; i < micro.size(); i++) {
                    Rollout r = micro.get(i);
                    int n = r.tokens().length;
                    adv[i] = r.advantage();
                    double[] mr = mask(r);
                    for (int j = 0; j < mr.length; j++) mask[i * t + j] = 1;
                    if (n == 0) {
                        lp.add(Tensor.zeros(DType.F32, 1, t));
                        old.add(Tensor.zeros(DType.F32, 1, t));
                        ref.add(Tensor.zeros(DType.F32, 1, t));
                        continue;
                    }
                    double[] ent = new double[1];
                    Tensor l = logps(prompts.get(r.prompt()), r.tokens(), ent);
                    if (mr.length > 0) {
                        entSum += ent[0];
                        entTokens += n;
                    }
                    lp.add(l.pad(0, t - n));
                    old.add(r.oldLogps() == null ? l.detach().pad(0, t - n) : r.oldLogps().pad(0, t - n));
                    ref.add(r.refLogps() == null ? l.detach().pad(0, t - n) : r.refLogps().pad(0, t - n));
                }
                var in = new GrpoLoss.Inputs(Tensor.cat(lp, 0), c.numIterations() > 1 ? Tensor.cat(old, 0) : null,
                        c.loss().beta() != 0 ? Tensor.cat(ref, 0) : null, Tensor.of(adv, micro.size()).to(thinker.device()),
                        Tensor.of(mask, micro.size(), t).to(thinker.device()), null);
                GrpoLoss.Output out = GrpoLoss.loss(c.loss(), in, ga, numItems);
                double v = out.loss().item();
                if (!Double.isFinite(v)) throw new IllegalStateException("grpo: step " + (s + 1) + ": the loss is " + v + "; training stopped, the last checkpoint is intact");
                out.loss().backward();
                loss += v;
                klSum += out.klSum();
                tokens += out.tokens();
                low += out.clipLowSum();
                high += out.clipHighSum();
                region += out.clipRegionSum();
                cispo += out.cispoClipSum();
                count += out.clipCount();
            }
        }
        adapter.dropout().set(false, 0);
        double norm;
        try (var scope = Scope.open()) {
            norm = GradClip.clip(params, c.maxGradNorm());
            optimizer.step();
        }
        optimizer.zeroGrad();
        entry.put("loss", loss).put("grad_norm", norm);
        if (c.loss().beta() != 0) entry.put("kl", tokens > 0 ? klSum / tokens : 0);
        entry.put("entropy", entTokens > 0 ? entSum / entTokens : 0);
        if (c.loss().lossType() == GrpoLoss.LossType.CISPO) entry.put("cispo_clip_ratio", count > 0 ? cispo / count : 0);
        else if (c.loss().lossType() != GrpoLoss.LossType.SAPO)
            entry.put("clip_ratio/low_mean", count > 0 ? low / count : 0).put("clip_ratio/high_mean", count > 0 ? high / count : 0)
                    .put("clip_ratio/region_mean", count > 0 ? region / count : 0);
        entry.put("num_tokens", numItems);
    }

    private boolean placeholder(long id) {
        var cfg = thinker.config;
        return id == cfg.audioTokenId() || id == cfg.audioStartTokenId() || id == cfg.audioEndTokenId() || cfg.visionTokenIds().contains((int) id);
    }

    /** The completion mask of a rollout, as the tokens that count: all its tokens (the stop token included), none when truncated and masked. */
    private double[] mask(Rollout r) {
        return c.maskTruncatedCompletions() && r.truncated() ? new double[0] : new double[r.tokens().length];
    }

    /**
     * log π(completion token | prefix) [1, T] under the thinker as it is now (adapter attached or not), temperature-scaled
     * as TRL's _get_per_token_logps_and_entropies; {@code entropy}, when given, receives the summed per-token entropy.
     */
    Tensor logps(GrpoPrompt p, long[] completion, double[] entropy) {
        int pl = p.ids().length, t = completion.length;
        long[] ids = new long[pl + t];
        System.arraycopy(p.ids(), 0, ids, 0, pl);
        System.arraycopy(completion, 0, ids, pl, t);
        Tensor logits = thinker.forward(Tensor.of(ids, 1, pl + t), Tensor.ones(DType.I64, 1, pl + t), p.audio(), null).logits();   // [1, P+T, V]
        Tensor scaled = logits.narrow(1, pl - 1, t).to(DType.F32).div(c.temperature());                                            // [1, T, V]
        Tensor logSoftmax = scaled.logSoftmax(-1);
        if (entropy != null)
            try (var ng = Autograd.noGrad()) {
                entropy[0] = -logSoftmax.detach().exp().mul(logSoftmax.detach()).sum().item();
            }
        return logSoftmax.gather(-1, Tensor.of(completion, 1, t, 1)).reshape(1, t);
    }

    int[] order(int epoch) { return Seeds.epochOrder(prompts.size(), c.seed(), epoch); }

    static long mix(long seed, long n) { return Seeds.mix(seed, n); }

    private ObjectNode runState(int step, ArrayNode history) {
        ObjectNode s = JSON.createObjectNode();
        s.put("global_step", step).put("epoch", (double) step / stepsPerEpoch).put("max_steps", totalSteps)
                .put("train_batch_size", c.perDeviceTrainBatchSize()).put("gradient_accumulation_steps", c.gradientAccumulationSteps())
                .put("num_generations", c.numGenerations()).put("num_iterations", c.numIterations()).put("seed", c.seed())
                .put("num_samples", prompts.size()).put("optim", c.optim()).put("loss_type", c.loss().lossType().flag()).put("beta", c.loss().beta());
        s.set("log_history", history.deepCopy());
        return s;
    }

    private Path save(int step, Optimizer optimizer, ArrayNode history) {
        Path dir = c.outputDir().resolve("checkpoint-" + step), tmp = c.outputDir().resolve(".checkpoint-" + step + ".tmp");
        try {
            deleteTree(tmp);
            Files.createDirectories(tmp);
            boolean was = adapter.isAttached();
            adapter.attach();
            adapter.save(tmp);
            if (!was) adapter.detach();
            SafeTensors.write(tmp.resolve(OPTIMIZER), optimizer.state(), Map.of("optim", optimizer.name(), "format", "pt"));
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(STATE).toFile(), runState(step, history));
            deleteTree(dir);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write the checkpoint", e);
        }
        if (c.saveTotalLimit() > 0) {
            List<Path> all = checkpoints(c.outputDir());
            for (int i = 0; i < all.size() - c.saveTotalLimit(); i++) deleteTree(all.get(i));
        }
        return dir;
    }

    static List<Path> checkpoints(Path outputDir) {
        try (Stream<Path> s = Files.list(outputDir)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+") && Files.isRegularFile(p.resolve(STATE)))
                    .sorted(Comparator.comparingLong(p -> Long.parseLong(p.getFileName().toString().substring(11)))).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(outputDir + ": cannot list", e);
        }
    }

    private void writeMetrics(ArrayNode history) {
        var sb = new StringBuilder();
        for (JsonNode e : history) sb.append(e).append('\n');
        try {
            Files.createDirectories(c.outputDir());
            Files.writeString(c.outputDir().resolve(METRICS), sb, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(c.outputDir().resolve(METRICS) + ": cannot write", e);
        }
    }

    private void appendMetric(ObjectNode entry) {
        try {
            Files.writeString(c.outputDir().resolve(METRICS), entry + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
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

    private static void deleteTree(Path p) {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        } catch (IOException e) {
            throw new UncheckedIOException(p + ": cannot delete", e);
        }
    }
}

package dev.jomni.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.train.Progress;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.eval.PromptedItem;
import dev.jomni.train.score.Scorer;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The ReST loop, {@code rest/run_rest.py} in one process (seed-pipeline.md §2.1). Per iteration i, under
 * {@code OUT/iteration_i/}:
 * <ol>
 * <li><b>generate</b> {@code generations/generations.jsonl}: K candidates per problem of the whole data set with
 *     the current policy (the base model in iteration 1, else the last adapter trained), appended a batch at a
 *     time, one record per problem id;
 * <li><b>filter</b> {@code filtered/filtered.json} (+ {@code _stats}, {@code _analytics}, {@code _by_category},
 *     {@code _no_correct}), as {@code rest/filter.py}; nothing kept skips training;
 * <li><b>train</b> {@code training/}: the policy fine-tunes on the kept samples at the iteration's learning rate;
 *     its adapter, named {@code iteration_i}, generates the next iteration;
 * <li><b>eval</b> (with an eval set) {@code eval/generations.jsonl}: greedy answers on the held-out set.
 * </ol>
 * {@code OUT/config.json} holds the original's fields (and jomni's); {@code OUT/metrics.jsonl} one line per
 * finished phase; at the end {@code OUT/accuracy.png} plots accuracy per iteration. The held-out set is answered by the base model first ({@code OUT/base_eval/}).
 *
 * <h2>Resume</h2>
 * A finished phase has its line in metrics.jsonl; {@code resume} skips those. An unfinished generation keeps
 * its complete records (a torn last line is cut) and generates the missing problem ids only, in the same
 * batches, with the same seeds, so the file ends as an uninterrupted run's would. Training resumes from its
 * folder's latest checkpoint ({@link Policy#train}).
 */
public final class RestRun {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper PRETTY = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    public static final String CONFIG = "config.json", METRICS = "metrics.jsonl";

    private final RestOptions o;
    private final CandidateSource source;
    private final Policy policy;
    private final PrintStream log;
    private final boolean tty, resume;
    private final String generator;
    private final List<ObjectNode> metrics = new ArrayList<>();
    private final Set<String> registered = new HashSet<>();

    /**
     * @param generator how candidates are made, for config.json ({@code in-process} or the server's URL)
     * @param resume    continue the run already in {@code outputBaseDir}; without it an existing run is an error
     */
    public RestRun(RestOptions options, CandidateSource source, Policy policy, String generator, PrintStream log, boolean tty, boolean resume) {
        this.o = options;
        this.source = source;
        this.policy = policy;
        this.generator = generator;
        this.log = log;
        this.tty = tty;
        this.resume = resume;
    }

    /** One iteration's row of the summary. NaN where a phase did not run. */
    public record Row(int iteration, double learningRate, int problems, int candidates, int correct, int problemsWithCorrect, int kept,
                      int trainSteps, double trainLoss, double evalAccuracy) {
        /** Correct candidates over all candidates: the generating policy's sampling accuracy on the data set. */
        public double candidateAccuracy() { return candidates == 0 ? Double.NaN : (double) correct / candidates; }
    }

    /** What the run did: the base model's held-out accuracy (NaN without an eval set) and one row per iteration. */
    public record Summary(double baseEvalAccuracy, List<Row> rows) {
        /** The table printed at the end. */
        public String table() {
            var sb = new StringBuilder();
            sb.append(String.format(Locale.ROOT, "%-5s %-9s %-12s %-10s %-8s %-6s %-11s %-9s%n", "iter", "lr", "data acc", "solved", "cands",
                    "kept", "train loss", "eval acc"));
            if (!Double.isNaN(baseEvalAccuracy))
                sb.append(String.format(Locale.ROOT, "%-5s %-9s %-12s %-10s %-8s %-6s %-11s %-9s%n", "0", "", "", "", "", "", "",
                        pct(baseEvalAccuracy)));
            for (Row r : rows)
                sb.append(String.format(Locale.ROOT, "%-5d %-9.2g %-12s %-10s %-8d %-6d %-11s %-9s%n", r.iteration(), r.learningRate(),
                        pct(r.candidateAccuracy()), r.problemsWithCorrect() + "/" + r.problems(), r.candidates(), r.kept(),
                        Double.isNaN(r.trainLoss()) ? "-" : String.format(Locale.ROOT, "%.4f", r.trainLoss()), pct(r.evalAccuracy())));
            return sb.toString();
        }

        private static String pct(double v) { return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * v); }
    }

    public Summary run() {
        Path out = o.outputBaseDir();
        Dataset data = Dataset.load(o.dataPath(), LoadOptions.defaults().withAudioDir(o.audioDir()));
        Map<String, JsonNode> raw = rawRecords(o.dataPath());
        Dataset eval = o.evalDataPath() == null ? null : Dataset.load(o.evalDataPath(), LoadOptions.defaults().withAudioDir(o.audioDir()));
        writeConfig(out);
        readMetrics(out);
        String current = o.initialAdapter() == null ? null : "initial";
        Path previous = o.initialAdapter();
        double baseEval = Double.NaN;
        if (eval != null) baseEval = evalPhase(0, out.resolve("base_eval"), eval, use(current, previous));

        List<Row> rows = new ArrayList<>();
        for (int i = 1; i <= o.numIterations(); i++) {
            Path it = out.resolve("iteration_" + i);
            double lr = o.learningRate(i);
            log.printf(Locale.ROOT, "== ReST iteration %d/%d: generating with %s, lr %.3g%n", i, o.numIterations(),
                    current == null ? "the base model" : "adapter " + current, lr);
            ObjectNode gen = generatePhase(i, it.resolve("generations"), data, raw, current, previous);
            ObjectNode filt = filterPhase(i, it.resolve("generations").resolve("generations.jsonl"), it.resolve("filtered").resolve("filtered.json"), data);
            ObjectNode train = metric(i, "train");
            if (train == null) {
                int kept = filt.get("kept").asInt();
                long t0 = System.nanoTime();
                train = JSON.createObjectNode();
                if (kept == 0) {
                    log.println("iteration " + i + ": no sample kept, training skipped (the next iteration generates with the same policy)");
                    train.put("trained", false).put("steps", 0);
                } else {
                    Policy.Trained t = policy.train(i, it.resolve("filtered").resolve("filtered.json"),
                            o.audioDir() != null ? o.audioDir() : o.dataPath().toAbsolutePath().getParent(), it.resolve("training"), lr, previous);
                    train.put("trained", true).put("steps", t.steps()).put("first_loss", t.firstLoss()).put("loss", t.lastLoss());
                }
                train.put("learning_rate", lr).put("seconds", (System.nanoTime() - t0) / 1e9);
                train = record(i, "train", train);
            }
            if (train.get("trained").asBoolean()) {
                current = "iteration_" + i;
                previous = it.resolve("training");
            }
            double evalAcc = eval == null ? Double.NaN : evalPhase(i, it.resolve("eval"), eval, use(current, previous));
            rows.add(new Row(i, lr, gen.get("problems").asInt(), gen.get("candidates").asInt(), gen.get("correct").asInt(),
                    gen.get("problems_with_correct").asInt(), filt.get("kept").asInt(), train.get("steps").asInt(),
                    train.path("loss").asDouble(Double.NaN), evalAcc));
        }
        var summary = new Summary(baseEval, rows);
        log.print(summary.table());
        try {
            Plot.accuracy(summary, out.resolve("accuracy.png"));
            log.println("wrote " + out.resolve("accuracy.png"));
        } catch (RuntimeException | Error e) {               // a host without fonts (fontconfig) cannot draw: the run itself is done
            if (e instanceof VirtualMachineError) throw e;
            log.println("accuracy.png not drawn (" + e + "); the table above holds its numbers");
        }
        return summary;
    }

    // ------------------------------------------------------------------ phases

    /** Sample s of the problem at data-set index p draws from {@code seed(p) + s}: a function of the index only, so resumed and batched runs agree. */
    long seed(int p) { return mix(o.seed(), p); }

    /** Registers adapter {@code name} (saved in {@code dir}) with the source the first time it is needed; returns the name. */
    private String use(String name, Path dir) {
        if (name != null && registered.add(name)) source.useAdapter(name, dir);
        return name;
    }

    private ObjectNode generatePhase(int i, Path dir, Dataset data, Map<String, JsonNode> raw, String model, Path adapterDir) {
        ObjectNode done = metric(i, "generate");
        Path file = dir.resolve("generations.jsonl");
        if (done != null) return done;
        use(model, adapterDir);
        long t0 = System.nanoTime();
        Map<String, Generated> have = readGenerations(file, data);
        List<AudioQa> items = data.items();
        try (var bar = Progress.start("generate " + i + "/" + o.numIterations(), items.size(), log, tty)) {
            bar.advance(have.size());
            for (int from = 0; from < items.size(); from += o.batchSize()) {
                List<PromptedItem> batch = new ArrayList<>();
                List<Long> seeds = new ArrayList<>();
                for (int p = from; p < Math.min(items.size(), from + o.batchSize()); p++) {
                    if (have.containsKey(items.get(p).id())) continue;
                    batch.add(new PromptedItem(items.get(p), o.prompt().build(items.get(p))));
                    seeds.add(seed(p));
                }
                if (batch.isEmpty()) continue;
                List<List<String>> texts = source.generate(batch, o.numSamples(), seeds.stream().mapToLong(Long::longValue).toArray(), model,
                        o.temperature());
                var lines = new StringBuilder();
                for (int b = 0; b < batch.size(); b++) {
                    AudioQa q = batch.get(b).item();
                    Generated g = generated(q, raw.get(q.id()), texts.get(b));
                    have.put(q.id(), g);
                    lines.append(g.toJson()).append('\n');
                }
                append(file, lines.toString());
                bar.advance(batch.size());
            }
        }
        int candidates = 0, correct = 0, solved = 0;
        for (AudioQa q : items) {
            Generated g = have.get(q.id());
            int c = 0;
            for (Candidate cand : g.candidates()) if (Scorer.isCorrect(cand.answerPrediction(), q, o.matching())) c++;
            candidates += g.candidates().size();
            correct += c;
            if (c > 0) solved++;
        }
        ObjectNode m = JSON.createObjectNode();
        m.put("model", model == null ? o.baseModel() : model).put("problems", items.size()).put("candidates", candidates).put("correct", correct)
                .put("candidate_accuracy", candidates == 0 ? 0 : (double) correct / candidates).put("problems_with_correct", solved)
                .put("seconds", (System.nanoTime() - t0) / 1e9);
        log.printf(Locale.ROOT, "iteration %d: %d candidates, %d correct (%.1f%%), %d/%d problems solved at least once%n", i, candidates, correct,
                candidates == 0 ? 0 : 100.0 * correct / candidates, solved, items.size());
        return record(i, "generate", m);
    }

    private Generated generated(AudioQa q, JsonNode raw, List<String> texts) {
        List<Candidate> cs = new ArrayList<>();
        for (String t : texts) cs.add(Candidate.of(t));
        String sound = raw == null ? q.audio().getFileName().toString() : raw.path("sound").asText(raw.path("audio_path").asText(""));
        String audioDir = raw == null || !raw.hasNonNull("audio_dir") ? null : raw.get("audio_dir").asText();
        return new Generated(q.id(), sound, audioDir, q.question(), q.answer(), cs);
    }

    /** The filter over the generations, in file order; writes the original's five files. */
    private ObjectNode filterPhase(int i, Path generations, Path filtered, Dataset data) {
        ObjectNode done = metric(i, "filter");
        if (done != null) return done;
        long t0 = System.nanoTime();
        Map<String, AudioQa> byId = data.byId();
        Map<String, Generated> gens = readGenerations(generations, data);
        Filter.Selector selector = o.filter().selector();
        ArrayNode samples = JSON.createArrayNode();
        Map<String, List<String>> byCategory = new LinkedHashMap<>();
        Map<String, int[]> catCounts = new LinkedHashMap<>();                 // category -> {problems, samples}
        for (Filter.Category c : Filter.Category.values()) {
            byCategory.put(c.id(), new ArrayList<>());
            catCounts.put(c.id(), new int[2]);
        }
        ArrayNode noCorrect = JSON.createArrayNode();
        Map<String, Integer> histogram = new java.util.TreeMap<>();
        int[] buckets = new int[6];
        List<Double> rates = new ArrayList<>();
        int totalCandidates = 0, totalCorrect = 0, withCorrect = 0, duplicates = 0;
        for (Generated g : gens.values()) {
            AudioQa q = byId.get(g.id());
            List<String> raws = g.candidates().stream().map(Candidate::rawOutput).toList();
            List<Integer> correct = new ArrayList<>();
            for (int c = 0; c < g.candidates().size(); c++)
                if (Scorer.isCorrect(g.candidates().get(c).answerPrediction(), q, o.matching())) correct.add(c);
            int nCorrect = correct.size();
            totalCandidates += g.candidates().size();
            totalCorrect += nCorrect;
            if (nCorrect > 0) withCorrect++;
            else noCorrect.add(g.id());
            histogram.merge(Integer.toString(nCorrect), 1, Integer::sum);
            double rate = g.candidates().isEmpty() ? 0 : (double) nCorrect / g.candidates().size();
            rates.add(rate);
            buckets[rate == 0 ? 0 : rate <= 0.25 ? 1 : rate <= 0.5 ? 2 : rate <= 0.75 ? 3 : rate < 1 ? 4 : 5]++;
            Filter.Category cat = Filter.Category.of(nCorrect);
            if (o.dedup()) {
                Set<String> seen = new HashSet<>();
                List<Integer> unique = new ArrayList<>();
                for (int c : correct) if (seen.add(raws.get(c))) unique.add(c);
                duplicates += correct.size() - unique.size();
                correct = unique;
            }
            List<Filter.Kept> kept = selector.select(raws, correct);
            byCategory.get(cat.id()).add(g.id());
            catCounts.get(cat.id())[0]++;
            catCounts.get(cat.id())[1] += kept.size();
            for (Filter.Kept k : kept) {
                Candidate c = g.candidates().get(k.candidate());
                ObjectNode s = samples.addObject();
                s.put("id", g.id() + "_sol" + k.candidate()).put("original_id", g.id()).put("sound", g.sound());
                if (g.audioDir() == null) s.putNull("audio_dir");
                else s.put("audio_dir", g.audioDir());
                s.put("question", g.question()).put("answer", g.groundTruth()).put("response", c.rawOutput())
                        .put("thinking_prediction", c.thinkingPrediction()).put("answer_text", c.answerText())
                        .put("answer_prediction", c.answerPrediction()).put("extracted_answer", c.answerPrediction())
                        .put("category", cat.id()).put("weight", k.weight());
            }
        }
        int problems = gens.size();
        ObjectNode stats = JSON.createObjectNode();
        stats.put("total_problems", problems).put("total_candidates", totalCandidates).put("total_correct", totalCorrect)
                .put("problems_with_correct", withCorrect).put("problems_without_correct", problems - withCorrect).put("filtered_samples", samples.size());
        ObjectNode cats = stats.putObject("by_category");
        for (var e : catCounts.entrySet()) if (e.getValue()[0] > 0) cats.putObject(e.getKey()).put("count", e.getValue()[0]).put("samples", e.getValue()[1]);
        ObjectNode analytics = JSON.createObjectNode();
        List<Double> sorted = new ArrayList<>(rates);
        sorted.sort(null);
        ObjectNode summary = stats.deepCopy();
        summary.remove("by_category");
        summary.put("overall_accuracy", totalCandidates == 0 ? 0 : 100.0 * totalCorrect / totalCandidates)
                .put("mean_correct_rate", rates.isEmpty() ? 0 : rates.stream().mapToDouble(d -> d).average().orElse(0))
                .put("median_correct_rate", sorted.isEmpty() ? 0 : sorted.get(sorted.size() / 2));
        analytics.set("summary", summary);
        ObjectNode dist = analytics.putObject("category_distribution");
        for (var e : catCounts.entrySet()) if (e.getValue()[0] > 0) dist.put(e.getKey(), e.getValue()[0]);
        ObjectNode hist = analytics.putObject("correct_count_histogram");
        histogram.entrySet().stream().sorted(Map.Entry.comparingByKey((a, b) -> Integer.parseInt(a) - Integer.parseInt(b)))
                .forEach(e -> hist.put(e.getKey(), e.getValue()));
        ObjectNode b = analytics.putObject("correct_rate_buckets");
        String[] names = {"0%", "1-25%", "26-50%", "51-75%", "76-99%", "100%"};
        for (int k = 0; k < names.length; k++) b.put(names[k], buckets[k]);
        ObjectNode byCat = JSON.createObjectNode();
        for (var e : byCategory.entrySet()) if (!e.getValue().isEmpty()) e.getValue().forEach(byCat.withArray(e.getKey())::add);

        String base = filtered.toString().endsWith(".json") ? filtered.toString().substring(0, filtered.toString().length() - 5) : filtered.toString();
        writeAtomically(Path.of(base + "_stats.json"), stats);
        writeAtomically(Path.of(base + "_analytics.json"), analytics);
        writeAtomically(Path.of(base + "_by_category.json"), byCat);
        if (!noCorrect.isEmpty()) writeAtomically(Path.of(base + "_no_correct.json"), noCorrect);
        writeAtomically(filtered, samples);                                 // last: the phase's result
        log.printf(Locale.ROOT, "iteration %d: filter %s kept %d sample(s) from %d problem(s)%s%n", i, o.filter().describe(), samples.size(),
                withCorrect, o.dedup() ? " (" + duplicates + " duplicate correct solution(s) dropped)" : "");
        ObjectNode m = JSON.createObjectNode();
        m.put("strategy", o.filter().id()).put("kept", samples.size()).put("duplicates_dropped", duplicates).put("seconds", (System.nanoTime() - t0) / 1e9);
        return record(i, "filter", m);
    }

    /** Greedy answers on the held-out set with {@code model}; returns the accuracy. */
    private double evalPhase(int i, Path dir, Dataset eval, String model) {
        ObjectNode done = metric(i, "eval");
        if (done != null) return done.get("accuracy").asDouble();
        long t0 = System.nanoTime();
        List<AudioQa> items = eval.items();
        Map<String, JsonNode> raw = rawRecords(eval.file());
        var lines = new StringBuilder();
        int correct = 0;
        try (var bar = Progress.start(i == 0 ? "eval base" : "eval " + i + "/" + o.numIterations(), items.size(), log, tty)) {
            for (int from = 0; from < items.size(); from += o.batchSize()) {
                List<PromptedItem> batch = new ArrayList<>();
                for (int p = from; p < Math.min(items.size(), from + o.batchSize()); p++) batch.add(new PromptedItem(items.get(p), o.prompt().build(items.get(p))));
                long[] seeds = new long[batch.size()];
                List<List<String>> texts = source.generate(batch, 1, seeds, model, 0);
                for (int b = 0; b < batch.size(); b++) {
                    AudioQa q = batch.get(b).item();
                    Generated g = generated(q, raw.get(q.id()), texts.get(b));
                    if (Scorer.isCorrect(g.candidates().getFirst().answerPrediction(), q, o.matching())) correct++;
                    lines.append(g.toJson()).append('\n');
                }
                bar.advance(batch.size());
            }
        }
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("generations.jsonl"), lines, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": cannot write the evaluation", e);
        }
        double acc = items.isEmpty() ? 0 : (double) correct / items.size();
        log.printf(Locale.ROOT, "%s: held-out accuracy %.1f%% (%d/%d, greedy)%n", i == 0 ? (model == null ? "base model" : "start (" + o.initialAdapter() + ")") : "iteration " + i, 100 * acc, correct, items.size());
        ObjectNode m = JSON.createObjectNode();
        m.put("model", model == null ? o.baseModel() : model).put("accuracy", acc).put("correct", correct).put("total", items.size())
                .put("seconds", (System.nanoTime() - t0) / 1e9);
        record(i, "eval", m);
        return acc;
    }

    // ------------------------------------------------------------------ files

    private void writeConfig(Path out) {
        ObjectNode c = JSON.createObjectNode();
        c.put("num_iterations", o.numIterations());
        ArrayNode lrs = c.putArray("learning_rates");
        o.learningRates().forEach(lrs::add);
        c.put("data_path", o.dataPath().toString()).put("audio_dir", o.audioDir() == null ? null : o.audioDir().toString())
                .put("base_model", o.baseModel()).put("num_samples_per_problem", o.numSamples()).put("temperature", o.temperature())
                .put("filter_strategy", o.filter().id()).put("top_k", o.filter() instanceof Filter.TopK t ? t.k()
                        : o.filter() instanceof Filter.LearningZone l ? l.k() : 3);
        // jomni's additions: everything else that decides the run
        c.put("top_p", o.topP()).put("max_tokens", o.maxTokens()).put("num_epochs", o.numEpochs()).put("restart_from_base", o.restartFromBase())
                .put("dedup", o.dedup()).put("batch_size", o.batchSize()).put("seed", o.seed()).put("prompt", o.prompt().id())
                .put("matching", o.matching().id()).put("eval_data_path", o.evalDataPath() == null ? null : o.evalDataPath().toString())
                .put("generator", generator).put("initial_adapter", o.initialAdapter() == null ? null : o.initialAdapter().toString());
        Path file = out.resolve(CONFIG);
        if (Files.exists(file)) {
            if (!resume) throw new IllegalArgumentException(file + ": a run is already there; pass --resume to continue it, or choose another --output_base_dir");
            JsonNode old = read(file);
            for (String f : List.of("num_iterations", "learning_rates", "num_samples_per_problem", "temperature", "filter_strategy", "top_k", "top_p",
                    "max_tokens", "num_epochs", "restart_from_base", "dedup", "batch_size", "seed", "prompt", "matching"))
                if (!old.path(f).toString().equals(c.path(f).toString()) && !(f.equals("num_iterations") && c.path(f).asInt() >= old.path(f).asInt()))
                    throw new IllegalArgumentException(file + ": field '" + f + "' is " + old.path(f) + ", this run has " + c.path(f)
                            + " (--resume continues the same run; only --num_iterations may grow)");
        }
        writeAtomically(file, c);
    }

    private void readMetrics(Path out) {
        Path file = out.resolve(METRICS);
        metrics.clear();
        if (!Files.exists(file)) return;
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) continue;
                try {
                    metrics.add((ObjectNode) JSON.readTree(line));
                } catch (IOException e) {
                    break;                                                   // a torn last line: the phase did not finish
                }
            }
            StringBuilder sb = new StringBuilder();
            for (ObjectNode m : metrics) sb.append(m).append('\n');
            Files.writeString(file, sb, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read", e);
        }
    }

    private ObjectNode metric(int iteration, String phase) {
        for (ObjectNode m : metrics) if (m.path("iteration").asInt(-1) == iteration && m.path("phase").asText().equals(phase)) return m;
        return null;
    }

    /** Appends {@code {iteration, phase, …fields}} to metrics.jsonl: the mark that the phase is done. */
    private ObjectNode record(int iteration, String phase, ObjectNode fields) {
        ObjectNode m = JSON.createObjectNode().put("iteration", iteration).put("phase", phase);
        m.setAll(fields);
        append(o.outputBaseDir().resolve(METRICS), m + "\n");
        metrics.add(m);
        return m;
    }

    /**
     * The complete records of a generations file by id (file order). A torn last line (a killed run) is cut off the
     * file; a record whose id is not in the data set, or a second record for an id, is an error.
     */
    static Map<String, Generated> readGenerations(Path file, Dataset data) {
        Map<String, Generated> out = new LinkedHashMap<>();
        if (!Files.exists(file)) return out;
        try {
            byte[] bytes = Files.readAllBytes(file);
            int end = bytes.length;
            while (end > 0 && bytes[end - 1] != '\n') end--;
            if (end < bytes.length)
                try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    ch.truncate(end);
                }
            Set<String> ids = data.byId().keySet();
            int lineNo = 0;
            for (String line : new String(bytes, 0, end, StandardCharsets.UTF_8).split("\n")) {
                lineNo++;
                if (line.isBlank()) continue;
                Generated g = Generated.read(JSON.readTree(line));
                if (!ids.contains(g.id()))
                    throw new IllegalArgumentException(file + ": line " + lineNo + ": id '" + g.id() + "' is not in " + data.file());
                if (out.put(g.id(), g) != null) throw new IllegalArgumentException(file + ": line " + lineNo + ": a second record for id '" + g.id() + "'");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read", e);
        }
        return out;
    }

    /** The data file's records as JSON by id (for the fields AudioQa does not keep: sound, audio_dir). */
    static Map<String, JsonNode> rawRecords(Path file) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        try {
            String text = Files.readString(file, StandardCharsets.UTF_8).strip();
            if (text.startsWith("[")) {
                for (JsonNode n : JSON.readTree(text)) if (n.hasNonNull("id")) out.putIfAbsent(n.get("id").asText(), n);
            } else {
                for (String line : text.split("\n")) {
                    if (line.isBlank()) continue;
                    JsonNode n = JSON.readTree(line);
                    if (n.hasNonNull("id")) out.putIfAbsent(n.get("id").asText(), n);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read", e);
        }
        return out;
    }

    private static void append(Path file, String text) {
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, text, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot append", e);
        }
    }

    static void writeAtomically(Path file, JsonNode node) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
            Files.writeString(tmp, PRETTY.writeValueAsString(node) + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write", e);
        }
    }

    private static JsonNode read(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot read: " + e.getMessage());
        }
    }

    /** splitmix64's finaliser over (seed, n). */
    static long mix(long seed, long n) {
        long z = seed * 0x632BE59BD9B4E019L + (n + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return (z ^ (z >>> 31)) & Long.MAX_VALUE;                            // non-negative: OpenAI's seed is an integer
    }
}

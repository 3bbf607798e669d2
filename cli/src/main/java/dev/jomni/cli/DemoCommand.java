package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.rest.EngineCandidates;
import dev.jomni.rest.Filter;
import dev.jomni.rest.RestOptions;
import dev.jomni.rest.RestRun;
import dev.jomni.rest.SftPolicy;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.AdamW;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SftData;
import dev.jomni.train.data.SynthTask;
import dev.jomni.train.score.Matching;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The embedded default job, on the CPU with nothing to download: ReST on the synthetic audio task with a tiny
 * Qwen3-Omni made on the spot. An SFT warm-up on fresh problems' reference answers (each seen once) teaches the
 * answer format, then ReST iterations (generate in process, keep the correct candidates, fine-tune the same adapter);
 * held-out accuracy is printed before and after each iteration. {@code --mlp} runs the old MLP demo.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Run the embedded default job on the CPU: ReST on the synthetic 4-way audio task (omni data synth) with a tiny",
                "Qwen3-Omni initialised on the spot (no downloads): an SFT warm-up, then ReST iterations, printing held-out accuracy",
                "per iteration (chance is 25%%). --mlp: the old two-layer MLP demo."})
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--mlp", description = "the old demo: a two-layer MLP learns a generated regression task")
    boolean mlp;
    @Option(names = "--out", paramLabel = "DIR", description = "where the model, data and the ReST run go (default: a new temporary folder)")
    Path out;
    @Option(names = "--train", defaultValue = "512", description = "ReST problems (default ${DEFAULT-VALUE})") int train;
    @Option(names = "--eval", defaultValue = "40", description = "held-out problems (default ${DEFAULT-VALUE})") int eval;
    @Option(names = "--warmup", defaultValue = "16", description = "distinct SFT warm-up problems with reference answers (default ${DEFAULT-VALUE})") int warmup;
    @Option(names = "--warmup-steps", defaultValue = "80", description = "warm-up optimizer steps of --batch samples (default ${DEFAULT-VALUE})") int warmupSteps;
    @Option(names = "--batch", defaultValue = "8", description = "samples per optimizer step (default ${DEFAULT-VALUE})") int batch;
    @Option(names = "--skills", defaultValue = "Kind,Counting", split = ",",
            description = "synthetic skills of the ReST and held-out problems: Kind, Counting, Pitch, Duration, Loudness, Order (default ${DEFAULT-VALUE}; Counting: 1 to 4 beeps)")
    List<String> skills;
    @Option(names = "--warmup-skills", defaultValue = "Loudness,Duration", split = ",",
            description = "skills of the warm-up problems (default ${DEFAULT-VALUE}: skills the tiny model does not learn, so the warm-up teaches the answer format and ReST starts from chance)")
    List<String> warmupSkills;
    @Option(names = "--iterations", defaultValue = "3", description = "ReST iterations (default ${DEFAULT-VALUE})") int iterations;
    @Option(names = "--samples", defaultValue = "4", description = "candidates per problem (default ${DEFAULT-VALUE})") int samples;
    @Option(names = "--rest-epochs", defaultValue = "3", description = "epochs over the kept samples per ReST iteration (default ${DEFAULT-VALUE})") double restEpochs;
    @Option(names = "--lr", defaultValue = "2e-3", description = "warm-up learning rate (default ${DEFAULT-VALUE})") double lr;
    @Option(names = "--rest-lr", defaultValue = "1e-3", description = "ReST learning rate (default ${DEFAULT-VALUE})") double restLr;
    @Option(names = "--steps", defaultValue = "300", description = "--mlp: optimizer steps (default ${DEFAULT-VALUE})") int steps;
    @Option(names = "--lora-targets", split = ",", defaultValue = "fc1,fc2,out_proj,proj1,proj2,conv_out",
            description = "LoRA targets beyond q/k/v/o, the experts and lm_head (PEFT suffix rules; default ${DEFAULT-VALUE}: the rest of the audio tower)")
    List<String> extraTargets;
    @Option(names = "--audio-window", defaultValue = "100", description = "the model's audio n_window: 100 frames make a 2 s clip one chunk, so the encoder's sinusoidal positions number its tokens once (default ${DEFAULT-VALUE})") int audioWindow;
    @Option(names = "--layers", defaultValue = "2", description = "the model's decoder layers (default ${DEFAULT-VALUE})") int layers;
    @Option(names = "--seed", defaultValue = "0", description = "seed for model, data and sampling (default ${DEFAULT-VALUE})") long seed;

    @Override
    public Integer call() throws Exception {
        return mlp ? mlp() : rest();
    }

    private int rest() throws Exception {
        long start = System.nanoTime();
        if (out == null) out = Files.createTempDirectory("jomni-demo");
        System.out.println("jomni demo: ReST on the synthetic audio task, a tiny Qwen3-Omni made on the spot, CPU; in " + out);
        Path model = DemoModel.write(out.resolve("model"), DemoModel.Sizes.demo().withAudioWindow(audioWindow).withLayers(layers), seed);
        Set<String> wanted = skillCategories("--skills", skills);
        Path warm = demoSet(out.resolve("warmup"), warmup, seed + 1, skillCategories("--warmup-skills", warmupSkills));
        Path pool = demoSet(out.resolve("train"), train, seed + 2, wanted);
        Path held = demoSet(out.resolve("eval"), eval, seed + 3, wanted);
        // Dense (use_4bit off): the tiny demo model is a few MB, and its README transcript is the dense model's.
        Thinker thinker = Thinker.load(model, DType.F32, Device.cpu(), false);
        ChatEncoder encoder = ChatEncoder.load(model, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()));
        long params = thinker.parameters().values().stream().mapToLong(p -> p.numel()).sum();
        System.out.printf(Locale.ROOT, "model: %,d parameters (hidden %d, %d layers, %d experts); %d warm-up, %d ReST, %d held-out problems (%s)%n",
                params, thinker.config.text().hiddenSize(), thinker.config.text().numHiddenLayers(), DemoModel.Sizes.demo().experts(), warmup, train, eval,
                String.join(", ", wanted));
        PromptPreset prompt = PromptPreset.BARE;
        // lm_head too: at N(0, 0.02) its logits span about ±1 whatever the hidden state, so the LoRA of the blocks alone
        // cannot make any token likely (the warm-up's loss stayed near ln 1024 = 6.9)
        var targets = new ArrayList<>(SftCommand.ALL);
        targets.add("lm_head");
        targets.addAll(extraTargets);
        var spec = new LoraAdapter.Spec(32, 64, 0.0, false, targets, null);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());

        // 1. warm-up: the reference answers (ANSWER: letter) teach the format and start on the task
        Path warmDir = out.resolve("warmup_adapter");
        var sftConfig = new SftTrainer.Config(warmDir, 1, warmupSteps, batch, 1, lr, "constant_with_warmup", 0, Math.max(1, warmupSteps / 8), 0, 1.0, 0, 1, 1, seed, "adamw_torch");
        LoraAdapter adapter = LoraAdapter.create(thinker, spec, seed);
        var warmData = new SftData(Dataset.load(warm), prompt, encoder, logMel, 4096, false, System.err::println);
        SftTrainer.Result w = new SftTrainer(thinker, adapter, warmData, sftConfig, quiet, false).train(null);
        adapter.detach();
        System.out.printf(Locale.ROOT, "warm-up SFT: %d steps, loss %.3f -> %.3f (ln 4 / 11 = 0.126: the format, the letter guessed) (%.0f s)%n", w.globalStep(), w.firstLoss(), w.lastLoss(),
                (System.nanoTime() - start) / 1e9);

        // 2. ReST, continuing the warm-up adapter, generating in process on the same weights
        var options = new RestOptions(pool, null, held, out.resolve("rest"), "demo", iterations, samples, 1.0, 1.0, MAX_TOKENS, new Filter.TopK(2),
                List.of(restLr), restEpochs, false, false, 8, seed, prompt, Matching.STRICT, warmDir);
        var template = new SftTrainer.Config(out.resolve("rest"), restEpochs, -1, batch, 1, restLr, "linear", 0.1, 0, 0, 1.0, 0, 1, 1, seed, "adamw_torch");
        var policy = new SftPolicy(thinker, encoder, logMel, prompt, 4096, spec, template, false, false, quiet, false);
        try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, 4096, 64, 4096))) {
            var source = new EngineCandidates(engine, encoder, logMel, 1.0, MAX_TOKENS, dir -> dir.toAbsolutePath().normalize().equals(warmDir.toAbsolutePath().normalize())
                    ? adapter : policy.live(dir));
            var console = System.console();
            RestRun.Summary s = new RestRun(options, source, policy, "in-process", System.out, console != null && console.isTerminal(), false).run();
            double first = s.baseEvalAccuracy(), last = s.rows().getLast().evalAccuracy();
            System.out.printf(Locale.ROOT, "held-out accuracy %.1f%% -> %.1f%% over %d ReST iterations (chance 25%%), %.0f s in all; files in %s%n",
                    100 * first, 100 * last, iterations, (System.nanoTime() - start) / 1e9, out.resolve("rest"));
            return 0;
        }
    }

    /** The answer is 11 tokens ({@code ANSWER: B<|im_end|>}); a model that has not learned to stop is cut soon after. */
    private static final int MAX_TOKENS = 16;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Pattern LETTERED = Pattern.compile("^\\(([A-D])\\) (.*)$", Pattern.MULTILINE);
    private static final Pattern ORDINAL = Pattern.compile("^The (first|second|third|fourth) (tone|sound)$");
    private static final Map<String, String> SHORT_STEMS = Map.of("Counting", "How many beeps?", "Pitch", "Highest tone?",
            "Duration", "Longest sound?", "Loudness", "Loudest tone?", "Order", "Which sound is first?", "Kind", "Which sound?");

    private static Set<String> skillCategories(String option, List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        List<String> known = new ArrayList<>();
        for (SynthTask.Skill s : SynthTask.Skill.values()) known.add(s.category());
        for (String n : names) {
            String match = known.stream().filter(k -> k.equalsIgnoreCase(n.strip())).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException(option + ": unknown skill '" + n + "'; known: " + String.join(", ", known)));
            out.add(match);
        }
        return out;
    }

    /**
     * {@code n} synthetic problems of the wanted skills, in the demo's short form: the question cut to a few words and the
     * choices (ordinals to one word: {@code (A) first}), the reference response just {@code ANSWER: letter}. With the
     * byte-level tokenizer every character is a token, so the seed's ~450-token prompt and reasoning cost the tiny model
     * most of its steps; the letter is what the warm-up can teach in a few dozen, and what {@code Scorer} reads as a choice.
     * Counting keeps only the problems whose choices are 1 to 4 (a third of them), so the letter names the count.
     */
    static Path demoSet(Path dir, int n, long seed, Set<String> wanted) throws IOException {
        int per = 0;
        for (SynthTask.Skill s : SynthTask.Skill.values()) if (wanted.contains(s.category())) per++;
        // record i has skill i mod (number of skills); Counting's choices start at 1 in a third of its records
        int records = (n + per - 1) / per * SynthTask.Skill.values().length * (wanted.contains("Counting") ? 4 : 1);
        while (true) {
            Path file = SynthTask.generate(dir, records, seed);
            ArrayNode out = shortForm(JSON.readTree(file.toFile()), n, wanted);
            if (out.size() < n) {          // a larger n extends a smaller one: generate more and pick again
                records *= 2;
                continue;
            }
            Files.writeString(file, JSON.writeValueAsString(out) + "\n", StandardCharsets.UTF_8);
            // the other skills' clips were written too: drop them, 64 KB each
            Set<String> kept = new java.util.HashSet<>();
            for (JsonNode r : out) kept.add(r.get("sound").asText());
            try (var clips = Files.list(dir.resolve("audio"))) {
                for (Path clip : (Iterable<Path>) clips::iterator)
                    if (!kept.contains(clip.getFileName().toString())) Files.delete(clip);
            }
            return file;
        }
    }

    /**
     * The first records of each wanted skill in the demo's short form, {@code n} in all, the skills in equal shares (fewer
     * when the file holds fewer).
     */
    private static ArrayNode shortForm(JsonNode records, int n, Set<String> wanted) {
        ArrayNode out = JSON.createArrayNode();
        Map<String, Integer> left = new java.util.HashMap<>();
        int k = 0;
        for (String skill : wanted) left.put(skill, n / wanted.size() + (k++ < n % wanted.size() ? 1 : 0));
        for (JsonNode r : records) {
            if (out.size() == n) break;
            String skill = r.get("category").asText();
            if (left.getOrDefault(skill, 0) == 0) continue;
            if (skill.equals("Counting") && !r.get("question").asText().contains("(A) 1\n")) continue;
            left.merge(skill, -1, Integer::sum);
            ObjectNode rec = (ObjectNode) r.deepCopy();
            var q = new StringBuilder("<sound>\n").append(SHORT_STEMS.get(r.get("category").asText()));
            Matcher m = LETTERED.matcher(r.get("question").asText());
            String letter = null;
            while (m.find()) {
                String choice = m.group(2);
                if (choice.equals(r.get("answer").asText())) letter = m.group(1);
                Matcher o = ORDINAL.matcher(choice);
                q.append('\n').append('(').append(m.group(1)).append(") ").append(o.matches() ? o.group(1) : choice);
                if (o.matches() && choice.equals(r.get("answer").asText())) rec.put("answer", o.group(1));
            }
            if (letter == null) throw new IllegalStateException("demo: record " + r.get("id") + ": the answer is not among the choices");
            rec.put("question", q.toString()).put("response", "ANSWER: " + letter);
            out.add(rec);
        }
        return out;
    }

    private int mlp() {
        Generator gen = new Generator(seed);
        int n = 512, in = 8, hidden = 64;
        // Data: y = sin(x·a) + 0.1·noise, a fixed random projection.
        Tensor x = Tensor.randn(gen, DType.F32, n, in);
        Tensor a = Tensor.randn(gen, DType.F32, in, 1).mul(0.5);
        Tensor y = x.matmul(a).mul(3).tanh().add(Tensor.randn(gen, DType.F32, n, 1).mul(0.05));
        // Model: y ≈ silu(x W1 + b1) W2 + b2
        Tensor w1 = Tensor.randn(gen, DType.F32, in, hidden).mul(1 / Math.sqrt(in)).requiresGrad(true);
        Tensor b1 = Tensor.zeros(DType.F32, hidden).requiresGrad(true);
        Tensor w2 = Tensor.randn(gen, DType.F32, hidden, 1).mul(1 / Math.sqrt(hidden)).requiresGrad(true);
        Tensor b2 = Tensor.zeros(DType.F32, 1).requiresGrad(true);
        var opt = new AdamW(List.of(w1, b1, w2, b2), new AdamW.Config(1e-2, 0.9, 0.999, 1e-8, 0.0));
        System.out.printf("jomni demo: a two-layer MLP (%d → %d → 1) on %d generated points, AdamW, CPU%n", in, hidden, n);
        long start = System.nanoTime();
        double first = Double.NaN, last = Double.NaN;
        for (int step = 1; step <= steps; step++) {
            try (var scope = Scope.open()) {                 // frees every activation and intermediate gradient
                Tensor loss = x.matmul(w1).add(b1).silu().matmul(w2).add(b2).sub(y).square().mean();
                loss.backward();
                opt.step();
                opt.zeroGrad();
                last = loss.item();
                if (step == 1) first = last;
                if (step == 1 || step % 25 == 0 || step == steps) System.out.printf("step %4d  loss %.5f%n", step, last);
            }
        }
        System.out.printf("loss %.5f → %.5f in %d steps, %.1f s%n", first, last, steps, (System.nanoTime() - start) / 1e9);
        return last < first ? 0 : 1;
    }
}

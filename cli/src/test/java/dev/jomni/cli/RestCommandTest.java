package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.serve.OpenAiServer;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.rest.CandidateSource;
import dev.jomni.rest.EngineCandidates;
import dev.jomni.rest.Filter;
import dev.jomni.rest.HttpCandidates;
import dev.jomni.rest.RestOptions;
import dev.jomni.rest.RestRun;
import dev.jomni.rest.SftPolicy;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SynthTask;
import dev.jomni.train.eval.PromptedItem;
import dev.jomni.train.score.Matching;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ReST end to end with the tiny model made on the spot (DemoModel), on a few synthetic problems. */
class RestCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());
    @TempDir static Path dir;
    static Path model, data;

    @BeforeAll
    static void setUp() throws IOException {
        model = DemoModel.write(dir.resolve("model"), DemoModel.Sizes.demo(), 5);
        data = SynthTask.generate(dir.resolve("synth"), 4, 9);
    }

    /** The model, its engine, the in-process source and the policy, fresh (as a new process would have them). */
    record Stack(Thinker thinker, ChatEncoder encoder, LogMel logMel, GenerationEngine engine, SftPolicy policy, EngineCandidates source) {
        static Stack load() {
            Thinker t = Thinker.load(model, DType.F32, Device.cpu());
            ChatEncoder enc = ChatEncoder.load(model, t.config.audio().nWindow());
            LogMel mel = LogMel.of(PreprocessorConfig.load(model, t.config.audio()));
            var engine = new GenerationEngine(t, new GenerationEngine.Options(16, 1024, 32, 256));
            var sft = new SftTrainer.Config(dir, 1, 2, 1, 1, 5e-3, "constant", 0, 0, 0, 1, 0, 1, 1, 3, "adamw_torch");
            var policy = new SftPolicy(t, enc, mel, PromptPreset.REST_SFT, 4096, new LoraAdapter.Spec(8, 16, 0, false, SftCommand.ALL, null), sft,
                    false, false, QUIET, false);
            return new Stack(t, enc, mel, engine, policy, new EngineCandidates(engine, enc, mel, 1.0, 12, policy::live));
        }
    }

    static RestOptions options(Path out, int iterations) {
        return new RestOptions(data, null, null, out, "model", iterations, 2, 1.0, 1.0, 12, new Filter.All(), List.of(5e-3), 1, false, true, 2, 7,
                PromptPreset.REST_SFT, Matching.STRICT, null);
    }

    /** A random model is never right: the test puts the record's reference answer in the last candidate, so every iteration trains. */
    static CandidateSource withReference(CandidateSource real) {
        return new CandidateSource() {
            @Override
            public List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String m, double temperature) {
                List<List<String>> out = new ArrayList<>();
                List<List<String>> got = real.generate(items, n, seeds, m, temperature);
                for (int i = 0; i < items.size(); i++) {
                    List<String> texts = new ArrayList<>(got.get(i));
                    texts.set(n - 1, items.get(i).item().response());
                    out.add(texts);
                }
                return out;
            }

            @Override
            public void useAdapter(String name, Path adapterDir) { real.useAdapter(name, adapterDir); }
        };
    }

    @Test
    void twoIterationsTrainAndIterationTwoSamplesIterationOnesAdapter() throws IOException {
        Path out = dir.resolve("two");
        var s = Stack.load();
        RestRun.Summary summary = new RestRun(options(out, 2), withReference(s.source()), s.policy(), "in-process", QUIET, false, false).run();
        assertEquals(2, summary.rows().size());
        for (RestRun.Row r : summary.rows()) {
            assertEquals(4, r.kept(), "one reference answer kept per problem");
            assertEquals(2, r.trainSteps());
            assertTrue(Double.isFinite(r.trainLoss()));
        }
        assertTrue(Files.exists(out.resolve("iteration_1/training/adapter_model.safetensors")));
        assertTrue(Files.exists(out.resolve("iteration_2/training/adapter_model.safetensors")));
        // the same seeds (they depend on the problem only): the base's samples (iteration 1) differ from iteration 1's adapter's (iteration 2)
        List<String> first = sampled(out.resolve("iteration_1/generations/generations.jsonl"));
        List<String> second = sampled(out.resolve("iteration_2/generations/generations.jsonl"));
        assertEquals(first.size(), second.size());
        assertNotEquals(first, second);
        // and the base itself, asked again with those seeds, reproduces iteration 1's samples: the adapter made the difference
        var items = Dataset.load(data).items().stream().map(q -> new PromptedItem(q, PromptPreset.REST_SFT.build(q))).toList();
        var r = new RestRun(options(out, 2), null, null, "", QUIET, false, false);
        long[] seeds = new long[items.size()];
        for (int p = 0; p < seeds.length; p++) seeds[p] = seedOf(r, p);
        List<String> again = new ArrayList<>();
        for (List<String> texts : s.source().generate(items, 2, seeds, null, 1.0)) again.add(texts.getFirst());
        assertEquals(first, again);
        s.engine().close();
    }

    @Test
    void aRunKilledMidGenerationResumesToTheSameFiles() throws IOException {
        Path whole = dir.resolve("whole"), killed = dir.resolve("killed");
        var a = Stack.load();
        new RestRun(options(whole, 1), a.source(), a.policy(), "in-process", QUIET, false, false).run();
        a.engine().close();
        var b = Stack.load();
        CandidateSource dying = new CandidateSource() {
            int batches;

            @Override
            public List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String m, double t) {
                if (++batches > 1) throw new IllegalStateException("killed");
                return b.source().generate(items, n, seeds, m, t);
            }

            @Override
            public void useAdapter(String name, Path adapterDir) { b.source().useAdapter(name, adapterDir); }
        };
        assertThrows(IllegalStateException.class, () -> new RestRun(options(killed, 1), dying, b.policy(), "in-process", QUIET, false, false).run());
        assertEquals(2, Files.readAllLines(killed.resolve("iteration_1/generations/generations.jsonl")).size());
        b.engine().close();
        var c = Stack.load();                                           // a new process: new weights from the same folder
        new RestRun(options(killed, 1), c.source(), c.policy(), "in-process", QUIET, false, true).run();
        c.engine().close();
        for (String f : List.of("iteration_1/generations/generations.jsonl", "iteration_1/filtered/filtered.json", "iteration_1/filtered/filtered_stats.json"))
            assertEquals(Files.readString(whole.resolve(f)), Files.readString(killed.resolve(f)), f);
    }

    @Test
    void aServerOnLoopbackGivesTheSameCandidatesAsInProcess() throws Exception {
        var s = Stack.load();
        var items = Dataset.load(data).items().stream().map(q -> new PromptedItem(q, PromptPreset.REST_SFT.build(q))).toList();
        long[] seeds = {11, 22, 33, 44};
        List<List<String>> local = s.source().generate(items, 3, seeds, null, 0.9);
        Set<Long> stops = new HashSet<>();
        for (String t : new String[] {"<|im_end|>", "<|endoftext|>"}) s.encoder().tokenizer().findTokenId(t).ifPresent(id -> stops.add((long) id));
        s.engine().start();
        var config = new OpenAiServer.Config("model", s.encoder(), s.logMel(), Set.copyOf(stops), dir.toRealPath(), 12, Duration.ofMinutes(5));
        try (var server = OpenAiServer.start(s.engine(), config, "127.0.0.1", 0)) {
            var http = new HttpCandidates("http://127.0.0.1:" + server.port() + "/v1", "model", 0.9, 12, Duration.ofMinutes(5));
            // top_p 0.9 on both sides
            var engineSide = new EngineCandidates(s.engine(), s.encoder(), s.logMel(), 0.9, 12, null);
            assertEquals(engineSide.generate(items, 3, seeds, null, 0.9), http.generate(items, 3, seeds, null, 0.9));
            var e = assertThrows(IllegalStateException.class, () -> http.useAdapter("iteration_1", dir.resolve("nowhere")));
            assertTrue(e.getMessage().contains("iteration_1"), e.getMessage());
            // a later iteration's adapter: the server loads it (vLLM's load_lora_adapter) and samples it as in process
            Path saved = dir.resolve("served_adapter");
            LoraAdapter a = LoraAdapter.create(s.thinker(), new LoraAdapter.Spec(4, 8, 0, false, SftCommand.ALL, null), 1);
            for (var p : a.parameters()) try (var g = dev.jomni.tensor.Autograd.noGrad()) { p.assign(p.add(0.05)); }
            a.save(saved);
            a.detach();
            http.useAdapter("iteration_1", saved);
            engineSide.useAdapter("iteration_1_local", saved);
            assertEquals(engineSide.generate(items, 2, seeds, "iteration_1_local", 0.9), http.generate(items, 2, seeds, "iteration_1", 0.9));
            assertNotEquals(engineSide.generate(items, 2, seeds, null, 0.9), http.generate(items, 2, seeds, "iteration_1", 0.9));
        } finally {
            s.engine().close();
        }
        assertEquals(4, local.size());
    }

    @Test
    void theCommandRunsTwoIterationsAndPrintsTheTable() throws IOException {
        Path out = dir.resolve("cli");
        var old = System.out;
        var buf = new ByteArrayOutputStream();
        int rc;
        try {
            System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
            rc = Main.run("rest", "--data_path", data.toString(), "--base_model", model.toString(), "--output_base_dir", out.toString(),
                    "--num_iterations", "2", "--num_samples", "2", "--max_tokens", "8", "--eval_data_path", data.toString(), "--prompt", "rest-sft",
                    "--lora_r", "4", "--lora_alpha", "8");
        } finally {
            System.setOut(old);
        }
        assertEquals(0, rc);
        String table = buf.toString(StandardCharsets.UTF_8);
        assertTrue(table.contains("iter") && table.contains("eval acc"), table);
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        assertEquals(16 / 8, config.get("num_samples_per_problem").asInt());
        assertEquals("top_k", config.get("filter_strategy").asText());
        assertEquals(4, Files.readAllLines(out.resolve("iteration_2/generations/generations.jsonl")).size());
        assertTrue(Files.exists(out.resolve("accuracy.png")));
    }

    private static long seedOf(RestRun r, int p) {
        try {
            var m = RestRun.class.getDeclaredMethod("seed", int.class);
            m.setAccessible(true);
            return (long) m.invoke(r, p);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    private static List<String> sampled(Path generations) throws IOException {
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(generations)) out.add(JSON.readTree(line).get("candidates").get(0).get("raw_output").asText());
        return out;
    }
}

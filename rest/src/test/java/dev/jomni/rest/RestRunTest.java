package dev.jomni.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SynthTask;
import dev.jomni.train.eval.PromptedItem;
import dev.jomni.train.score.Matching;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The loop's files, filters and resume bookkeeping, against a fake source and policy (the model-backed run is in the CLI's tests). */
class RestRunTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path dir;
    static Path data;

    @BeforeAll
    static void synth() throws IOException {
        data = SynthTask.generate(dir.resolve("synth"), 10, 3);
    }

    /**
     * Answers from seed and model only: sample s of a problem is right when (seed + s + skill of the model) mod 4 is 0, so
     * an adapter named iteration_i answers better than the base; every other candidate repeats the one before it.
     */
    static final class FakeSource implements CandidateSource {
        final List<String> calls = new ArrayList<>();
        int failAfterBatches = Integer.MAX_VALUE;

        @Override
        public List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String model, double temperature) {
            if (failAfterBatches-- <= 0) throw new IllegalStateException("killed");
            calls.add(model + ":" + items.size());
            int skill = model == null ? 0 : Integer.parseInt(model.substring("iteration_".length()));
            List<List<String>> out = new ArrayList<>();
            for (int i = 0; i < items.size(); i++) {
                AudioQa q = items.get(i).item();
                List<String> texts = new ArrayList<>();
                for (int s = 0; s < n; s++) {
                    int draw = (int) ((seeds[i] + (s / 2) * 7L) % 4);
                    boolean right = temperature == 0 ? skill > 0 : draw <= skill;
                    String answer = right ? q.answerChoice() : q.choices().get((q.answerIndex() + 1) % q.choices().size());
                    texts.add("<think>" + "x".repeat(new SplittableRandom(seeds[i] + s / 2).nextInt(5)) + "</think>\nANSWER: " + answer);
                }
                out.add(texts);
            }
            return out;
        }

        final List<String> adapters = new ArrayList<>();

        @Override
        public void useAdapter(String name, Path dir) { adapters.add(name + "@" + dir.getFileName()); }
    }

    static final class FakePolicy implements Policy {
        final List<String> calls = new ArrayList<>();

        @Override
        public Trained train(int iteration, Path filteredJson, Path audioRoot, Path outputDir, double learningRate, Path previous) {
            calls.add(iteration + ":" + learningRate + ":" + (previous == null ? "base" : previous.getParent().getFileName()));
            return new Trained(3, 2.0, 1.0 / iteration);
        }
    }

    static RestOptions options(Path out, Filter filter, boolean dedup) {
        return new RestOptions(data, null, data, out, "tiny", 2, 4, 0.9, 0.95, 64, filter, List.of(2e-5, 1e-5, 5e-6), 2, false, dedup, 3, 11,
                PromptPreset.DEFAULT, Matching.STRICT, null);
    }

    static String run(RestOptions o, CandidateSource s, Policy p, boolean resume) {
        var log = new ByteArrayOutputStream();
        new RestRun(o, s, p, "in-process", new PrintStream(log, true, StandardCharsets.UTF_8), false, resume).run();
        return log.toString(StandardCharsets.UTF_8);
    }

    @Test
    void writesTheOriginalsLayoutAndFieldsAndGeneratesWithTheLastAdapter() throws IOException {
        Path out = dir.resolve("run");
        var source = new FakeSource();
        var policy = new FakePolicy();
        String log = run(options(out, new Filter.TopK(3), true), source, policy, false);
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        for (String f : List.of("num_iterations", "learning_rates", "data_path", "audio_dir", "base_model", "num_samples_per_problem", "temperature",
                "filter_strategy", "top_k")) assertTrue(config.has(f), f);
        assertEquals("top_k", config.get("filter_strategy").asText());
        for (int i = 1; i <= 2; i++) {
            List<String> lines = Files.readAllLines(out.resolve("iteration_" + i + "/generations/generations.jsonl"));
            assertEquals(10, lines.size());
            JsonNode g = JSON.readTree(lines.getFirst());
            assertEquals(List.of("id", "sound", "audio_dir", "question", "ground_truth", "candidates", "num_candidates"), fields(g));
            assertEquals(List.of("raw_output", "thinking_prediction", "answer_text", "answer_prediction"), fields(g.get("candidates").get(0)));
            assertEquals(4, g.get("num_candidates").asInt());
            assertEquals("audio", g.get("audio_dir").asText());
            JsonNode filtered = JSON.readTree(out.resolve("iteration_" + i + "/filtered/filtered.json").toFile());
            assertTrue(filtered.size() > 0);
            assertEquals(List.of("id", "original_id", "sound", "audio_dir", "question", "answer", "response", "thinking_prediction", "answer_text",
                    "answer_prediction", "extracted_answer", "category", "weight"), fields(filtered.get(0)));
            assertTrue(filtered.get(0).get("id").asText().matches("synth-\\d+_sol\\d"));
            for (String suffix : List.of("_stats", "_analytics", "_by_category"))
                assertTrue(Files.exists(out.resolve("iteration_" + i + "/filtered/filtered" + suffix + ".json")), suffix);
        }
        // iteration 1 samples the base, iteration 2 the adapter iteration 1 trained; evaluation after each
        assertTrue(source.calls.stream().filter(c -> c.startsWith("iteration_1")).count() > 0);
        assertEquals(List.of("iteration_1@training", "iteration_2@training"), source.adapters);   // iteration 2's for its evaluation
        assertEquals(List.of("1:2.0E-5:base", "2:1.0E-5:iteration_1"), policy.calls);
        assertTrue(log.contains("iter"), log);
        byte[] png = Files.readAllBytes(out.resolve("accuracy.png"));
        assertEquals("PNG", new String(png, 1, 3, StandardCharsets.US_ASCII));
        List<String> metrics = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(1 + 2 * 4, metrics.size(), String.join("\n", metrics));       // base eval, then generate/filter/train/eval per iteration
    }

    /** A plot that cannot be drawn (here: accuracy.png is a folder; on a host without fonts, java.awt) does not fail the finished run. */
    @Test
    void aPlotThatCannotBeDrawnDoesNotFailTheRun() throws IOException {
        Path out = dir.resolve("no-plot");
        Files.createDirectories(out.resolve("accuracy.png"));
        String log = run(options(out, new Filter.TopK(3), true), new FakeSource(), new FakePolicy(), false);
        assertTrue(log.contains("accuracy.png not drawn"), log);
        assertTrue(Files.isDirectory(out.resolve("accuracy.png")));
        assertEquals(1 + 2 * 4, Files.readAllLines(out.resolve("metrics.jsonl")).size(), "every phase's metrics were written");
    }

    @Test
    void dedupDropsIdenticalCorrectSolutionsAndFiltersKeepTheShortest() throws IOException {
        var f1 = countKept(dir.resolve("all-dup"), new Filter.All(), false);
        var f2 = countKept(dir.resolve("all-dedup"), new Filter.All(), true);
        assertTrue(f2 < f1, f1 + " vs " + f2);
        JsonNode best = keptOf(dir.resolve("best"), new Filter.Best(), false);
        JsonNode gens = JSON.readTree(Files.readAllLines(dir.resolve("best/iteration_1/generations/generations.jsonl")).getFirst());
        String id = gens.get("id").asText();
        int shortest = Integer.MAX_VALUE;
        for (JsonNode c : gens.get("candidates"))
            if (c.get("answer_prediction").asText().equals(gens.get("ground_truth").asText())) shortest = Math.min(shortest, c.get("raw_output").asText().length());
        for (JsonNode s : best) if (s.get("original_id").asText().equals(id)) assertEquals(shortest, s.get("response").asText().length());
    }

    private static int countKept(Path out, Filter f, boolean dedup) throws IOException { return keptOf(out, f, dedup).size(); }

    private static JsonNode keptOf(Path out, Filter f, boolean dedup) throws IOException {
        run(options(out, f, dedup), new FakeSource(), new FakePolicy(), false);
        return JSON.readTree(out.resolve("iteration_1/filtered/filtered.json").toFile());
    }

    @Test
    void learningZoneCategoriesAndWeightsFollowTheAbsoluteCounts() {
        var lz = new Filter.LearningZone(3, false, false, 0.1, 42).selector();
        List<String> raws = new ArrayList<>();
        for (int i = 0; i < 16; i++) raws.add("r".repeat(20 - i));
        assertEquals(List.of(), lz.select(raws, List.of()));
        assertEquals(2, lz.select(raws, List.of(0, 5)).size());                      // challenging: all, weight 1
        var zone = lz.select(raws, List.of(0, 1, 2, 3, 4));                          // learning zone: the 3 shortest, 1.5
        assertEquals(List.of(4, 3, 2), zone.stream().map(Filter.Kept::candidate).toList());
        assertEquals(1.5, zone.getFirst().weight());
        assertEquals(0.5, lz.select(raws, List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)).getFirst().weight());
        assertEquals(List.of(), lz.select(raws, List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)));   // mastered, not included
        assertEquals(Filter.Category.MASTERED, Filter.Category.of(15));
        assertEquals(Filter.Category.ALMOST_MASTERED, Filter.Category.of(14));
    }

    @Test
    void aKilledGenerationResumesToTheSameFiles() throws IOException {
        Path whole = dir.resolve("whole"), killed = dir.resolve("killed");
        run(options(whole, new Filter.TopK(3), true), new FakeSource(), new FakePolicy(), false);
        var dying = new FakeSource();
        dying.failAfterBatches = 4 + 4 + 4 + 2;                 // base eval, iteration 1's generation and eval (4 batches of 3 each), 2 of iteration 2's
        assertThrows(IllegalStateException.class, () -> run(options(killed, new Filter.TopK(3), true), dying, new FakePolicy(), false));
        Path partial = killed.resolve("iteration_2/generations/generations.jsonl");
        // a torn line, as a kill in the middle of a write leaves it
        Files.writeString(partial, "{\"id\": \"synth-0000", java.nio.file.StandardOpenOption.APPEND);
        assertThrows(IllegalArgumentException.class, () -> run(options(killed, new Filter.TopK(3), true), new FakeSource(), new FakePolicy(), false));
        var again = new FakeSource();
        run(options(killed, new Filter.TopK(3), true), again, new FakePolicy(), true);
        // only the missing problems of iteration 2 are generated (2 of 4 batches), with iteration 1's adapter, then its eval
        assertEquals(List.of("iteration_1:3", "iteration_1:1", "iteration_2:3", "iteration_2:3", "iteration_2:3", "iteration_2:1"), again.calls);
        for (String f : List.of("iteration_1/generations/generations.jsonl", "iteration_2/generations/generations.jsonl", "iteration_1/filtered/filtered.json",
                "iteration_2/filtered/filtered.json", "iteration_2/filtered/filtered_stats.json", "iteration_2/eval/generations.jsonl"))
            assertEquals(Files.readString(whole.resolve(f)), Files.readString(killed.resolve(f)), f);
        assertEquals(stripSeconds(whole.resolve("metrics.jsonl")), stripSeconds(killed.resolve("metrics.jsonl")));
    }

    @Test
    void aResumeWithOtherSettingsIsRefused() {
        Path out = dir.resolve("other");
        run(options(out, new Filter.TopK(3), true), new FakeSource(), new FakePolicy(), false);
        var e = assertThrows(IllegalArgumentException.class, () -> run(options(out, new Filter.All(), true), new FakeSource(), new FakePolicy(), true));
        assertTrue(e.getMessage().contains("filter_strategy"), e.getMessage());
    }

    @Test
    void seedsDependOnTheProblemIndexOnly() {
        var r = new RestRun(options(dir.resolve("x"), new Filter.All(), true), null, null, "", System.err, false, false);
        assertEquals(r.seed(3), r.seed(3));
        assertFalse(r.seed(3) == r.seed(4));
        assertTrue(r.seed(5) >= 0);
        assertNull(null);
    }

    private static List<String> fields(JsonNode o) {
        List<String> out = new ArrayList<>();
        o.fieldNames().forEachRemaining(out::add);
        return out;
    }

    private static List<String> stripSeconds(Path metrics) throws IOException {
        return Files.readAllLines(metrics).stream().map(l -> l.replaceAll("\"seconds\":[0-9.Ee-]+", "")).toList();
    }
}

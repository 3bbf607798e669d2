package dev.jomni.train.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.train.Fixtures;
import dev.jomni.train.Progress;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.PromptPreset;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvaluationTest {
    static final String PARROT = "f0VchKwpMAk_00-11-10_00-11-30", PLANE = "BV1o64y1G7p2_00-00-12_00-00-31",
            TONE = "Txj3Qv1lJgs_00-00-00_00-00-16", DOOR = "BV1j1ABeqEyp_00-06-02_00-06-16";
    @TempDir Path dir;
    Dataset data;

    @BeforeEach
    void load() throws IOException {
        data = Dataset.load(Fixtures.mmar(dir.resolve("mmar")));
    }

    /** Answers from a table, cycling through each id's list for successive samples; records the batches it saw. */
    static final class Scripted implements AnswerGenerator {
        final Map<String, List<String>> outputs;
        final List<List<PromptedItem>> batches = new ArrayList<>();

        Scripted(Map<String, List<String>> outputs) { this.outputs = outputs; }

        @Override
        public List<List<String>> generate(List<PromptedItem> batch, int samplesPerItem) {
            batches.add(batch);
            var out = new ArrayList<List<String>>();
            for (PromptedItem p : batch) {
                List<String> o = outputs.get(p.item().id());
                var s = new ArrayList<String>();
                for (int k = 0; k < samplesPerItem; k++) s.add(o.get(k % o.size()));
                out.add(s);
            }
            return out;
        }
    }

    @Test
    void runsInBatchesScoresAndWritesASubmissionThatPassesTheCheck() throws IOException {
        var gen = new Scripted(Map.of(
                PARROT, List.of("<think>\nA bird talks.\n</think>\n\nANSWER: parrot"),
                PLANE, List.of("<think>\nEngines hum" + "m".repeat(12_000)),            // truncated: no answer
                TONE, List.of("<think>It is about 2 kHz.</think>\nANSWER: (D) 2040"),
                DOOR, List.of("<think>Someone knocks.</think>\nANSWER: To answer the phone")));
        var log = new ByteArrayOutputStream();
        Evaluation run = Evaluation.run(data, gen, EvalOptions.defaults().withBatchSize(3),
                Progress.start("eval", data.size(), new PrintStream(log, true), false));
        assertEquals(List.of(3, 1), gen.batches.stream().map(List::size).toList());
        assertEquals(PromptPreset.REST.build(data.items().getFirst()), gen.batches.getFirst().getFirst().prompt());
        assertTrue(log.toString().contains("eval [") && log.toString().contains("4/4"), log.toString());

        assertEquals(List.of(true, false, true, false), run.items().stream().map(Evaluation.ItemResult::correct).toList());
        assertEquals("Parrot", run.items().get(0).prediction().answer(), "canonical choice text");
        assertEquals("2040", run.items().get(2).prediction().answer(), "the choice '2040 ' trimmed, as the answer spells it");
        assertEquals(new AccuracyReport.Tally("overall", 2, 4), run.report().overall());

        Path out = dir.resolve("out");
        run.write(out);
        Path result = out.resolve("result.jsonl");
        assertTrue(Submission.check(result, Dataset.readIds(data.file())).valid(),
                Submission.check(result, Dataset.readIds(data.file())).problems().toString());
        var lines = Files.readAllLines(result);
        assertEquals(4, lines.size());
        JsonNode plane = new ObjectMapper().readTree(lines.get(1));
        assertEquals(PLANE, plane.get("id").asText());
        assertEquals(Submission.NO_ANSWER, plane.get("answer_prediction").asText());
        assertEquals(Submission.MAX_THINKING_CHARS - 1, plane.get("thinking_prediction").asText().length());
        JsonNode parrot = new ObjectMapper().readTree(lines.get(0));
        assertEquals("A bird talks.", parrot.get("thinking_prediction").asText());

        JsonNode metrics = new ObjectMapper().readTree(out.resolve("metrics.json").toFile());
        assertEquals("rest", metrics.get("prompt").asText());
        assertEquals(1, metrics.get("thinking_truncated").asInt());
        assertEquals(0.5, metrics.path("accuracy").path("overall").path("accuracy").asDouble(), 1e-12);
        JsonNode gen0 = new ObjectMapper().readTree(Files.readAllLines(out.resolve("generations.jsonl")).getFirst());
        assertEquals("rest", gen0.get("prompt").asText());
        assertEquals(3, gen0.path("candidates").get(0).get("choice").asInt());

        var reread = Submission.read(result);
        var answers = new java.util.HashMap<String, String>();
        reread.forEach((id, p) -> answers.put(id, p.answer()));
        assertEquals(run.report().overall(),
                AccuracyReport.of(data, answers, run.options().matching(), AccuracyReport.EVAL_DIMENSIONS).overall(),
                "scoring result.jsonl again gives the same accuracy");
    }

    @Test
    void majorityVoteTakesTheMostNamedChoiceWithTheReasoningOfItsFirstSample() {
        var gen = new Scripted(Map.of(
                PARROT, List.of("<think>1</think>ANSWER: Owl", "<think>2</think>ANSWER: Parrot", "<think>3</think>ANSWER: nothing",
                        "<think>4</think>ANSWER: D", "<think>5</think>ANSWER: parrot."),
                PLANE, List.of("<think>a</think>ANSWER: On a ship", "<think>b</think>ANSWER: On a plane"),
                TONE, List.of("<think>x</think>no idea", "<think>y</think>still no idea"),
                DOOR, List.of("<think>k</think>ANSWER: To find the keys", "<think>o</think>ANSWER: To open the door")));
        Evaluation run = Evaluation.run(data, gen, EvalOptions.defaults().withSamples(5, Vote.MAJORITY), null);
        assertEquals(new Prediction(PARROT, "2", "Parrot"), run.items().get(0).prediction(), "Parrot 3 votes (one as D), Owl 1");
        assertEquals(new Prediction(PLANE, "a", "On a ship"), run.items().get(1).prediction(), "ship, plane, ship, plane, ship");
        assertEquals(new Prediction(TONE, "x", ""), run.items().get(2).prediction(), "no sample names a choice: the first stands");
        assertEquals(5, run.items().get(0).samples().size());

        Evaluation tie = Evaluation.run(data, gen, EvalOptions.defaults().withSamples(2, Vote.MAJORITY), null);
        assertEquals("To find the keys", tie.items().get(3).prediction().answer(), "a tie goes to the choice named first");

        Evaluation first = Evaluation.run(data, gen, EvalOptions.defaults().withSamples(5, Vote.FIRST), null);
        assertEquals(new Prediction(PARROT, "1", "Owl"), first.items().get(0).prediction());
    }

    @Test
    void generatorReturningTheWrongNumberOfSamplesIsAnError() {
        AnswerGenerator short1 = (batch, n) -> batch.stream().map(p -> List.of("ANSWER: Owl")).toList();
        var e = assertThrows(IllegalStateException.class,
                () -> Evaluation.run(data, short1, EvalOptions.defaults().withSamples(2, Vote.MAJORITY), null));
        assertTrue(e.getMessage().contains("returned 1 samples for id '" + PARROT + "', expected 2"), e.getMessage());
    }
}

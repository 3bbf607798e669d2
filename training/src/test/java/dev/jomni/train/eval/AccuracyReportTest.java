package dev.jomni.train.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.train.Fixtures;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.score.Matching;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AccuracyReportTest {
    @TempDir Path dir;

    /** Reference values: Wilson score interval tables (e.g. 8/10 gives 0.4902–0.9433). */
    @Test
    void wilsonIntervalMatchesReferenceValues() {
        var t = new AccuracyReport.Tally("g", 8, 10);
        assertEquals(0.8, t.accuracy(), 1e-12);
        assertEquals(0.490162, t.low(), 1e-6);
        assertEquals(0.943318, t.high(), 1e-6);
        assertEquals(0.0, new AccuracyReport.Tally("g", 0, 5).low(), 1e-12);
        assertEquals(0.434482, new AccuracyReport.Tally("g", 0, 5).high(), 1e-6);
        assertEquals(0.565518, new AccuracyReport.Tally("g", 5, 5).low(), 1e-6);
        assertEquals(1.0, new AccuracyReport.Tally("g", 5, 5).high(), 1e-12);
    }

    @Test
    void missingAndEmptyPredictionsAreWrongAndUnknownIdsIgnored() throws IOException {
        Dataset d = Dataset.load(Fixtures.mmar(dir));
        var answers = Map.of(
                "f0VchKwpMAk_00-11-10_00-11-30", "Parrot",          // right
                "BV1o64y1G7p2_00-00-12_00-00-31", "",               // empty: wrong
                "Txj3Qv1lJgs_00-00-00_00-00-16", "D",               // right by letter
                "not-in-dataset", "Owl");                           // unknown
        // BV1j1ABeqEyp… has no prediction: wrong
        AccuracyReport r = AccuracyReport.of(d, answers, Matching.STRICT, AccuracyReport.EVAL_DIMENSIONS);
        assertEquals(new AccuracyReport.Tally("overall", 2, 4), r.overall());
        assertEquals(1, r.missing());
        assertEquals(1, r.unknownIds());
        assertEquals(List.of(new AccuracyReport.Tally("Perception Layer", 0, 1), new AccuracyReport.Tally("Semantic Layer", 1, 2),
                new AccuracyReport.Tally("Signal Layer", 1, 1)), r.groups().get("category"));
        assertEquals(4, r.groups().get("sub-category").size());
        String table = r.table();
        assertTrue(table.contains("95% Wilson interval"), table);
        assertTrue(table.contains("  Semantic Layer") && table.contains("50.00%"), table);
        assertEquals(0.5, r.json().path("overall").path("accuracy").asDouble(), 1e-12);
        assertEquals("wilson-95", r.json().path("interval").asText());
        assertEquals(2, r.json().path("category").path("Semantic Layer").path("total").asInt());
    }

    @Test
    void analysisListsEachDimensionWorstFirstAndSkipsNullValues() throws IOException {
        Dataset d = Dataset.load(Fixtures.mmar(dir));
        var answers = Map.of("f0VchKwpMAk_00-11-10_00-11-30", "Parrot", "BV1j1ABeqEyp_00-06-02_00-06-16", "To open the door");
        AccuracyReport r = AccuracyReport.of(d, answers, Matching.STRICT, AccuracyReport.ANALYSIS_DIMENSIONS);
        assertEquals(List.of(new AccuracyReport.Tally("en", 2, 2)), r.groups().get("language"), "null languages are left out");
        String text = r.worstFirst(2);
        int perception = text.indexOf("Perception Layer"), semantic = text.indexOf("Semantic Layer");
        assertTrue(text.contains("Performance by CATEGORY") && perception >= 0 && perception < semantic, text);
        assertTrue(text.contains("WORST 2 PERFORMERS"), text);
    }

    @Test
    void recordsWithoutGroundTruthAreLeftOutOfEveryTally() throws IOException {
        Path file = dir.resolve("u.jsonl");
        java.nio.file.Files.writeString(file,
                "{\"id\":\"a\",\"sound\":\"a.wav\",\"question\":\"Q\\n(A) x\\n(B) y\",\"answer\":\"x\",\"category\":\"C\"}\n"
                + "{\"id\":\"b\",\"sound\":\"b.wav\",\"question\":\"Q\\n(A) x\\n(B) y\",\"answer\":\"z\",\"category\":\"C\"}\n");
        Dataset d = Dataset.load(file, dev.jomni.train.data.LoadOptions.defaults().withCheckAudio(false).withRequireAnswers(false)
                .withWarnings(w -> {}));
        AccuracyReport r = AccuracyReport.of(d, Map.of("a", "x", "b", "x"), Matching.STRICT, AccuracyReport.EVAL_DIMENSIONS);
        assertEquals(new AccuracyReport.Tally("overall", 1, 1), r.overall());
        assertEquals(List.of(new AccuracyReport.Tally("C", 1, 1)), r.groups().get("category"));
        assertEquals(1, r.unscored());
        assertTrue(r.table().contains("1 record(s) without a ground truth, not scored"), r.table());
    }
}

package dev.jomni.train.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SubmissionTest {
    @TempDir Path dir;

    Path file(String name, String... lines) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    Path zip(String name, String... entries) throws IOException {
        Path z = dir.resolve(name);
        try (var out = new ZipOutputStream(Files.newOutputStream(z))) {
            for (String e : entries) {
                out.putNextEntry(new ZipEntry(e));
                out.write("{\"id\":\"a\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"x\"}\n".getBytes(StandardCharsets.UTF_8));
                out.closeEntry();
            }
        }
        return z;
    }

    @Test
    void validFileAndItsZipPass() throws IOException {
        Path f = file("result.jsonl",
                "{\"id\":\"a\",\"thinking_prediction\":\"I hear a dog.\",\"answer_prediction\":\"Dog\"}",
                "",
                "{\"id\":\"b\",\"thinking_prediction\":\"\",\"answer_prediction\":\"Cat\"}");
        Submission.Check c = Submission.check(f, List.of("a", "b"));
        assertTrue(c.valid(), c.problems().toString());
        assertEquals(2, c.records());
        Path z = dir.resolve("submission.zip");
        Submission.zip(f, z);
        assertTrue(Submission.check(z, List.of("a", "b")).valid());
    }

    @Test
    void everyProblemIsListed() throws IOException {
        Path f = file("result.jsonl",
                "{\"id\":\"a\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"\"}",        // empty answer
                "{\"thinking_prediction\":\"t\",\"answer_prediction\":\"x\"}",                    // no id
                "{\"id\":\"c\",\"answer_prediction\":\"x\"}",                                     // no thinking
                "{\"id\":\"d\",\"thinking_prediction\":\"t\",\"answer_prediction\":3}",          // answer not a string
                "{\"id\":\"a\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"x\"}",      // duplicate
                "not json",
                "{\"id\":\"z\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"x\"}");     // unknown id
        List<String> p = Submission.check(f, List.of("a", "c", "d", "m")).problems();
        String all = String.join("\n", p);
        assertTrue(p.get(0).endsWith(":1, id 'a': 'answer_prediction' is empty"), all);
        assertTrue(p.get(1).endsWith(":2: missing 'id'"), all);
        assertTrue(p.get(2).endsWith(":3, id 'c': missing 'thinking_prediction'"), all);
        assertTrue(p.get(3).endsWith(":4, id 'd': 'answer_prediction' must be a string"), all);
        assertTrue(p.get(4).endsWith(":5, id 'a': duplicated id, first on line 1"), all);
        assertTrue(p.get(5).contains(":6: invalid JSON"), all);
        assertTrue(p.get(6).endsWith(": id 'z' is not in the dataset"), all);
        assertTrue(p.get(7).endsWith(": dataset id 'm' has no prediction"), all);
        assertTrue(p.get(8).endsWith(": 1 of 4 dataset ids have no prediction"), all);
        assertEquals(9, p.size(), all);
    }

    @Test
    void thinkingMustBeShorterThanTenThousandCharacters() throws IOException {
        String ok = "x".repeat(9_999), tooLong = "x".repeat(10_000);
        Path f = file("result.jsonl",
                "{\"id\":\"a\",\"thinking_prediction\":\"" + ok + "\",\"answer_prediction\":\"x\"}",
                "{\"id\":\"b\",\"thinking_prediction\":\"" + tooLong + "\",\"answer_prediction\":\"x\"}");
        List<String> p = Submission.check(f, null).problems();
        assertEquals(1, p.size(), p.toString());
        assertTrue(p.getFirst().endsWith(":2, id 'b': 'thinking_prediction' is 10000 chars (max 9999)"), p.getFirst());
    }

    @Test
    void zipMustHoldExactlyOneTopLevelResultJsonl() throws IOException {
        assertTrue(Submission.check(zip("one.zip", "result.jsonl"), null).valid());
        assertFalse(Submission.check(zip("two.zip", "result.jsonl", "notes.txt"), null).valid());
        List<String> nested = Submission.check(zip("nested.zip", "out/result.jsonl"), null).problems();
        assertEquals(1, nested.size());
        assertTrue(nested.getFirst().contains("exactly one entry, result.jsonl, at its top level"), nested.getFirst());
    }

    @Test
    void emptyOrMissingFileIsInvalid() throws IOException {
        assertFalse(Submission.check(file("empty.jsonl", ""), null).valid());
        assertFalse(Submission.check(dir.resolve("absent.jsonl"), null).valid());
    }

    @Test
    void writeCutsLongThinkingAndFillsEmptyAnswersSoTheFileIsValid() throws IOException {
        Path f = dir.resolve("result.jsonl");
        int cut = Submission.write(f, List.of(new Prediction("a", "\uD83C\uDFB5".repeat(10_000), ""),
                new Prediction("b", "short", "Cat")));
        assertEquals(1, cut);
        assertTrue(Submission.check(f, List.of("a", "b")).valid());
        var read = Submission.read(f);
        assertEquals(9_999, read.get("a").thinking().codePointCount(0, read.get("a").thinking().length()), "code points, not chars");
        assertEquals(Submission.NO_ANSWER, read.get("a").answer());
        assertEquals(new Prediction("b", "short", "Cat"), read.get("b"));
    }
}

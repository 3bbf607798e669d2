package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {
    /** A demo set keeps n records of the wanted skills, in the short form, and only their clips on disk. */
    @Test
    void aDemoSetHoldsItsRecordsAndOnlyTheirClips(@TempDir Path dir) throws Exception {
        Path file = DemoCommand.demoSet(dir, 6, 7, Set.of("Loudness"));
        JsonNode records = new ObjectMapper().readTree(file.toFile());
        assertEquals(6, records.size());
        Set<String> sounds = new TreeSet<>(), clips = new TreeSet<>();
        for (JsonNode r : records) {
            assertEquals("Loudness", r.get("category").asText());
            assertEquals(true, r.get("response").asText().matches("ANSWER: [A-D]"), r.toString());
            sounds.add(r.get("sound").asText());
        }
        try (var files = Files.list(dir.resolve("audio"))) {
            files.forEach(p -> clips.add(p.getFileName().toString()));
        }
        assertEquals(sounds, clips);
    }

    /** Counting keeps 1 to 4 beeps, so the letter names the count; Kind's choices are always in one order. */
    @Test
    void countingLettersNameTheCountAndKindChoicesKeepTheirOrder(@TempDir Path dir) throws Exception {
        Path file = DemoCommand.demoSet(dir, 24, 3, Set.of("Counting", "Kind"));
        JsonNode records = new ObjectMapper().readTree(file.toFile());
        assertEquals(24, records.size());
        int counting = 0;
        for (JsonNode r : records) {
            String q = r.get("question").asText(), letter = r.get("response").asText().substring("ANSWER: ".length());
            if (r.get("category").asText().equals("Counting")) {
                counting++;
                assertEquals(true, q.endsWith("(A) 1\n(B) 2\n(C) 3\n(D) 4"), q);
                assertEquals(r.get("answer").asText(), Integer.toString(letter.charAt(0) - 'A' + 1), r.toString());
            } else {
                assertEquals("Kind", r.get("category").asText());
                assertEquals(true, q.endsWith("(A) A low hum\n(B) A high beep\n(C) A burst of noise\n(D) A rising whistle"), q);
            }
        }
        assertEquals(12, counting);
    }
}

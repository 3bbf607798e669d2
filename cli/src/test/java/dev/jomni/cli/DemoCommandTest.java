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
}

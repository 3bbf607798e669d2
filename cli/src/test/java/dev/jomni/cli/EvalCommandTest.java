package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** omni eval with the real thinker: the tiny fixture model answers a synthetic set end to end on the CPU. */
class EvalCommandTest {
    @Test
    void tinyModelAnswersASyntheticSetAndTheSubmissionIsValid(@TempDir Path dir) throws Exception {
        Path tiny = ForwardCommandTest.TINY, synth = dir.resolve("synth"), runDir = dir.resolve("run");
        PrintStream out = System.out, err = System.err;
        var captured = new ByteArrayOutputStream();
        var errors = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(errors, true, StandardCharsets.UTF_8));
            assertEquals(0, Main.run("data", "synth", "--out", synth.toString(), "--n", "4", "--seed", "3"));
            String data = synth.resolve("data.json").toString();
            assertEquals(0, Main.run("eval", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                    "--data", data, "--out", runDir.toString(), "--max-new-tokens", "6", "--batch-size", "2"), errors.toString());
            assertEquals(0, Main.run("submission", "check", "--data", data, runDir.resolve("result.jsonl").toString()));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        List<String> lines = Files.readAllLines(runDir.resolve("result.jsonl"));
        assertEquals(4, lines.size());
        var json = new ObjectMapper();
        for (String line : lines) {
            JsonNode r = json.readTree(line);
            assertTrue(r.has("id") && r.has("thinking_prediction") && r.has("answer_prediction"), line);
        }
        // The model is random: the generations are whatever its greedy decoding gives, but they are its own (not empty).
        assertTrue(Files.readString(runDir.resolve("generations.jsonl")).length() > 0);
        assertTrue(captured.toString().contains("valid: 4 record(s)"), captured.toString());
    }
}

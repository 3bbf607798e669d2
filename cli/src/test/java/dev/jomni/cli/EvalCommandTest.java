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

    @Test
    void anAdapterIsAppliedToTheThinker(@TempDir Path dir) throws Exception {
        Path tiny = ForwardCommandTest.TINY, synth = dir.resolve("synth");
        PrintStream out = System.out, err = System.err;
        var errors = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(errors, true, StandardCharsets.UTF_8));
            assertEquals(0, Main.run("data", "synth", "--out", synth.toString(), "--n", "2", "--seed", "3"));
            // Sampled with one seed: the random tiny model's greedy answers repeat one token with or without the adapter.
            for (String run : List.of("plain", "adapted")) {
                var args = new java.util.ArrayList<>(List.of("eval", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                        "--data", synth.resolve("data.json").toString(), "--out", dir.resolve(run).toString(), "--max-new-tokens", "6",
                        "--temperature", "1.0", "--seed", "7"));
                if (run.equals("adapted")) args.addAll(List.of("--adapter", tiny.resolve("lora/adapter").toString()));
                assertEquals(0, Main.run(args.toArray(String[]::new)), errors.toString());
            }
            Path broken = Files.createDirectories(dir.resolve("broken"));
            Files.copy(tiny.resolve("lora/adapter/adapter_config.json"), broken.resolve("adapter_config.json"));
            assertTrue(Main.run("eval", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                    "--data", synth.resolve("data.json").toString(), "--out", dir.resolve("broken-run").toString(), "--adapter", broken.toString()) != 0);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        assertTrue(errors.toString().contains("adapter_model.safetensors: no such file"), errors.toString());
        assertTrue(!Files.readString(dir.resolve("plain/generations.jsonl")).equals(Files.readString(dir.resolve("adapted/generations.jsonl"))),
                "the adapter changes what is generated");
    }
}

package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** omni sft end to end on the tiny fixture model and synthetic data, on the CPU. */
class SftCommandTest {
    static final Path TINY = ForwardCommandTest.TINY;

    private static List<String> sftArgs(Path data, Path out, String... extra) {
        var args = new ArrayList<>(List.of("sft", "--model", TINY.resolve("model").toString(), "--tokenizer", TINY.resolve("tokenizer").toString(),
                "--data", data.toString(), "--output_dir", out.toString(), "--max_steps", "20", "--per_device_train_batch_size", "1",
                "--gradient_accumulation_steps", "2", "--learning_rate", "2e-2", "--warmup_steps", "1", "--lr_scheduler_type", "linear",
                "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--save_steps", "10", "--save_total_limit", "1", "--target_modules", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head", "--logging_steps", "1", "--seed", "5", "--optim", "paged_adamw_8bit"));
        for (int i = 0; i < extra.length; i++) {
            int at = args.indexOf(extra[i]);
            boolean valued = i + 1 < extra.length && !extra[i + 1].startsWith("--");
            if (at >= 0 && valued) args.set(at + 1, extra[++i]);
            else if (at < 0) {
                args.add(extra[i]);
                if (valued) args.add(extra[++i]);
            }
        }
        return args;
    }

    private static String run(List<String> args) {
        PrintStream out = System.out, err = System.err;
        var captured = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            int code = Main.run(args.toArray(String[]::new));
            assertEquals(0, code, captured.toString());
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return captured.toString();
    }

    private static int runFailing(List<String> args, ByteArrayOutputStream captured) {
        PrintStream out = System.out, err = System.err;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            return Main.run(args.toArray(String[]::new));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    /**
     * Keeps CI fast: the synthetic records' questions cut to their option lines and the responses to the answer
     * line. The tiny fixture's logits span the real 152k vocabulary, so every token costs; the audio stays as synthesised.
     */
    static void shorten(Path data) throws java.io.IOException {
        var json = new ObjectMapper();
        var records = (com.fasterxml.jackson.databind.node.ArrayNode) json.readTree(data.toFile());
        for (JsonNode r : records) {
            var o = (com.fasterxml.jackson.databind.node.ObjectNode) r;
            String options = String.join("\n", java.util.Arrays.stream(o.get("question").asText().split("\n")).filter(l -> l.startsWith("(")).toList());
            o.put("question", "<sound>\n" + options);
            o.put("response", "ANSWER: " + o.get("answer").asText());
        }
        json.writeValue(data.toFile(), records);
    }

    @Test
    void trainsResumesExactlyAfterSigkillAndTheAdapterLoadsBack(@TempDir Path dir) throws Exception {
        Path synth = dir.resolve("synth"), full = dir.resolve("full"), killed = dir.resolve("killed");
        run(List.of("data", "synth", "--out", synth.toString(), "--n", "2", "--seed", "3"));
        Path data = synth.resolve("data.json");
        shorten(data);

        // 1. An uninterrupted run: the loss falls, checkpoints and the final adapter are written.
        String log = run(sftArgs(data, full));
        assertTrue(log.contains("paged_adamw_8bit"), log);
        assertTrue(log.matches("(?s).*\\n  attention .* bytes  f32 \\+ nf4\\n.*"), "use_4bit is on by default for training: the attention Linears are NF4\n" + log);
        List<JsonNode> metrics = new ArrayList<>();
        var json = new ObjectMapper();
        for (String line : Files.readAllLines(full.resolve("metrics.jsonl"))) metrics.add(json.readTree(line));
        assertEquals(20, metrics.size());
        for (String f : List.of("step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s")) assertTrue(metrics.getFirst().has(f), f);
        double first = metrics.getFirst().get("loss").asDouble(), last = metrics.getLast().get("loss").asDouble();
        System.err.println("sft losses: " + metrics.stream().map(j -> j.get("loss").asText()).toList());
        assertTrue(last < 0.1 * first, "the loss falls by 90%: " + first + " → " + last);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "scheduler.json", "rng_state.json", "trainer_state.json"))
            assertTrue(Files.isRegularFile(full.resolve("checkpoint-20").resolve(f)), f);
        assertFalse(Files.exists(full.resolve("checkpoint-10")), "save_total_limit 1 keeps only the newest");
        try (var listing = Files.list(full)) {
            assertTrue(listing.noneMatch(p -> p.getFileName().toString().startsWith(".checkpoint")), "no temporary folders left");
        }
        assertTrue(Files.isRegularFile(full.resolve("adapter_model.safetensors")));

        // 2. The same run in a child JVM, SIGKILLed once checkpoint-10 is there, then resumed here from 'latest'.
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.jomni.cli.Main"));
        cmd.addAll(sftArgs(data, killed));
        Process child = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.exists(killed.resolve("checkpoint-10").resolve("trainer_state.json")) && child.isAlive() && System.nanoTime() < deadline) Thread.sleep(10);
        boolean wasRunning = child.isAlive();
        child.destroyForcibly();                                                   // SIGKILL on Linux
        child.waitFor(30, TimeUnit.SECONDS);
        assertTrue(Files.exists(killed.resolve("checkpoint-10")), Files.readString(dir.resolve("child.log")));
        assertTrue(wasRunning && !Files.exists(killed.resolve("checkpoint-20")), "killed before the end");
        String resumed = run(sftArgs(data, killed, "--resume_from_checkpoint", "latest"));
        assertTrue(resumed.contains("resuming from"), resumed);
        for (String f : List.of("checkpoint-20/adapter_model.safetensors", "checkpoint-20/optimizer.safetensors", "adapter_model.safetensors"))
            assertArrayEquals(Files.readAllBytes(full.resolve(f)), Files.readAllBytes(killed.resolve(f)), f + " is bit-identical");
        assertEquals(Files.readAllLines(full.resolve("metrics.jsonl")).stream().map(l -> l.replaceAll(",\"tokens_per_s\":[^}]*", "")).toList(),
                Files.readAllLines(killed.resolve("metrics.jsonl")).stream().map(l -> l.replaceAll(",\"tokens_per_s\":[^}]*", "")).toList());

        // 3. The adapter loads back: omni forward --adapter changes the fixture's logits.
        run(List.of("forward", "--model", TINY.resolve("model").toString(), "--inputs", TINY.toString(), "--out", dir.resolve("base.npy").toString()));
        run(List.of("forward", "--model", TINY.resolve("model").toString(), "--inputs", TINY.toString(), "--out", dir.resolve("tuned.npy").toString(),
                "--adapter", full.toString()));
        float[] base = Npy.read(dir.resolve("base.npy")).toFloats(), tuned = Npy.read(dir.resolve("tuned.npy")).toFloats();
        assertFalse(java.util.Arrays.equals(base, tuned), "the trained adapter changes the logits");

        // 4. Merged: base + adapter in one checkpoint gives the adapter's logits.
        Path merged = dir.resolve("merged");
        run(List.of("merge", "--model", TINY.resolve("model").toString(), "--adapter", full.toString(), "--out", merged.toString(), "--dtype", "f32"));
        assertTrue(Files.isRegularFile(merged.resolve("config.json")));
        run(List.of("forward", "--model", merged.toString(), "--inputs", TINY.toString(), "--out", dir.resolve("merged.npy").toString()));
        float[] m = Npy.read(dir.resolve("merged.npy")).toFloats();
        double worst = 0, scale = 0;
        for (int i = 0; i < m.length; i++) {
            worst = Math.max(worst, Math.abs(m[i] - tuned[i]));
            scale = Math.max(scale, Math.abs(tuned[i]));
        }
        assertTrue(worst / scale < 1e-5, "merged vs applied adapter: relative " + worst / scale);

        // 5. Resuming with another rank names the file and the field.
        var err = new ByteArrayOutputStream();
        List<String> wrong = sftArgs(data, killed, "--resume_from_checkpoint", "latest", "--lora_r", "4");
        assertEquals(1, runFailing(wrong, err));
        assertTrue(err.toString().contains("adapter_config.json: field 'r' is 8 but --lora_r is 4"), err.toString());
    }

    @Test
    void aSampleWithoutAResponseIsNamedOrSkipped(@TempDir Path dir) throws Exception {
        Path synth = dir.resolve("synth");
        run(List.of("data", "synth", "--out", synth.toString(), "--n", "2", "--seed", "3"));
        Path data = synth.resolve("data.json");
        shorten(data);
        var json = new ObjectMapper();
        var records = (com.fasterxml.jackson.databind.node.ArrayNode) json.readTree(data.toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) records.get(1)).remove("response");
        String id = records.get(1).get("id").asText();
        json.writeValue(data.toFile(), records);
        var err = new ByteArrayOutputStream();
        assertEquals(1, runFailing(sftArgs(data, dir.resolve("out"), "--max_steps", "1"), err));
        assertTrue(err.toString().contains(data + ": record '" + id + "': field 'response'"), err.toString());
        // With --skip-bad-samples a warning and a count; the run goes on (here with the base in bf16, LoRA master weights in f32).
        String log = run(sftArgs(data, dir.resolve("out2"), "--max_steps", "1", "--save_steps", "0", "--skip-bad-samples", "--bf16"));
        assertTrue(log.contains("warning: skipped: ") && log.contains("1 bad sample(s) skipped"), log);
        try (var st = dev.jomni.nn.io.SafeTensors.open(dir.resolve("out2").resolve("adapter_model.safetensors"))) {
            for (var t : st.tensors()) assertEquals(dev.jomni.nn.io.StoredDType.F32, t.dtype(), t.name());
        }
    }
}

package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.cuda.Cuda;
import dev.jomni.train.data.SynthTask;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** omni sft, rest and grpo with --device cuda, end to end on the tiny models; wall times printed. */
@Tag("gpu")
class CudaCommandsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The tiny fixture: qwen-omni's test resource on the class path (the GPU runner's), else beside the module (Maven's). */
    static Path tiny() {
        try {
            java.net.URL cfg = CudaCommandsTest.class.getResource("/tiny/model/config.json");
            return cfg != null ? Path.of(cfg.toURI()).getParent().getParent() : ForwardCommandTest.TINY;
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void gpu() {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
    }

    /** Runs the command, asserts exit 0, returns stdout + stderr (also printed, with the wall time). */
    private static String run(String what, List<String> args) {
        PrintStream out = System.out, err = System.err;
        var captured = new ByteArrayOutputStream();
        long start = System.nanoTime();
        int code;
        try {
            System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            code = Main.run(args.toArray(String[]::new));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        System.out.printf(java.util.Locale.ROOT, "%s on CUDA: %.1f s wall%n%s%n", what, (System.nanoTime() - start) / 1e9, log);
        assertEquals(0, code, log);
        return log;
    }

    private static List<JsonNode> metrics(Path file) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) out.add(JSON.readTree(line));
        return out;
    }

    /** 30 steps at lr 1e-2 (bf16 compute: 2e-2 spikes); on the CPU with --bf16 the same run falls 7.25 → 0.34. */
    @Test
    void sftOnCudaDrivesTheLossDownByNinetyPercent(@TempDir Path dir) throws Exception {
        gpu();
        Path tiny = tiny(), synth = dir.resolve("synth"), out = dir.resolve("sft");
        run("data synth", List.of("data", "synth", "--out", synth.toString(), "--n", "2", "--seed", "3"));
        SftCommandTest.shorten(synth.resolve("data.json"));
        String log = run("omni sft", List.of("sft", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--data", synth.resolve("data.json").toString(), "--output_dir", out.toString(), "--max_steps", "30", "--per_device_train_batch_size", "1",
                "--gradient_accumulation_steps", "2", "--learning_rate", "1e-2", "--warmup_steps", "1", "--lr_scheduler_type", "linear",
                "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--save_steps", "10", "--target_modules",
                "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head", "--logging_steps", "1", "--seed", "5", "--optim", "paged_adamw_8bit",
                "--device", "cuda"));
        assertTrue(log.contains("bytes of optimizer state in CUDA managed memory"), log);
        assertTrue(log.contains("peak device memory on cuda:0"), log);
        List<JsonNode> m = metrics(out.resolve("metrics.jsonl"));
        assertEquals(30, m.size());
        double first = m.getFirst().get("loss").asDouble(), last = m.getLast().get("loss").asDouble();
        System.out.println("sft on CUDA losses: " + m.stream().map(j -> j.get("loss").asText()).toList());
        assertTrue(last < 0.1 * first, "the loss falls by 90%: " + first + " -> " + last);
        assertTrue(Files.isRegularFile(out.resolve("adapter_model.safetensors")) && Files.isRegularFile(out.resolve("checkpoint-30/optimizer.safetensors")));
    }

    @Test
    void oneRestIterationOnCuda(@TempDir Path dir) throws Exception {
        gpu();
        Path model = DemoModel.write(dir.resolve("model"), DemoModel.Sizes.demo(), 5), data = SynthTask.generate(dir.resolve("synth"), 4, 9);
        Path out = dir.resolve("rest");
        String table = run("omni rest (1 iteration)", List.of("rest", "--data_path", data.toString(), "--base_model", model.toString(),
                "--output_base_dir", out.toString(), "--num_iterations", "1", "--num_samples", "2", "--max_tokens", "8", "--prompt", "rest-sft",
                "--lora_r", "4", "--lora_alpha", "8", "--device", "cuda"));
        assertTrue(table.contains("iter"), table);
        assertEquals(4, Files.readAllLines(out.resolve("iteration_1/generations/generations.jsonl")).size(), "one record per problem");
        for (JsonNode j : metrics(out.resolve("metrics.jsonl")))          // the wall time of each phase, for the log
            System.out.printf(java.util.Locale.ROOT, "omni rest on cuda: iteration %d %s %.2f s%n", j.get("iteration").asInt(), j.get("phase").asText(), j.get("seconds").asDouble());
    }

    @Test
    void grpoStepsOnCuda(@TempDir Path dir) throws Exception {
        gpu();
        Path tiny = tiny(), synth = dir.resolve("synth"), out = dir.resolve("grpo");
        run("data synth", List.of("data", "synth", "--out", synth.toString(), "--n", "4", "--seed", "3"));
        run("omni grpo (2 steps)", List.of("grpo", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--train_data_path", synth.resolve("data.json").toString(), "--output_dir", out.toString(), "--max_steps", "2",
                "--num_generations", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--max_completion_length", "3",
                "--beta", "0.1", "--learning_rate", "5e-2", "--warmup_ratio", "0", "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0",
                "--temperature", "1.0", "--reward_funcs", "strict,format", "--reward_weights", "1,0.5", "--save_steps", "1", "--save_total_limit", "0",
                "--seed", "7", "--device", "cuda"));
        List<JsonNode> m = metrics(out.resolve("metrics.jsonl"));
        assertEquals(2, m.size());
        for (JsonNode j : m) assertTrue(Double.isFinite(j.get("loss").asDouble()) && Double.isFinite(j.get("grad_norm").asDouble()), j.toString());
        assertEquals(0.0, m.getFirst().get("kl").asDouble(), 1e-6, "KL 0 at step 1 (the adapter starts as the identity)");
        for (JsonNode j : m)                                                 // generation and training time per step, for the log
            System.out.printf(java.util.Locale.ROOT, "omni grpo on cuda: step %d generation %.2f s, training %.2f s%n", j.get("step").asInt(),
                    j.get("generation_s").asDouble(), j.get("train_s").asDouble());
    }
}

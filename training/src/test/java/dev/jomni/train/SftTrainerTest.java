package dev.jomni.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SftData;
import dev.jomni.train.data.SynthTask;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The trainer on the tiny fixture model: accumulation normalised over tokens, labels on the response only, a NaN stops the run. */
class SftTrainerTest {
    static final Path TINY = Path.of("../qwen-omni/src/test/resources/tiny");

    /** Two synthetic records with short responses of different lengths (so a mean of micro-batch means would differ). */
    static SftData data(Path dir, Thinker thinker) throws Exception { return data(dir, thinker, TINY); }

    /** {@link #data(Path, Thinker)} with the tiny fixture at {@code tiny} (its tokenizer and preprocessor config). */
    static SftData data(Path dir, Thinker thinker, Path tiny) throws Exception {
        Path file = SynthTask.generate(dir, 2, 3);
        var json = new ObjectMapper();
        var records = (ArrayNode) json.readTree(file.toFile());
        for (int i = 0; i < records.size(); i++) {
            var o = (ObjectNode) records.get(i);
            o.put("question", "<sound>\n" + String.join("\n", java.util.Arrays.stream(o.get("question").asText().split("\n")).filter(l -> l.startsWith("(")).toList()));
            o.put("response", (i == 0 ? "" : "<think>\nI count them.\n</think>\n\n") + "ANSWER: " + o.get("answer").asText());
        }
        json.writeValue(file.toFile(), records);
        ChatEncoder enc = ChatEncoder.load(tiny.resolve("tokenizer"), thinker.config.audio().nWindow());
        LogMel mel = LogMel.of(PreprocessorConfig.load(tiny.resolve("model"), thinker.config.audio()));
        return new SftData(Dataset.load(file), PromptPreset.byId("rest-sft"), enc, mel, 4096, false, System.err::println);
    }

    private static SftTrainer.Config config(Path out, int batch, int accumulation) {
        return new SftTrainer.Config(out, 1, 1, batch, accumulation, 1e-3, "constant", 0, 0, 0, 1.0, 0, 0, 1, 7, "adamw_torch");
    }

    @Test
    void labelsCoverTheResponseAndItsEndOnly(@TempDir Path dir) throws Exception {
        Thinker thinker = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
        SftData d = data(dir.resolve("synth"), thinker);
        SftData.Batch b = d.batch(new int[] {0, 1});
        long[] ids = b.inputIds().toLongArray(), labels = b.labels().toLongArray(), mask = b.attentionMask().toLongArray();
        int t = b.inputIds().size(1);
        ChatEncoder enc = ChatEncoder.load(TINY.resolve("tokenizer"), thinker.config.audio().nWindow());
        for (int r = 0; r < 2; r++) {
            var sb = new StringBuilder();
            int first = -1;
            for (int j = 0; j < t; j++) {
                int at = r * t + j;
                if (mask[at] == 0) assertEquals(-100, labels[at], "padding is not learned");
                if (labels[at] != -100) {
                    if (first < 0) first = j;
                    assertEquals(ids[at], labels[at]);
                    sb.append(enc.tokenizer().decode(new int[] {(int) ids[at]}));
                } else if (first >= 0) assertEquals(0, mask[at], "once the response starts, only padding is unlabelled");
            }
            assertEquals(d.item(r).response() + "<|im_end|>\n", sb.toString(), "row " + r + " learns exactly the response, <|im_end|> and \\n");
            // the token before the first label is the end of "<|im_start|>assistant\n"
            assertEquals("\n", enc.tokenizer().decode(new int[] {(int) ids[r * t + first - 1]}));
        }
    }

    @Test
    void accumulationNormalisesOverTheStepsTokens(@TempDir Path dir) throws Exception {
        double[] loss = new double[2], norm = new double[2];
        for (int k = 0; k < 2; k++) {
            Thinker thinker = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
            SftData d = data(dir.resolve("synth" + k), thinker);
            var adapter = LoraAdapter.create(thinker, new LoraAdapter.Spec(4, 8, 0, false, List.of("q_proj", "v_proj"), null), 1);
            // B non-zero, so the gradients of A are too
            try (var g = Autograd.noGrad()) {
                var gen = new dev.jomni.tensor.Generator(9);
                for (Tensor p : adapter.parameters()) p.assign(Tensor.randn(gen, DType.F32, p.shape()).mul(0.05));
            }
            Path out = dir.resolve("run" + k);
            new SftTrainer(thinker, adapter, d, k == 0 ? config(out, 2, 1) : config(out, 1, 2), new PrintStream(new ByteArrayOutputStream()), false).train(null);
            var m = new ObjectMapper().readTree(Files.readAllLines(out.resolve(SftTrainer.METRICS)).getFirst());
            loss[k] = m.get("loss").asDouble();
            norm[k] = m.get("grad_norm").asDouble();
        }
        // One batch of 2 (padded) against 2 micro-batches of 1: the same token mean, up to padding's rounding.
        assertEquals(loss[0], loss[1], 1e-5 * loss[0], "loss");
        assertEquals(norm[0], norm[1], 1e-4 * norm[0], "grad norm");
    }

    @Test
    void aNonFiniteLossStopsTheRunNamingStepAndSamples(@TempDir Path dir) throws Exception {
        Thinker thinker = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
        SftData d = data(dir.resolve("synth"), thinker);
        var adapter = LoraAdapter.create(thinker, new LoraAdapter.Spec(4, 8, 0, false, List.of("q_proj"), null), 1);
        try (var g = Autograd.noGrad()) {
            Tensor b = adapter.parameters().get(1);
            b.assign(Tensor.full(DType.F32, Double.NaN, b.shape()));
        }
        Path out = dir.resolve("run");
        var e = assertThrows(SftTrainer.NonFiniteLossException.class,
                () -> new SftTrainer(thinker, adapter, d, config(out, 2, 1), new PrintStream(new ByteArrayOutputStream()), false).train(null));
        assertTrue(e.getMessage().startsWith("step 1: the loss is NaN on the batch of samples [synth-0000"), e.getMessage());
        assertFalse(Files.exists(out.resolve("checkpoint-1")), "no checkpoint of the bad step");
    }

    @Test
    void theLogSaysWhenLoraDropoutCannotReachTheStackedExperts(@TempDir Path dir) throws Exception {
        Thinker thinker = Thinker.load(TINY.resolve("model"), DType.F32, Device.cpu());
        SftData d = data(dir.resolve("synth"), thinker);
        var adapter = LoraAdapter.create(thinker, new LoraAdapter.Spec(4, 8, 0.1, false, List.of("q_proj", "gate_proj", "up_proj", "down_proj"), null), 1);
        var log = new ByteArrayOutputStream();
        new SftTrainer(thinker, adapter, d, config(dir.resolve("run"), 2, 1), new PrintStream(log, true), false).train(null);
        String text = log.toString();
        int linears = adapter.matches().entrySet().stream().filter(e -> !e.getKey().contains("experts")).mapToInt(java.util.Map.Entry::getValue).sum();
        assertEquals(4, adapter.matches().entrySet().stream().filter(e -> e.getKey().contains("experts")).mapToInt(java.util.Map.Entry::getValue).sum());
        assertTrue(text.contains("note: lora_dropout 0.1 applies to the " + linears + " Linear target(s) only; the 4 stacked expert parameter(s)")
                && text.contains("train without dropout"), text);
    }
}


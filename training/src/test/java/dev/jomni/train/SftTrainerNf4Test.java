package dev.jomni.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SftData;
import dev.jomni.train.data.SynthTask;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The trainer over a QLoRA base: the tiny config with I = 64, so the attention Linears and both expert stacks are NF4. */
class SftTrainerNf4Test {
    static final Path TINY = SftTrainerTest.TINY;

    /** The tiny model's folder with moe_intermediate_size 64 and random bf16 weights (the experts stacked). */
    static Path aligned(Path to) throws Exception {
        Files.createDirectories(to);
        var json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(TINY.resolve("model/config.json").toFile());
        ((ObjectNode) config.path("thinker_config").path("text_config")).put("moe_intermediate_size", 64);
        json.writeValue(to.resolve("config.json").toFile(), config);
        Files.copy(TINY.resolve("model/preprocessor_config.json"), to.resolve("preprocessor_config.json"));
        var gen = new Generator(65);
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        new Thinker(ThinkerConfig.load(to)).parameters().forEach((n, p) -> {
            Tensor t = Tensor.randn(gen, DType.F32, p.shape()).mul(p.shape().length == 1 ? 0.1 : 0.08);
            tensors.put("thinker." + n, TensorData.of((p.shape().length == 1 ? t.add(1) : t).to(DType.BF16)));
        });
        SafeTensors.write(to.resolve("model.safetensors"), tensors, Map.of());
        return to;
    }

    @Test
    void loraOverAnNf4BaseTrains(@TempDir Path dir) throws Exception {
        Thinker thinker = Thinker.load(aligned(dir.resolve("model")), DType.F32, Device.cpu(), true);
        for (String p : List.of("model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.experts.gate_up_proj", "model.layers.1.mlp.experts.down_proj"))
            assertTrue(thinker.parameters().get(p).isNf4(), p);
        Path records = SynthTask.generate(dir.resolve("synth"), 2, 3);
        ChatEncoder enc = ChatEncoder.load(TINY.resolve("tokenizer"), thinker.config.audio().nWindow());
        LogMel mel = LogMel.of(PreprocessorConfig.load(TINY.resolve("model"), thinker.config.audio()));
        var data = new SftData(Dataset.load(records), PromptPreset.byId("rest-sft"), enc, mel, 4096, false, System.err::println);
        var adapter = LoraAdapter.create(thinker, new LoraAdapter.Spec(4, 8, 0, false, List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), null), 1);
        Path out = dir.resolve("run");
        var config = new SftTrainer.Config(out, 1, 4, 2, 1, 5e-3, "constant", 0, 0, 0, 1.0, 0, 0, 1, 7, "adamw_torch");
        new SftTrainer(thinker, adapter, data, config, new PrintStream(new ByteArrayOutputStream()), false).train(null);
        List<String> lines = Files.readAllLines(out.resolve(SftTrainer.METRICS));
        assertEquals(4, lines.size());
        var mapper = new ObjectMapper();
        JsonNode first = mapper.readTree(lines.getFirst()), last = mapper.readTree(lines.getLast());
        assertTrue(first.get("grad_norm").asDouble() > 0, "the adapter gets gradients through the NF4 base");
        assertTrue(last.get("loss").asDouble() < 0.9 * first.get("loss").asDouble(), "the loss falls: " + first + " → " + last);
    }

}

package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ThinkerLoadTest {
    /** The checkpoint's keys, the per-expert ones as transformers 5 stacks them: experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I]. */
    @Test
    void moduleTreeNamesAreTheCheckpointKeysWithTheExpertsStacked() throws Exception {
        var thinker = new Thinker(ThinkerConfig.load(ThinkerParityTest.tiny("model")));
        Map<String, String> expected = new TreeMap<>();
        Map<String, Integer> experts = new TreeMap<>();
        for (JsonNode pair : new ObjectMapper().readTree(ThinkerParityTest.tiny("checkpoint_keys.json").toFile())) {
            String name = pair.get(0).asText();
            var m = java.util.regex.Pattern.compile("(.*\\.mlp\\.experts)\\.\\d+\\.(gate|up|down)_proj\\.weight").matcher(name);
            if (m.matches()) experts.merge(m.group(1), 1, Integer::sum);
            else if (!name.startsWith("thinker.visual.")) expected.put(name, pair.get(1).toString().replace(" ", ""));
        }
        for (var e : experts.entrySet()) {                                  // the tiny model: 8 experts, H 64, I 32
            assertEquals(3 * 8, e.getValue(), e.getKey());
            expected.put(e.getKey() + ".gate_up_proj", "[8,64,64]");
            expected.put(e.getKey() + ".down_proj", "[8,64,32]");
        }
        Map<String, String> ours = new TreeMap<>();
        thinker.parameters().forEach((n, p) -> ours.put("thinker." + n, Arrays.toString(p.shape()).replace(" ", "")));
        assertEquals(expected, ours);
    }

    @Test
    void stackedExpertsHoldEachExpertsTensorsInOrder() throws Exception {
        Thinker thinker = Thinker.load(ThinkerParityTest.tiny("model"), DType.F32, Device.cpu());
        var moe = (SparseMoe) thinker.modules().get("model.layers.1.mlp");
        try (var st = SafeTensors.open(ThinkerParityTest.tiny("model"))) {
            String p = "thinker.model.layers.1.mlp.experts.5.";
            Tensor gateUp = moe.experts.gateUpProj.value().narrow(0, 5, 1).squeeze(0), down = moe.experts.downProj.value().narrow(0, 5, 1).squeeze(0);
            assertArrayEquals(st.get(p + "gate_proj.weight").toFloats(), gateUp.narrow(0, 0, 32).toFloatArray());
            assertArrayEquals(st.get(p + "up_proj.weight").toFloats(), gateUp.narrow(0, 32, 32).toFloatArray());
            assertArrayEquals(st.get(p + "down_proj.weight").toFloats(), down.toFloatArray());
        }
    }

    @Test
    void missingMisShapedAndExtraExpertsAreNamed(@TempDir Path dir) throws Exception {
        Path model = ThinkerParityTest.tiny("model");
        Files.copy(model.resolve("config.json"), dir.resolve("config.json"));
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        String e = "thinker.model.layers.0.mlp.experts.";
        try (var st = SafeTensors.open(model)) {
            for (String n : st.names()) {
                if (n.equals(e + "3.up_proj.weight")) continue;                                  // missing
                var t = st.get(n);
                if (n.equals(e + "6.down_proj.weight")) tensors.put(n, TensorData.ofFloats(new float[64 * 31], 64, 31));   // mis-shaped
                else tensors.put(n, TensorData.ofBytes(t.dtype(), t.shape(), t.data().toByteArray()));
            }
        }
        tensors.put(e + "8.gate_proj.weight", TensorData.ofFloats(new float[32 * 64], 32, 64));   // beyond E = 8
        SafeTensors.write(dir.resolve("model.safetensors"), tensors, Map.of());
        var ex = assertThrows(IllegalArgumentException.class, () -> Thinker.load(dir, DType.F32, Device.cpu()));
        String m = ex.getMessage();
        assertTrue(m.contains("3 problems"), m);
        assertTrue(m.contains("missing " + e + "3.up_proj.weight [32, 64] (expert 3 of 8, stacked into " + e + "gate_up_proj)"), m);
        assertTrue(m.contains(e + "6.down_proj.weight: expected [64, 32], found [64, 31] in model.safetensors"), m);
        assertTrue(m.contains("unexpected " + e + "8.gate_proj.weight [32, 64] in model.safetensors"), m);
    }

    @Test
    void loadReportsEveryMissingUnexpectedAndMisShapedTensorWithItsFile(@TempDir Path dir) throws Exception {
        Path model = ThinkerParityTest.tiny("model");
        Files.copy(model.resolve("config.json"), dir.resolve("config.json"));
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        try (var st = SafeTensors.open(model)) {
            for (String n : st.names()) {
                if (n.equals("thinker.model.norm.weight")) continue;                        // missing
                var t = st.get(n);
                if (n.equals("thinker.lm_head.weight"))                                         // mis-shaped
                    tensors.put(n, TensorData.ofFloats(new float[12], 3, 4));
                else tensors.put(n, TensorData.ofBytes(t.dtype(), t.shape(), t.data().toByteArray()));
            }
        }
        tensors.put("thinker.model.extra.weight", TensorData.ofFloats(new float[2], 2));       // unexpected
        tensors.put("talker.anything", TensorData.ofFloats(new float[2], 2));                  // skipped
        SafeTensors.write(dir.resolve("model.safetensors"), tensors, Map.of());
        var e = assertThrows(IllegalArgumentException.class, () -> Thinker.load(dir, DType.F32, Device.cpu()));
        String m = e.getMessage();
        assertTrue(m.contains("3 problems"), m);
        assertTrue(m.contains("missing thinker.model.norm.weight [64]"), m);
        assertTrue(m.contains("thinker.lm_head.weight: expected [1024, 64], found [3, 4] in model.safetensors"), m);
        assertTrue(m.contains("unexpected thinker.model.extra.weight [2] in model.safetensors"), m);
    }
}

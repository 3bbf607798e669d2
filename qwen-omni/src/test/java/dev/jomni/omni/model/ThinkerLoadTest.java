package dev.jomni.omni.model;

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
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ThinkerLoadTest {
    @Test
    void moduleTreeNamesAreTheCheckpointKeys() throws Exception {
        var thinker = new Thinker(ThinkerConfig.load(ThinkerParityTest.tiny("model")));
        Map<String, String> expected = new TreeMap<>();
        for (JsonNode pair : new ObjectMapper().readTree(ThinkerParityTest.tiny("checkpoint_keys.json").toFile())) {
            String name = pair.get(0).asText();
            if (!name.startsWith("thinker.visual.")) expected.put(name, pair.get(1).toString().replace(" ", ""));
        }
        Map<String, String> ours = new TreeMap<>();
        thinker.parameters().forEach((n, p) -> ours.put("thinker." + n, Arrays.toString(p.shape()).replace(" ", "")));
        assertEquals(expected, ours);
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

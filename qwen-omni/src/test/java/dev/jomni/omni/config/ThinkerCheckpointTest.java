package dev.jomni.omni.config;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ThinkerCheckpointTest {
    @TempDir Path dir;

    @Test
    void expectedShapesAreTheFixturesThinkerTensorsExactly() throws Exception {
        var config = ThinkerConfig.load(ThinkerConfigTest.fixture("config.json"));
        var listed = new LinkedHashMap<String, long[]>();
        for (var k : new ObjectMapper().readTree(ThinkerConfigTest.tiny("checkpoint_keys.json").toFile())) {
            if (k.get(0).asText().startsWith("thinker.visual.")) continue;
            var shape = new long[k.get(1).size()];
            for (int i = 0; i < shape.length; i++) shape[i] = k.get(1).get(i).asLong();
            listed.put(k.get(0).asText(), shape);
        }
        var expected = ThinkerCheckpoint.expectedShapes(config);
        assertEquals(listed.keySet(), expected.keySet());
        for (var e : listed.entrySet()) assertArrayEquals(e.getValue(), expected.get(e.getKey()), e.getKey());
        try (var st = ThinkerCheckpoint.open(ThinkerConfigTest.fixture("config.json").getParent(), config)) {
            assertTrue(st.names().stream().anyMatch(n -> n.startsWith("thinker.visual.")),
                    "vision tensors are skipped, not refused");
        }
    }

    @Test
    void reportsMissingUnexpectedAndMisshapedTensorsTogether() {
        var config = ThinkerConfig.load(ThinkerConfigTest.fixture("config.json"));
        var tensors = new LinkedHashMap<String, TensorData>();
        try (var st = SafeTensors.open(ThinkerConfigTest.fixture("config.json").getParent())) {
            for (var t : st.tensors()) tensors.put(t.name(), TensorData.ofBytes(t.dtype(), t.shape(), t.data().toByteArray()));
        }
        tensors.remove("thinker.model.layers.1.mlp.experts.7.up_proj.weight");
        tensors.put("thinker.model.layers.0.self_attn.k_proj.weight", TensorData.ofBf16(new float[64 * 64], 64, 64));
        tensors.put("thinker.model.layers.0.mlp.shared_expert.up_proj.weight", TensorData.ofBf16(new float[4], 2, 2));
        tensors.put("talker.model.whatever.weight", TensorData.ofBf16(new float[4], 4));
        SafeTensors.writeSharded(dir, tensors, Map.of("format", "pt"), 400_000);
        var e = assertThrows(SafeTensors.SafeTensorsException.class, () -> ThinkerCheckpoint.open(dir, config));
        String msg = e.getMessage();
        assertTrue(msg.contains("3 tensor problem(s)"), msg);
        assertTrue(msg.contains("thinker.model.layers.1.mlp.experts.7.up_proj.weight: missing"), msg);
        assertTrue(msg.matches("(?s).*thinker\\.model\\.layers\\.0\\.self_attn\\.k_proj\\.weight: expected \\[32, 64], found \\[64, 64] "
                + "in model-\\d{5}-of-\\d{5}\\.safetensors.*"), msg);
        assertTrue(msg.matches("(?s).*thinker\\.model\\.layers\\.0\\.mlp\\.shared_expert\\.up_proj\\.weight: unexpected tensor in model-\\d{5}.*"), msg);
        assertFalse(msg.contains("talker."), "talker tensors are skipped: " + msg);
    }
}

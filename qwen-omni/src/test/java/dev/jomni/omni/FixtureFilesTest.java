package dev.jomni.omni;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.io.Npy;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.StoredDType;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The fixture's checkpoint and arrays read through nn.io, checked against the fixture's own listings. */
class FixtureFilesTest {
    static Path tiny(String name) {
        try {
            return Path.of(FixtureFilesTest.class.getResource("/tiny/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void checkpointHoldsTheListedTensorsInBf16() throws Exception {
        var keys = new ObjectMapper().readTree(tiny("checkpoint_keys.json").toFile());
        var expected = new LinkedHashMap<String, long[]>();
        for (var k : keys) {
            var shape = new long[k.get(1).size()];
            for (int i = 0; i < shape.length; i++) shape[i] = k.get(1).get(i).asLong();
            expected.put(k.get(0).asText(), shape);
        }
        assertEquals(141, expected.size());
        try (var st = SafeTensors.open(tiny("model"))) {
            assertEquals(expected.keySet(), new java.util.HashSet<>(st.names()));
            for (Map.Entry<String, long[]> e : expected.entrySet()) {
                var t = st.get(e.getKey());
                assertArrayEquals(e.getValue(), t.shape(), e.getKey());
                assertEquals(StoredDType.BF16, t.dtype(), e.getKey());
            }
            // norms were initialised as 1 + 0.1·N(0, 1): a mean near 1 shows bf16 decodes to the right values
            float[] norm = st.get("thinker.model.norm.weight").toFloats();
            double mean = 0;
            for (float v : norm) mean += v / norm.length;
            assertEquals(1.0, mean, 0.06);
        }
        try (var grads = SafeTensors.open(tiny("grads.safetensors"))) {
            assertArrayEquals(new long[] {8, 64, 64}, grads.get("model.layers.0.mlp.experts.gate_up_proj").shape());
            assertEquals(StoredDType.F32, grads.get("model.layers.0.mlp.experts.gate_up_proj").dtype());
        }
    }

    @Test
    void readsEveryFixtureArray() {
        Object[][] cases = {
            {"input_features.npy", StoredDType.F32, new long[] {2, 128, 260}},
            {"feature_attention_mask.npy", StoredDType.I64, new long[] {2, 260}},
            {"input_ids.npy", StoredDType.I64, new long[] {2, 58}},
            {"attention_mask.npy", StoredDType.I64, new long[] {2, 58}},
            {"labels.npy", StoredDType.I64, new long[] {2, 58}},
            {"position_ids.npy", StoredDType.F32, new long[] {3, 2, 58}},
            {"audio_embeds.npy", StoredDType.F32, new long[] {51, 64}},
            {"hidden_states.npy", StoredDType.F32, new long[] {3, 2, 58, 64}},
            {"logits.npy", StoredDType.F32, new long[] {2, 58, 1024}},
        };
        for (Object[] c : cases) {
            var t = Npy.read(tiny((String) c[0]));
            assertEquals(c[1], t.dtype(), (String) c[0]);
            assertArrayEquals((long[]) c[2], t.shape(), (String) c[0]);
        }
        long[] ids = Npy.read(tiny("input_ids.npy")).toLongs();
        assertEquals(1005, ids[0], "rows start with the im_start stand-in");
        assertEquals(1005, ids[58]);
        long[] mask = Npy.read(tiny("feature_attention_mask.npy")).toLongs();
        assertEquals(130 + 260, java.util.Arrays.stream(mask).sum());
    }
}

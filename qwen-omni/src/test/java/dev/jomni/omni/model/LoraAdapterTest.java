package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.npy;
import static dev.jomni.omni.model.ThinkerParityTest.relError;
import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fixture's PEFT 0.21 adapter (fused experts, rank_pattern) against what PEFT computed with it. */
class LoraAdapterTest {
    static Thinker thinker;
    static LoraAdapter adapter;
    static Thinker.Output out;

    @BeforeAll
    static void forward() {
        thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        adapter = LoraAdapter.apply(tiny("lora/adapter"), thinker);
        for (Tensor t : adapter.parameters()) t.requiresGrad(true);       // the base stays frozen
        out = thinker.forward(npy("input_ids.npy"), npy("attention_mask.npy"),
                Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy")), null);
    }

    @Test
    void logitsWithTheAdapterMatchPeft() {
        double e = relError(out.logits().toFloatArray(), npy("lora/logits_lora.npy").toFloatArray());
        assertTrue(e < 1e-4, "logits relative error " + e);
        double away = relError(out.logits().toFloatArray(), npy("logits.npy").toFloatArray());
        assertTrue(away > 0.1, "the adapter moves the logits (by " + away + ")");
    }

    @Test
    void lossAndGradientsOfEveryLoraTensorMatchPeft() {
        Tensor loss = Thinker.loss(out.logits(), npy("labels.npy"));
        double ref = 7.413536071777344;                                   // lora_reference.json
        assertEquals(ref, loss.item(), ref * 1e-5);
        loss.backward();
        for (var p : thinker.parameters().values()) assertEquals(null, p.value().grad(), p.name() + " is frozen");
        Map<String, Tensor> grads = adapter.gradients();
        int compared = 0;
        try (var want = SafeTensors.open(tiny("lora/lora_grads.safetensors"))) {
            assertEquals(new TreeMap<>(grads).keySet(), want.names(), "gradient names are the adapter's");
            for (String name : want.names()) {
                double e = relError(grads.get(name).toFloatArray(), want.get(name).toFloats());
                assertTrue(e < 1e-3, name + ": gradient relative error " + e);
                compared++;
            }
        }
        assertEquals(36, compared);
    }

    @Test
    void saveWritesBackTheSameFilesPeftWrote(@TempDir Path dir) throws Exception {
        adapter.save(dir);
        var json = new ObjectMapper();
        assertEquals(json.readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile()), json.readTree(dir.resolve(LoraAdapter.CONFIG).toFile()));
        try (var want = SafeTensors.open(tiny("lora/adapter").resolve(LoraAdapter.WEIGHTS)); var got = SafeTensors.open(dir.resolve(LoraAdapter.WEIGHTS))) {
            assertEquals(want.names(), got.names());
            for (String n : want.names()) {
                assertArrayEquals(want.get(n).shape(), got.get(n).shape(), n);
                assertArrayEquals(want.get(n).toFloats(), got.get(n).toFloats(), n);
            }
        }
    }

    @Test
    void olderPerExpertLayoutGivesTheSameLogits(@TempDir Path dir) throws Exception {
        // The fused tensors rewritten as peft 0.12 with transformers 4 named them: one Linear per expert.
        Map<String, TensorData> perExpert = new TreeMap<>();
        var config = (ObjectNode) new ObjectMapper().readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile());
        config.putArray("target_modules").add("q_proj").add("k_proj").add("v_proj").add("o_proj").add("gate_proj").add("up_proj").add("down_proj");
        config.remove("target_parameters");
        config.putObject("rank_pattern").put(".*\\.(gate|up)_proj", 16);
        config.putObject("alpha_pattern").put(".*\\.(gate|up)_proj", 32);
        int experts = thinker.config.text().numExperts();
        try (var st = SafeTensors.open(tiny("lora/adapter").resolve(LoraAdapter.WEIGHTS))) {
            for (String n : st.names()) {
                Tensor t = st.get(n).data().toTensor();
                String fused = ".mlp.experts.base_layer.", down = ".mlp.experts.lora_";
                if (!n.contains(fused) && !n.contains(down)) { perExpert.put(n, TensorData.of(t)); continue; }
                boolean gateUp = n.contains(fused);
                String layer = n.substring(0, n.indexOf(".mlp.experts")) + ".mlp.experts.";
                int r = t.size(n.contains("lora_A") ? 0 : 1) / experts;
                for (int e = 0; e < experts; e++) {
                    if (n.contains("lora_A")) {
                        Tensor a = t.narrow(0, (long) e * r, r);
                        for (String proj : gateUp ? new String[] {"gate_proj", "up_proj"} : new String[] {"down_proj"})
                            perExpert.put(layer + e + "." + proj + ".lora_A.weight", TensorData.of(a));
                    } else {
                        Tensor b = t.reshape(t.size(0), r, experts).narrow(2, e, 1).squeeze(2);   // [out, r]
                        int half = t.size(0) / 2;
                        if (gateUp) {
                            perExpert.put(layer + e + ".gate_proj.lora_B.weight", TensorData.of(b.narrow(0, 0, half)));
                            perExpert.put(layer + e + ".up_proj.lora_B.weight", TensorData.of(b.narrow(0, half, half)));
                        } else perExpert.put(layer + e + ".down_proj.lora_B.weight", TensorData.of(b));
                    }
                }
            }
        }
        Files.writeString(dir.resolve(LoraAdapter.CONFIG), config.toString());
        SafeTensors.write(dir.resolve(LoraAdapter.WEIGHTS), perExpert, Map.of("format", "pt"));
        Thinker other = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        LoraAdapter converted = LoraAdapter.apply(dir, other);
        Tensor logits = other.forward(npy("input_ids.npy"), npy("attention_mask.npy"),
                Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy")), null).logits();
        double e = relError(logits.toFloatArray(), npy("lora/logits_lora.npy").toFloatArray());
        assertTrue(e < 1e-4, "logits relative error " + e);

        // Saved, it is PEFT 0.21's layout: gate and up stacked at rank 16 + 16, the config naming target_parameters.
        Path saved = dir.resolve("saved");
        converted.save(saved);
        var savedConfig = new ObjectMapper().readTree(saved.resolve(LoraAdapter.CONFIG).toFile());
        assertEquals("[\"gate_up_proj\",\"down_proj\"]", savedConfig.get("target_parameters").toString());
        assertEquals(32, savedConfig.get("rank_pattern").get("thinker.model.layers.0.mlp.experts.gate_up_proj").asInt());
        try (var st = SafeTensors.open(saved.resolve(LoraAdapter.WEIGHTS))) {
            String fused = "base_model.model.thinker.model.layers.1.mlp.experts.base_layer.";
            assertArrayEquals(new long[] {experts * 32, 64}, st.get(fused + "lora_A.weight").shape());
            assertArrayEquals(new long[] {64, 32 * experts}, st.get(fused + "lora_B.weight").shape());
            assertTrue(st.names().stream().noneMatch(n -> n.matches(".*experts\\.\\d+\\..*")), "no per-expert names left");
        }
        Thinker again = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        LoraAdapter.apply(saved, again);
        double same = relError(again.forward(npy("input_ids.npy"), npy("attention_mask.npy"),
                Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy")), null).logits().toFloatArray(), logits.toFloatArray());
        assertEquals(0, same, 1e-6, "the converted adapter, saved and applied again");
    }

    @Test
    void detachLeavesTheBaseAndAttachPutsBackTheLinearAndStackedExpertUpdates() {
        Thinker other = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        Tensor ids = npy("input_ids.npy"), mask = npy("attention_mask.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        LoraAdapter live = LoraAdapter.apply(tiny("lora/adapter"), other);
        float[] adapted = other.forward(ids, mask, audio, null).logits().toFloatArray();
        assertTrue(live.isAttached());

        live.detach();
        assertFalse(live.isAttached());
        assertTrue(other.modules().values().stream().noneMatch(m -> m instanceof dev.jomni.nn.Linear l && l.lora() != null
                || m instanceof SparseMoe.Experts x && (x.gateUpLora != null || x.downLora != null)), "detached from Linears and experts");
        assertEquals(0, relError(other.forward(ids, mask, audio, null).logits().toFloatArray(), npy("logits.npy").toFloatArray()), 1e-5,
                "detached, the thinker is the base model");
        live.detach();                                                    // idempotent

        live.attach();
        assertTrue(live.isAttached());
        assertArrayEquals(adapted, other.forward(ids, mask, audio, null).logits().toFloatArray(), "attached again, the same logits");
        assertEquals(new TreeMap<>(adapter.peftTensors()).keySet(), new TreeMap<>(live.peftTensors()).keySet());

        // A second adapter on the experts alone: attaching the first over it is refused (by the experts), and changes nothing.
        live.detach();
        LoraAdapter second = LoraAdapter.create(other, 2, 4, java.util.List.of("gate_proj", "up_proj"), 3);
        var e = assertThrows(IllegalStateException.class, live::attach);
        assertTrue(e.getMessage().contains("LoRA attach: thinker.model.layers.0.mlp.experts.gate_up_proj already carries another adapter's update"), e.getMessage());
        assertTrue(other.modules().values().stream().noneMatch(m -> m instanceof dev.jomni.nn.Linear l && l.lora() != null), "no Linear attached");
        assertTrue(second.isAttached());
        assertFalse(live.isAttached());
        second.detach();
        live.attach();
        assertArrayEquals(adapted, other.forward(ids, mask, audio, null).logits().toFloatArray(), "the first adapter, after the second");
    }

    @Test
    void malformedTensorsAreAllNamedWithTheirFile(@TempDir Path dir) throws Exception {
        Files.copy(tiny("lora/adapter").resolve(LoraAdapter.CONFIG), dir.resolve(LoraAdapter.CONFIG));
        Map<String, TensorData> tensors = new TreeMap<>();
        String q = "base_model.model.thinker.model.layers.0.self_attn.q_proj.", k = "base_model.model.thinker.model.layers.0.self_attn.k_proj.";
        String unknown = "base_model.model.thinker.model.layers.0.self_attn.nope.lora_A.weight";
        try (var st = SafeTensors.open(tiny("lora/adapter").resolve(LoraAdapter.WEIGHTS))) {
            for (String n : st.names()) if (!n.equals(k + "lora_B.weight")) tensors.put(n, TensorData.of(st.get(n).data().toTensor()));
        }
        tensors.put(q + "lora_A.weight", TensorData.ofFloats(new float[4 * 64], 4, 64));
        tensors.put(unknown, TensorData.ofFloats(new float[8 * 64], 8, 64));
        SafeTensors.write(dir.resolve(LoraAdapter.WEIGHTS), tensors, Map.of());
        Thinker other = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.apply(dir, other));
        String m = e.getMessage();
        assertTrue(m.contains(q + "lora_A.weight: expected [8, 64], found [4, 64] in adapter_model.safetensors"), m);
        assertTrue(m.contains(unknown + " in adapter_model.safetensors matches no target module"), m);
        assertTrue(m.contains("target thinker.model.layers.0.self_attn.k_proj has no lora_B tensor in adapter_model.safetensors"), m);
        assertTrue(other.modules().values().stream().noneMatch(mod -> mod instanceof dev.jomni.nn.Linear l && l.lora() != null
                || mod instanceof SparseMoe.Experts x && (x.gateUpLora != null || x.downLora != null)), "nothing stays attached");
    }

    @Test
    void missingWeightsFileIsNamed(@TempDir Path dir) throws Exception {
        Files.copy(tiny("lora/adapter").resolve(LoraAdapter.CONFIG), dir.resolve(LoraAdapter.CONFIG));
        var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.apply(dir, thinker));
        assertTrue(e.getMessage().contains(dir.resolve(LoraAdapter.WEIGHTS) + ": no such file"), e.getMessage());
        var none = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.apply(dir.resolve("absent"), thinker));
        assertTrue(none.getMessage().contains(LoraAdapter.CONFIG + ": no such file"), none.getMessage());
    }

    @Test
    void unsupportedVariantsAreRefusedNamingFileAndField(@TempDir Path dir) throws Exception {
        var json = new ObjectMapper();
        for (String field : new String[] {"use_dora", "lora_bias"}) {
            var config = (ObjectNode) json.readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile());
            config.put(field, true);
            Files.writeString(dir.resolve(LoraAdapter.CONFIG), config.toString());
            var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.apply(dir, thinker));
            assertEquals(dir.resolve(LoraAdapter.CONFIG) + ": " + field + "=true is not supported", e.getMessage());
        }
        var config = (ObjectNode) json.readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile());
        config.put("bias", "all");
        Files.writeString(dir.resolve(LoraAdapter.CONFIG), config.toString());
        var e = assertThrows(IllegalArgumentException.class, () -> LoraAdapter.apply(dir, thinker));
        assertTrue(e.getMessage().startsWith(dir.resolve(LoraAdapter.CONFIG) + ": bias=\"all\""), e.getMessage());
    }

    @Test
    void aSavedAdapterHasPeftsKeyNamesAndConfigFields(@TempDir Path dir) throws Exception {
        Thinker fresh = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        // The fixture adapter's settings: r 8, alpha 16, attention projections and the fused experts.
        LoraAdapter.create(fresh, 8, 16, java.util.List.of("q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), 3).save(dir);
        java.util.Set<String> mine, peft;
        try (var a = dev.jomni.nn.io.SafeTensors.open(dir.resolve(LoraAdapter.WEIGHTS));
             var b = dev.jomni.nn.io.SafeTensors.open(tiny("lora/adapter").resolve(LoraAdapter.WEIGHTS))) {
            mine = new java.util.TreeSet<>(a.names());
            peft = new java.util.TreeSet<>(b.names());
            for (String n : peft) assertEquals(java.util.Arrays.toString(b.get(n).shape()), java.util.Arrays.toString(a.get(n).shape()), n);
        }
        // PEFT's adapter also adapts the audio tower's q/k/v (suffix match); so does jomni's: the key sets are equal.
        assertEquals(peft, mine);
        var json = new ObjectMapper();
        var ours = json.readTree(dir.resolve(LoraAdapter.CONFIG).toFile());
        var theirs = json.readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile());
        for (var it = ours.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            assertTrue(theirs.has(f), "PEFT's adapter_config.json has no field " + f);
        }
        for (String f : java.util.List.of("r", "lora_alpha", "rank_pattern", "alpha_pattern", "target_parameters", "peft_type", "bias"))
            assertEquals(theirs.get(f), ours.get(f), f);
    }

    @Test
    void rsloraScalesByAlphaOverTheRootOfTheRank(@TempDir Path dir) throws Exception {
        var json = new ObjectMapper();
        var config = (ObjectNode) json.readTree(tiny("lora/adapter").resolve(LoraAdapter.CONFIG).toFile());
        config.put("use_rslora", true);
        Files.writeString(dir.resolve(LoraAdapter.CONFIG), config.toString());
        Files.copy(tiny("lora/adapter").resolve(LoraAdapter.WEIGHTS), dir.resolve(LoraAdapter.WEIGHTS));
        Thinker fresh = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        LoraAdapter.apply(dir, fresh);
        var q = (dev.jomni.nn.Linear) fresh.modules().get("model.layers.0.self_attn.q_proj");
        assertEquals(16 / Math.sqrt(8), q.lora().scaling(), 1e-12);          // r 8, alpha 16: 16/√8, not 16/8
    }

    @Test
    void targetsFollowPeftRulesAndAreCountedPerKind() {
        Thinker fresh = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        var byList = LoraAdapter.create(fresh, new LoraAdapter.Spec(4, 8, 0.05, false, java.util.List.of("q_proj", "v_proj"), null), 1);
        var counts = byList.matches();
        int layers = fresh.config.text().numHiddenLayers();
        assertEquals(layers, counts.get("model q_proj"));
        assertEquals(layers, counts.get("model v_proj"));
        assertTrue(counts.containsKey("audio_tower q_proj"), "a suffix matches the audio encoder's projections too, as in PEFT: " + counts);
        assertEquals(0.05, byList.dropout().p());
        assertEquals(0.05, byList.config().get("lora_dropout").asDouble());
        for (var e : fresh.modules().entrySet()) if (e.getValue() instanceof dev.jomni.nn.Linear l) l.lora(null);
        // A string is a full-match regex: only the text model's layer-0 q_proj.
        var byRegex = LoraAdapter.create(fresh, new LoraAdapter.Spec(4, 8, 0, true, null, "thinker\\.model\\.layers\\.0\\.self_attn\\.q_proj"), 1);
        assertEquals(java.util.Map.of("model q_proj", 1), byRegex.matches());
        var q = (dev.jomni.nn.Linear) fresh.modules().get("model.layers.0.self_attn.q_proj");
        assertEquals(8 / 2.0, q.lora().scaling(), 1e-12);                   // rsLoRA: 8/√4
        assertEquals(DType.F32, q.lora().a().dtype());
        var none = assertThrows(IllegalArgumentException.class,
                () -> LoraAdapter.create(fresh, new LoraAdapter.Spec(4, 8, 0, false, null, "nothing"), 1));
        assertTrue(none.getMessage().contains("regex 'nothing'"), none.getMessage());
    }

    @Test
    void dropoutMasksAreKeyedSoARecomputedForwardDrawsTheSame() {
        Thinker fresh = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        var created = LoraAdapter.create(fresh, new LoraAdapter.Spec(4, 8, 0.5, false, java.util.List.of("q_proj", "v_proj", "k_proj", "o_proj"), null), 1);
        Tensor ids = npy("input_ids.npy"), mask = npy("attention_mask.npy"), labels = npy("labels.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        // B starts at zero, so dropout cannot show in the output: make B non-zero first.
        try (var g = dev.jomni.tensor.Autograd.noGrad()) {
            var gen = new dev.jomni.tensor.Generator(2);
            for (Tensor t : created.parameters()) t.assign(Tensor.randn(gen, DType.F32, t.shape()).mul(0.1));
        }
        for (Tensor t : created.parameters()) t.requiresGrad(true);
        created.dropout().set(true, 42);
        float[] a = fresh.forward(ids, mask, audio, null).logits().toFloatArray();
        float[] b = fresh.forward(ids, mask, audio, null).logits().toFloatArray();
        org.junit.jupiter.api.Assertions.assertArrayEquals(a, b, "same step seed, same masks");
        created.dropout().set(true, 43);
        float[] c = fresh.forward(ids, mask, audio, null).logits().toFloatArray();
        assertTrue(!java.util.Arrays.equals(a, c), "another step seed, other masks");
        created.dropout().set(false, 0);
        float[] off = fresh.forward(ids, mask, audio, null).logits().toFloatArray();
        assertTrue(!java.util.Arrays.equals(a, off), "dropout off differs from on");
        // Gradient checkpointing recomputes each layer in backward: with keyed masks the gradients are the same.
        created.dropout().set(true, 42);
        Thinker.loss(fresh.forward(ids, mask, audio, null).logits(), labels).backward();
        java.util.List<float[]> plain = created.parameters().stream().map(t -> t.grad().toFloatArray()).toList();
        created.parameters().forEach(Tensor::zeroGrad);
        fresh.gradientCheckpointing(true);
        Thinker.loss(fresh.forward(ids, mask, audio, null).logits(), labels).backward();
        fresh.gradientCheckpointing(false);
        for (int i = 0; i < plain.size(); i++)
            org.junit.jupiter.api.Assertions.assertArrayEquals(plain.get(i), created.parameters().get(i).grad().toFloatArray(), 1e-6f, "tensor " + i);
    }

    @Test
    void aCreatedAdapterStartsAtTheBaseModelTrainsAndSurvivesSaveAndApply(@TempDir Path dir) {
        Thinker fresh = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        LoraAdapter created = LoraAdapter.create(fresh, 4, 8, java.util.List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), 1);
        Tensor ids = npy("input_ids.npy"), mask = npy("attention_mask.npy"), labels = npy("labels.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        assertEquals(0, relError(fresh.forward(ids, mask, audio, null).logits().toFloatArray(), npy("logits.npy").toFloatArray()), 1e-5,
                "B starts at zero, so the model is the base model");
        for (Tensor t : created.parameters()) t.requiresGrad(true);
        double first = 0, last = 0;
        for (int step = 0; step < 4; step++) {
            Tensor loss = Thinker.loss(fresh.forward(ids, mask, audio, null).logits(), labels);
            if (step == 0) first = loss.item();
            last = loss.item();
            loss.backward();
            try (var g = dev.jomni.tensor.Autograd.noGrad()) {
                for (Tensor t : created.parameters()) {
                    if (t.grad() != null) t.assign(t.sub(t.grad().mul(0.05)));
                    t.zeroGrad();
                }
            }
        }
        assertTrue(last < first, "plain SGD on the LoRA tensors lowers the loss: " + first + " → " + last);
        float[] trained = fresh.forward(ids, mask, audio, null).logits().toFloatArray();
        created.save(dir);
        Thinker other = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        LoraAdapter.apply(dir, other);
        assertEquals(0, relError(other.forward(ids, mask, audio, null).logits().toFloatArray(), trained), 1e-6, "saved and applied again");
    }
}

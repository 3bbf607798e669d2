package dev.jomni.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The 30B benchmark's every part on the CPU over the tiny fixture config (the table's rows, none failed). */
class Thinker30bTest {
    @Test
    void everyPartRunsOnTheTinyConfig() throws Exception {
        Map<String, String> args = new LinkedHashMap<>();
        args.put("device", "cpu");
        args.put("config", "../qwen-omni/src/test/resources/tiny/model/config.json");
        args.put("tokens", "32");
        args.put("steps", "1");
        args.put("rank", "4");
        args.put("prompt", "8");
        args.put("new-tokens", "4");
        args.put("concurrency", "1,3");
        args.put("audio-frames", "200");
        args.put("parts", "build,train,profile,generate,ttft");
        var bench = new Thinker30b(args);
        bench.run();
        Map<String, String[]> rows = new LinkedHashMap<>();
        for (String[] r : bench.rows()) rows.put(r[0], r);
        for (String[] r : rows.values()) assertTrue(!r[1].equals("FAILED"), String.join(" ", r));
        assertTrue(Double.parseDouble(rows.get("train tokens/s")[1]) > 0);
        assertTrue(rows.get("generate concurrency 3")[3].startsWith("12 tokens"), rows.get("generate concurrency 3")[3]);
        assertTrue(rows.get("time to first token, 30 s audio")[3].startsWith("200 mel frames → 26 audio tokens"), rows.get("time to first token, 30 s audio")[3]);
        assertEquals(14, rows.size(), rows.keySet().toString());
    }

    /** --use_4bit true over the tiny config with I = 64 (every expert weight's K a multiple of 64): the LoRA step over the NF4 base. */
    @Test
    void theLoraStepRunsOverAnNf4Base(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var root = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(new java.io.File("../qwen-omni/src/test/resources/tiny/model/config.json"));
        ((com.fasterxml.jackson.databind.node.ObjectNode) root.path("thinker_config").path("text_config")).put("moe_intermediate_size", 64);
        var config = dir.resolve("config.json");
        json.writeValue(config.toFile(), root);
        Map<String, String> args = new LinkedHashMap<>();
        args.put("device", "cpu");
        args.put("config", config.toString());
        args.put("tokens", "32");
        args.put("steps", "1");
        args.put("rank", "4");
        args.put("use_4bit", "true");
        args.put("optim", "paged_adamw_8bit");
        args.put("parts", "build,train,nf4");
        var bench = new Thinker30b(args);
        bench.run();
        Map<String, String[]> rows = new LinkedHashMap<>();
        for (String[] r : bench.rows()) rows.put(r[0], r);
        for (String[] r : rows.values()) assertTrue(!r[1].equals("FAILED"), String.join(" ", r));
        assertTrue(rows.get("weights built in memory")[3].contains("of them NF4"), String.join(" ", rows.get("weights built in memory")));
        assertTrue(rows.get("NF4 quantize on cpu")[3].startsWith("12 weights"), String.join(" ", rows.get("NF4 quantize on cpu")));
        assertTrue(Double.parseDouble(rows.get("train tokens/s")[1]) > 0);
        assertTrue(rows.containsKey("MoE experts NF4, fwd+bwd 32 tok"), rows.keySet().toString());
    }
}

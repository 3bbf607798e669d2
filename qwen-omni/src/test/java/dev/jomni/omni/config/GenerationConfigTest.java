package dev.jomni.omni.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real releases' {@code generation_config.json} files, and the errors of malformed ones. */
class GenerationConfigTest {
    static Path release(String name) {
        try {
            return Path.of(GenerationConfigTest.class.getResource("/qwen3-omni-real/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void theThinkingReleaseGivesItsSamplingDefaults() {
        var g = GenerationConfig.load(release("Qwen3-Omni-30B-A3B-Thinking"));
        assertEquals(OptionalInt.of(32768), g.maxNewTokens());
        assertEquals(OptionalDouble.of(0.6), g.temperature());
        assertEquals(OptionalInt.of(20), g.topK());
        assertEquals(OptionalDouble.of(0.95), g.topP());
        assertEquals(OptionalDouble.of(1.0), g.repetitionPenalty());
        assertEquals(OptionalDouble.empty(), g.minP());
        assertEquals(List.of(), g.eosTokenIds());
        assertEquals("max_new_tokens 32768, temperature 0.6, top_k 20, top_p 0.95, repetition_penalty 1.0", g.describe());
    }

    @Test
    void theInstructReleaseHasOnlyTalkerKeysSoTheThinkerGetsNoDefaults() {
        var g = GenerationConfig.load(release("Qwen3-Omni-30B-A3B-Instruct").resolve("generation_config.json"));
        assertEquals(GenerationConfig.NONE, g);
        assertEquals("", g.describe());
    }

    @Test
    void aFolderWithoutTheFileHasNoDefaults(@TempDir Path dir) {
        assertSame(GenerationConfig.NONE, GenerationConfig.load(dir));
    }

    @Test
    void eosTokenIdIsOneIdOrAList(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("generation_config.json");
        Files.writeString(f, "{\"eos_token_id\": 151645, \"top_k\": null, \"do_sample\": false}");
        var g = GenerationConfig.load(dir);
        assertEquals(List.of(151645L), g.eosTokenIds());
        assertEquals(OptionalInt.empty(), g.topK());
        Files.writeString(f, "{\"eos_token_id\": [151645, 151643], \"bos_token_id\": 151643}");
        assertEquals(List.of(151645L, 151643L), GenerationConfig.load(f).eosTokenIds());
    }

    @Test
    void badValuesAreNamedByFileAndField(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("generation_config.json");
        for (String[] c : new String[][] {
                {"{\"temperature\": \"hot\"}", "temperature = \"hot\" is not a number"},
                {"{\"temperature\": -0.5}", "temperature = -0.5 must be in [0.0, ∞)"},
                {"{\"top_p\": 0}", "top_p = 0.0 must be in (0.0, 1.0]"},
                {"{\"top_p\": 1.5}", "top_p = 1.5 must be in (0.0, 1.0]"},
                {"{\"top_k\": 2.5}", "top_k = 2.5 is not an integer"},
                {"{\"top_k\": -1}", "top_k = -1 must be 0"},
                {"{\"min_p\": 2}", "min_p = 2.0 must be in [0.0, 1.0]"},
                {"{\"repetition_penalty\": 0}", "repetition_penalty = 0.0 must be in (0.0, ∞)"},
                {"{\"max_new_tokens\": 0}", "max_new_tokens = 0 must be at least 1"},
                {"{\"eos_token_id\": [151645, \"x\"]}", "eos_token_id = [151645,\"x\"] is not a token id"},
                {"{\"eos_token_id\": -3}", "eos_token_id = -3 is not a token id"},
                {"[1, 2]", "not a JSON object"},
                {"{\"top_k\": 20,}", "not valid JSON"}}) {
            Files.writeString(f, c[0]);
            var e = assertThrows(ConfigException.class, () -> GenerationConfig.load(dir), c[0]);
            assertTrue(e.getMessage().startsWith(f + ": " + c[1]), () -> c[0] + " -> " + e.getMessage());
        }
    }
}

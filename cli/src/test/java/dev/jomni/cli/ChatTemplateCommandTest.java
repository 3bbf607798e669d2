package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code omni chat-template} against the Jinja2 goldens of real templates (qwen-omni's test resources). */
class ChatTemplateCommandTest {
    static final Path TEMPLATES = Path.of("../qwen-omni/src/test/resources/chat-templates");
    static final Path REAL = Path.of("../qwen-omni/src/test/resources/qwen3-omni-real");
    static final ObjectMapper JSON = new ObjectMapper();

    private record Result(int exitCode, String out, String err) {}

    private static Result run(String... args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        PrintStream oldOut = System.out, oldErr = System.err;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    private static List<Map<String, Object>> cases(String model) throws IOException {
        return JSON.readValue(TEMPLATES.resolve(model).resolve("cases.json").toFile(), new TypeReference<>() {});
    }

    /** A golden case as the command's input: its own fields, without name and expectation. */
    private static Path input(Path dir, Map<String, Object> c) throws IOException {
        var in = new LinkedHashMap<>(c);
        for (String k : List.of("name", "expected", "expected_error", "error_origin")) in.remove(k);
        Path file = dir.resolve("input.json");
        JSON.writeValue(file.toFile(), in);
        return file;
    }

    /** Every third Qwen3-Omni case and both errors (qwen-omni's RealChatTemplatesTest renders them all; this is the command). */
    @Test
    void printsQwen3OmniCasesExactlyAsJinja2(@TempDir Path dir) throws IOException {
        String template = TEMPLATES.resolve("Qwen3-Omni-30B-A3B-Instruct/template.jinja").toString();
        var all = cases("Qwen3-Omni-30B-A3B-Instruct");
        int rendered = 0;
        for (int i = 0; i < all.size(); i++) {
            var c = all.get(i);
            if (i % 3 != 0 && c.containsKey("expected")) continue;
            var r = run("chat-template", "--template", template, "--input", input(dir, c).toString());
            if (c.containsKey("expected")) {
                assertEquals(0, r.exitCode(), c.get("name") + ": " + r.err());
                assertEquals(c.get("expected"), r.out(), (String) c.get("name"));
                rendered++;
            } else {
                assertEquals(1, r.exitCode(), (String) c.get("name"));
                assertTrue(r.err().contains((String) c.get("expected_error")), r.err());
            }
        }
        assertEquals(17, rendered);
    }

    @Test
    void raiseExceptionExitsOneWithTheTemplatesMessage(@TempDir Path dir) throws IOException {
        var c = cases("gemma-2-2b-it").stream().filter(x -> "sys_user/gen".equals(x.get("name"))).findFirst().orElseThrow();
        assertEquals("raise_exception", c.get("error_origin"));
        var r = run("chat-template", "--template", TEMPLATES.resolve("gemma-2-2b-it/template.jinja").toString(),
                "--input", input(dir, c).toString());
        assertEquals(1, r.exitCode());
        assertEquals("", r.out());
        assertTrue(r.err().startsWith("omni chat-template: ") && r.err().contains("System role not supported"), r.err());
    }

    @Test
    void modelTakesTheCheckpointsTemplateAndSpecialTokens(@TempDir Path dir) throws IOException {
        // the real release: chat_template.json, and eos_token <|im_end|> from tokenizer_config.json (the input passes none)
        var c = new LinkedHashMap<>(cases("Qwen3-Omni-30B-A3B-Instruct").stream()
                .filter(x -> "omni_mixed_media/gen".equals(x.get("name"))).findFirst().orElseThrow());
        c.remove("eos_token");
        var r = run("chat-template", "--model", REAL.resolve("Qwen3-Omni-30B-A3B-Instruct").toString(), "--input", input(dir, c).toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(c.get("expected"), r.out());
    }

    @Test
    void aModelWithoutTemplateGetsQwen3OmnisOfficialOne(@TempDir Path dir) throws IOException {
        Path model = Files.createDirectory(dir.resolve("model"));
        var c = cases("Qwen3-Omni-30B-A3B-Instruct").stream().filter(x -> "audio_url_multi_turn/gen".equals(x.get("name"))).findFirst().orElseThrow();
        var r = run("chat-template", "--model", model.toString(), "--input", input(dir, c).toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(c.get("expected"), r.out());
    }

    @Test
    void aTemplateJsonFileIsReadForItsChatTemplate(@TempDir Path dir) throws IOException {
        var c = cases("Qwen3-Omni-30B-A3B-Thinking").stream().filter(x -> "tools_only/gen".equals(x.get("name"))).findFirst().orElseThrow();
        var r = run("chat-template", "--template", REAL.resolve("Qwen3-Omni-30B-A3B-Thinking/chat_template.json").toString(),
                "--input", input(dir, c).toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(c.get("expected"), r.out());
    }

    @Test
    void badInputNamesTheFileAndField(@TempDir Path dir) throws IOException {
        Path in = dir.resolve("in.json");
        Files.writeString(in, "{\"messages\": [], \"add_generation_promt\": true}");
        var r = run("chat-template", "--template", TEMPLATES.resolve("Qwen3-0.6B/template.jinja").toString(), "--input", in.toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains(in.toString()) && r.err().contains("add_generation_promt"), r.err());
        Files.writeString(in, "{\"messages\": []}");
        r = run("chat-template", "--template", dir.resolve("missing.jinja").toString(), "--input", in.toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains(dir.resolve("missing.jinja") + ": no such file"), r.err());
        Files.writeString(in, "{\"messages\": {}}");
        r = run("chat-template", "--template", TEMPLATES.resolve("Qwen3-0.6B/template.jinja").toString(), "--input", in.toString());
        assertTrue(r.err().contains(in.toString()) && r.err().contains("\"messages\" must be a list"), r.err());
    }

    @Test
    void templateAndModelExcludeEachOther(@TempDir Path dir) throws IOException {
        Path in = dir.resolve("in.json");
        Files.writeString(in, "{\"messages\": []}");
        var r = run("chat-template", "--template", "a.jinja", "--model", dir.toString(), "--input", in.toString());
        assertEquals(2, r.exitCode());
        r = run("chat-template", "--input", in.toString());
        assertEquals(2, r.exitCode());
    }
}

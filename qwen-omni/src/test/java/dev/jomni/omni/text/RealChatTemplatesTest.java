package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.io.InputStream;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Thirteen real Hugging Face chat templates (Qwen3-Omni Instruct and Thinking, Qwen3, Qwen2.5,
 * Qwen2-Audio, Llama 3.1/3.2, DeepSeek-R1-Distill, Gemma 2, Mistral, Mixtral, Phi-3.5, Phi-4-mini)
 * against Jinja2 3.1.6 set up as transformers sets it up ({@code chat-templates/README.md} and
 * {@code render.py} say how the goldens were made). Every render is byte-exact; every expected
 * error is an error carrying its message: a template's own {@code raise_exception} text, or
 * CPython's words for a runtime error ({@code str + None}, {@code 'x' in None}, …) or Jinja2's
 * ({@code 'dict object' has no attribute 'x'}). {@code fuzz_cases.json.gz} adds random
 * conversations, made and rendered by {@code fuzz.py}, under the same rules.
 */
class RealChatTemplatesTest {
    /** render.py's fixed clock for {@code strftime_now}: 2024-07-26 12:00. */
    static final Clock GOLDEN_CLOCK = Clock.fixed(Instant.parse("2024-07-26T12:00:00Z"), ZoneOffset.UTC);

    static Stream<Arguments> cases() throws IOException {
        Map<String, Object> index = read("index.json", new TypeReference<>() {});
        @SuppressWarnings("unchecked")
        var templates = (Map<String, Object>) index.get("templates");
        var out = new ArrayList<Arguments>();
        for (String model : templates.keySet()) {
            String source;
            try (InputStream in = resource(model + "/template.jinja")) {
                source = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            }
            List<Map<String, Object>> cases = read(model + "/cases.json", new TypeReference<>() {});
            for (var c : cases) out.add(Arguments.of(model + " " + c.get("name"), source, c));
        }
        return out.stream();
    }

    /** fuzz.py's random conversations (40 per template, seed 7), each naming its template. */
    static Stream<Arguments> fuzzCases() throws IOException {
        List<Map<String, Object>> cases;
        try (InputStream in = new GZIPInputStream(resource("fuzz_cases.json.gz"))) {
            cases = TokenizerTest.JSON.readValue(in, new TypeReference<>() {});
        }
        var sources = new java.util.HashMap<String, String>();
        var out = new ArrayList<Arguments>();
        for (var c : cases) {
            String model = (String) c.get("template");
            String source = sources.computeIfAbsent(model, m -> {
                try (InputStream in = resource(m + "/template.jinja")) {
                    return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            out.add(Arguments.of(c.get("name"), source, c));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fuzzCases")
    void rendersRandomConversationsLikeJinja2(String name, String source, Map<String, Object> c) {
        rendersLikeJinja2(name, source, c);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    @SuppressWarnings("unchecked")   // a case is a JSON object: messages are maps, kwargs a map
    void rendersLikeJinja2(String name, String source, Map<String, Object> c) {
        var template = ChatTemplate.of(source).withClock(GOLDEN_CLOCK);
        var variables = new LinkedHashMap<String, Object>();
        variables.put("tools", c.get("tools"));
        for (String token : List.of("bos_token", "eos_token")) {
            if (c.get(token) != null) variables.put(token, c.get(token));   // null: not passed, so undefined
        }
        variables.putAll((Map<String, Object>) c.get("extra_kwargs"));
        var messages = (List<Map<String, Object>>) c.get("messages");
        boolean generationPrompt = (Boolean) c.get("add_generation_prompt");
        if (c.containsKey("expected")) {
            assertEquals(c.get("expected"), template.renderMaps(messages, generationPrompt, variables));
            return;
        }
        var e = assertThrows(TokenizerException.class, () -> template.renderMaps(messages, generationPrompt, variables),
                "expected " + c.get("error_origin") + ": " + c.get("expected_error"));
        // raise_exception's message is the template's own; Python's runtime errors are matched in CPython's words too
        String expected = (String) c.get("expected_error");
        assertTrue(e.getMessage().contains(expected), "expected the message '" + expected + "', got '" + e.getMessage() + "'");
    }

    private static InputStream resource(String path) {
        var in = RealChatTemplatesTest.class.getResourceAsStream("/chat-templates/" + path);
        if (in == null) throw new IllegalStateException("test resource chat-templates/" + path + " is missing");
        return in;
    }

    private static <T> T read(String path, TypeReference<T> type) throws IOException {
        try (InputStream in = resource(path)) {
            return TokenizerTest.JSON.readValue(in, type);
        }
    }
}

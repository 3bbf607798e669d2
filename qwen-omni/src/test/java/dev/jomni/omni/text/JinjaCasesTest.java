package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Against Jinja2 3.1 itself, configured as transformers renders chat templates
 * ({@code jinja/make_jinja_cases.py} made {@code jinja_cases.json}): small templates for each
 * feature, then the Qwen3 template and an Omni-style one over conversations with tools, tool
 * calls, tool responses, reasoning and audio parts.
 */
class JinjaCasesTest {
    static Stream<Arguments> cases() throws IOException {
        List<Map<String, Object>> cases = TokenizerTest.JSON.readValue(
                JinjaCasesTest.class.getResourceAsStream("/jinja/jinja_cases.json"), new TypeReference<>() {});
        return cases.stream().map(c -> Arguments.of(c.get("name"), c.get("template"), c.get("context"), c.get("output"), c.get("error")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    @SuppressWarnings("unchecked")   // the messages of a case are JSON objects, so maps
    void rendersLikeJinja2(String name, String template, Map<String, Object> context, String output, String error) {
        var compiled = ChatTemplate.of(template);
        var messages = (List<Map<String, Object>>) context.get("messages");
        boolean addGenerationPrompt = Boolean.TRUE.equals(context.get("add_generation_prompt"));
        var variables = new java.util.HashMap<>(context);
        variables.remove("messages");
        variables.remove("add_generation_prompt");
        if (error != null) {
            assertThrows(TokenizerException.class, () -> compiled.renderMaps(messages, addGenerationPrompt, variables), error);
        } else {
            assertEquals(output, compiled.renderMaps(messages, addGenerationPrompt, variables));
        }
    }
}

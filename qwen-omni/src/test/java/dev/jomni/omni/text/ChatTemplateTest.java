package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Against {@code chat_template_cases.json}: transformers' apply_chat_template text and ids. */
class ChatTemplateTest {
    static Tokenizer tokenizer;
    static ChatTemplate template;

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(TokenizerTest.resources());
        template = ChatTemplate.load(TokenizerTest.resources());
    }

    static Stream<Arguments> cases() throws IOException {
        var out = new ArrayList<Arguments>();
        for (JsonNode c : TokenizerTest.JSON.readTree(TokenizerTest.resources().resolve("chat_template_cases.json").toFile())) {
            var messages = new ArrayList<ChatMessage>();
            for (var m : c.get("messages")) messages.add(ChatMessage.of(m.get("role").asText(), m.get("content").asText()));
            out.add(Arguments.of(messages, c.get("add_generation_prompt").asBoolean(), c.get("text").asText(),
                    TokenizerTest.ids(c.get("ids"))));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "[{index}] {2}")
    @MethodSource("cases")
    void rendersAndTokenizesLikeTransformers(List<ChatMessage> messages, boolean addGenerationPrompt, String text, int[] ids) {
        assertEquals(text, template.render(messages, addGenerationPrompt));
        assertArrayEquals(ids, tokenizer.encode(text));
    }

    @Test
    void reasoningOfEarlierAssistantTurnsIsDropped() {
        String text = template.render(List.of(ChatMessage.user("Q1"), ChatMessage.assistant("<think>\nR1\n</think>\n\nA1"),
                ChatMessage.user("Q2")), true);
        assertEquals("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                + "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", text);
    }

    @Test
    void reasoningContentFieldIsRenderedAsAThinkBlock() {
        String text = template.renderMaps(List.of(Map.of("role", "user", "content", "Q"),
                Map.of("role", "assistant", "content", "A", "reasoning_content", "R")), false, Map.of());
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n", text);
    }

    @Test
    void disabledThinkingAddsAnEmptyThinkBlockToTheGenerationPrompt() {
        String text = template.render(List.of(ChatMessage.user("Q")), true, Map.of("enable_thinking", false));
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", text);
    }

    @Test
    void toolsAreListedAsJsonInTheSystemTurn() {
        var tool = new java.util.LinkedHashMap<String, Object>();          // ordered, like a Python dict (Map.of is not)
        tool.put("type", "function");
        tool.put("function", Map.of("name", "f"));
        String text = template.render(List.of(ChatMessage.user("Q")), false, Map.of("tools", List.of(tool)));
        assertTrue(text.startsWith("<|im_start|>system\n# Tools\n"), text);
        assertTrue(text.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\"}}\n</tools>"), text);
    }

    @Test
    void audioPartsFailOnATemplateForStringContentOnly() {
        var e = assertThrows(TokenizerException.class,
                () -> template.render(List.of(ChatMessage.user(Content.audio(100), Content.text("Q"))), true));
        assertTrue(e.getMessage().startsWith("chat template: "), e.getMessage());
    }

    @Test
    void templateIsTakenFromChatTemplateJinjaFirst(@TempDir Path dir) throws IOException {
        Files.copy(TokenizerTest.resources().resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ eos_token }}{{ messages[0].content }}");
        assertEquals("<|im_end|>hi", ChatTemplate.load(dir).render(List.of(ChatMessage.user("hi")), false));
    }

    @Test
    void aFolderWithoutTemplateGetsQwen3OmnisOfficialOne(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<|im_end|>\"}");
        var loaded = ChatTemplate.load(dir);
        String official = Files.readString(TokenizerTest.resources().resolveSibling("chat-templates/Qwen3-Omni-30B-A3B-Instruct/template.jinja"));
        assertEquals(official, loaded.source());
        assertEquals(official, ChatTemplate.qwen3Omni().source());
        assertEquals("Qwen3-Omni's official chat template", loaded.origin());
        // list content with an audio part: the official template renders the audio markers (Qwen3's would fail)
        assertEquals("<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|>Q<|im_end|>\n<|im_start|>assistant\n",
                loaded.render(List.of(ChatMessage.user(Content.audio(100), Content.text("Q"))), true));
    }

    @Test
    void aTemplateThatIsNeitherStringNorListIsAnErrorNamingTheFile(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": 7}");
        var e = assertThrows(TokenizerException.class, () -> ChatTemplate.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json").toString()), e.getMessage());
    }

    @Test
    void templateSyntaxErrorNamesTheFile(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("chat_template.jinja"), "{% if %}");
        var e = assertThrows(TokenizerException.class, () -> ChatTemplate.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("chat_template.jinja").toString()), e.getMessage());
    }
}

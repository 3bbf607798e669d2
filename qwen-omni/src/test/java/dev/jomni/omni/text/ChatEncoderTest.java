package dev.jomni.omni.text;

import dev.jomni.omni.model.AudioEncoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Audio parts become audio_start + N × audio_pad + audio_end. The tokenizer is the fixture's Qwen3
 * one with Qwen3-Omni's three audio tokens added at their real ids (spec §11), and the template an
 * Omni-style one (Qwen3's, extended to list content) kept in test resources.
 */
class ChatEncoderTest {
    static final int AUDIO_START = 151669, AUDIO_END = 151670, AUDIO_PAD = 151675;   // spec §11
    static final int IM_START = 151644, IM_END = 151645, USER = 872, ASSISTANT = 77091, NEWLINE = 198;
    /** "How many distinct sounds do you hear?" by HF tokenizers (tokenizer_cases.json). */
    static final int[] QUESTION = {4340, 1657, 12460, 10362, 653, 498, 6723, 30};

    @TempDir
    static Path omniDir;
    static ChatEncoder encoder;

    @BeforeAll
    static void writeOmniTokenizer() throws IOException {
        // Spliced into the text rather than rewritten through a JSON tree: 11 MB either way, this is faster.
        String json = TokenizerTest.fixtureText();
        var m = Pattern.compile("\"added_tokens\"\\s*:\\s*\\[").matcher(json);
        assertTrue(m.find(), "fixture has added_tokens");
        var audio = new StringBuilder();
        for (var t : List.of(new Object[] {AUDIO_START, "<|audio_start|>"}, new Object[] {AUDIO_END, "<|audio_end|>"},
                new Object[] {AUDIO_PAD, "<|audio_pad|>"})) {
            audio.append("{\"id\": ").append(t[0]).append(", \"content\": \"").append(t[1]).append("\", \"single_word\": false, "
                    + "\"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},");
        }
        Files.writeString(omniDir.resolve("tokenizer.json"), json.substring(0, m.end()) + audio + json.substring(m.end()));
        Files.copy(TokenizerTest.resources().resolve("tokenizer_config.json"), omniDir.resolve("tokenizer_config.json"));
        Files.copy(TokenizerTest.resources().resolve("omni_chat_template.jinja"), omniDir.resolve("chat_template.jinja"));
        encoder = ChatEncoder.load(omniDir, 50);
    }

    @Test
    void audioTokenCountMatchesTheFixtureClips() {
        // qwen3-omni-tiny reference.json: 130 and 260 valid frames give 17 and 34 audio tokens (n_window 50).
        assertEquals(17, AudioEncoder.outputLength(130, 50));
        assertEquals(34, AudioEncoder.outputLength(260, 50));
    }

    @Test
    void audioTokenCountIsTheSpecFormulaForWindow50() {
        // Spec §3: N = 13·⌊n/100⌋ + ceil((n mod 100)/8).
        IntStream.rangeClosed(0, 3000).forEach(n ->
                assertEquals(13 * (n / 100) + (n % 100 + 7) / 8, AudioEncoder.outputLength(n, 50), "n=" + n));
    }

    @Test
    void audioTokenCountFollowsAnotherWindow() {
        // n_window 25: a chunk of 50 frames gives 50 → 25 → 13 → 7 after three stride-2 convolutions.
        assertEquals(7, AudioEncoder.outputLength(50, 25));
        assertEquals(8, AudioEncoder.outputLength(51, 25));
        assertEquals(14 + 2, AudioEncoder.outputLength(109, 25));   // remainder 9 → 5 → 3 → 2
    }

    @Test
    void audioIdsComeFromTheTokenizer() {
        assertEquals(AUDIO_START, encoder.audioStartId());
        assertEquals(AUDIO_PAD, encoder.audioTokenId());
        assertEquals(AUDIO_END, encoder.audioEndId());
    }

    @Test
    void anAudioPartExpandsToItsTokenCount() {
        int[] ids = encoder.encode(List.of(ChatMessage.user(Content.audio(130), Content.text("How many distinct sounds do you hear?"))), true);
        var expected = IntStream.builder();
        IntStream.of(IM_START, USER, NEWLINE, AUDIO_START).forEach(expected);
        IntStream.range(0, 17).forEach(i -> expected.add(AUDIO_PAD));
        expected.add(AUDIO_END);
        IntStream.of(QUESTION).forEach(expected);
        IntStream.of(IM_END, NEWLINE, IM_START, ASSISTANT, NEWLINE).forEach(expected);
        assertArrayEquals(expected.build().toArray(), ids);
    }

    @Test
    void eachAudioPartGetsItsOwnCountInOrder() {
        String prompt = encoder.prompt(List.of(ChatMessage.system("S"),
                ChatMessage.user(Content.audio(260), Content.text("and"), Content.audio(130))), false);
        String pad = "<|audio_pad|>";
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|audio_start|>" + pad.repeat(34)
                + "<|audio_end|>and<|audio_start|>" + pad.repeat(17) + "<|audio_end|><|im_end|>\n", prompt);
    }

    @Test
    void textOnlyConversationsAreUnchanged() {
        var messages = List.of(ChatMessage.user("How many distinct sounds do you hear?"));
        assertEquals(encoder.template().render(messages, true), encoder.prompt(messages, true));
    }

    @Test
    void aTokenizerWithoutAudioTokensIsRefused() {
        var e = assertThrows(TokenizerException.class, () -> ChatEncoder.load(TokenizerTest.resources(), 50));
        assertTrue(e.getMessage().contains("<|audio_start|>"), e.getMessage());
    }

    @Test
    void aTemplateThatDropsAudioIsAnError() {
        var dropping = new ChatEncoder(encoder.tokenizer(), ChatTemplate.of(
                "{% for m in messages %}{{ m.role }}{% endfor %}"), 50);
        var e = assertThrows(TokenizerException.class, () -> dropping.prompt(List.of(ChatMessage.user(Content.audio(100))), false));
        assertTrue(e.getMessage().contains("0 <|audio_pad|> for 1 audio parts"), e.getMessage());
    }
}

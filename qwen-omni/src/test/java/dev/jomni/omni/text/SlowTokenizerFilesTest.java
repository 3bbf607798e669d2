package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A folder with {@code vocab.json} + {@code merges.txt} + {@code tokenizer_config.json} (the form the
 * Qwen3-Omni release ships) against {@code tokenizer.json} of the same vocabulary: both forms are
 * written from the Qwen fixture, and they must give the same ids.
 */
class SlowTokenizerFilesTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path slowDir;
    static Tokenizer fast, slow;
    static String vocabJson, mergesTxt;

    static Path resource(String name) {
        try {
            return Path.of(SlowTokenizerFilesTest.class.getResource(name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    static void writeSlowForm() throws IOException {
        JsonNode model = JSON.readTree(TokenizerTest.fixtureText()).get("model");
        vocabJson = JSON.writeValueAsString(model.get("vocab"));
        var merges = new StringBuilder("#version: 0.2\n");
        for (JsonNode m : model.get("merges")) merges.append(m.get(0).asText()).append(' ').append(m.get(1).asText()).append('\n');
        mergesTxt = merges.toString();
        writeFolder(slowDir, resource("/tokenizer/tokenizer_config.json"));
        fast = Tokenizer.load(TokenizerTest.resources());
        slow = Tokenizer.load(slowDir);
    }

    static void writeFolder(Path dir, Path tokenizerConfig) throws IOException {
        Files.writeString(dir.resolve("vocab.json"), vocabJson, StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("merges.txt"), mergesTxt, StandardCharsets.UTF_8);
        Files.copy(tokenizerConfig, dir.resolve("tokenizer_config.json"), StandardCopyOption.REPLACE_EXISTING);
    }

    static List<String> texts() throws IOException {
        var texts = new ArrayList<String>();
        for (JsonNode c : JSON.readTree(resource("/tokenizer/tokenizer_cases.json").toFile())) texts.add(c.get("text").asText());
        texts.addAll(List.of(
                "汉字と日本語のかな、한국어 문장도 섞어서",
                "emoji with ZWJ: 👩‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and skin 👋🏿",
                "e\u0301 (decomposed) vs é, Å vs A\u030A, ﬁ ligature, ſ and K",
                "tabs\t\tand\u00A0no-break\u2003em space\u3000ideographic\r\n\r\n  end",
                "digits 0123456789 ٠١٢٣ ①②③ 3.14e-10 I'M HE'LL they'Re",
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|>What is it?<|im_end|>",
                "<think>\nreasoning</think>\n\nANSWER: (B)<|endoftext|>",
                "<|im_start|><|im_start|>x<|im_end|>y<|endoftext|>"));
        return texts;
    }

    @Test
    void encodesExactlyAsTokenizerJsonDoes() throws IOException {
        int checked = 0;
        for (String text : texts()) {
            int[] ids = fast.encode(text);
            assertArrayEquals(ids, slow.encode(text), () -> "text: " + text);
            assertEquals(fast.decode(ids), slow.decode(ids), () -> "text: " + text);
            assertEquals(fast.decode(ids, true), slow.decode(ids, true), () -> "text: " + text);
            checked++;
        }
        assertTrue(checked >= 20, "cases: " + checked);
    }

    @Test
    void hasTheSameVocabularyAndSpecialTokens() {
        assertEquals(fast.vocabSize(), slow.vocabSize());
        for (int id = 0; id < fast.vocabSize(); id++) {
            assertEquals(fast.token(id), slow.token(id), "id " + id);
            assertEquals(fast.isSpecial(id), slow.isSpecial(id), "id " + id);
        }
    }

    @Test
    void theQwen3OmniReleaseTokenizerConfigAddsTheAudioTokens(@TempDir Path dir) throws IOException {
        Path release = resource("/qwen3-omni-real/Qwen3-Omni-30B-A3B-Instruct");
        writeFolder(dir, release.resolve("tokenizer_config.json"));
        Files.copy(release.resolve("chat_template.json"), dir.resolve("chat_template.json"));
        Tokenizer t = Tokenizer.load(dir);
        assertEquals(151676, t.vocabSize());        // 151,643 vocabulary entries + 33 added tokens (151643–151675)
        assertEquals(151669, t.tokenId("<|audio_start|>"));
        assertEquals(151670, t.tokenId("<|audio_end|>"));
        assertEquals(151675, t.tokenId("<|audio_pad|>"));
        assertEquals(151645, t.tokenId("<|im_end|>"));
        assertTrue(t.isSpecial(151675));
        assertFalse(t.isSpecial(t.tokenId("<think>")));
        int[] ids = t.encode("<|audio_start|><|audio_pad|><|audio_pad|><|audio_end|>Hello world");
        assertArrayEquals(new int[] {151669, 151675, 151675, 151670, 9707, 1879}, ids);
        assertEquals("Hello world", t.decode(ids, true));
        // The folder is a complete text front end: the release's chat template renders with this tokenizer.
        var encoder = ChatEncoder.load(dir, 50);
        int[] prompt = encoder.encode(List.of(ChatMessage.user(new Content.Text("Hi"))), true);
        assertEquals(151644, prompt[0]);
    }

    @Test
    void aMissingFileIsNamed(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Files.delete(dir.resolve("merges.txt"));
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("merges.txt").toString()) && e.getMessage().contains("not found"), e.getMessage());
    }

    @Test
    void aMalformedMergeLineIsNamedByLine(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\nĠ Ġ\ni n\nthreetokens here now\n");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("merges.txt") + ": line 4"), e.getMessage());
    }

    @Test
    void aMergeOfUnknownTokensIsNamedByLine(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\nĠ Ġ\n\nzzzq qqqz\n");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("merges.txt") + ": line 4")
                && e.getMessage().contains(dir.resolve("vocab.json").toString()), e.getMessage());
    }

    @Test
    void aNonIntegerVocabularyIdIsNamed(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0, \"b\": \"one\"}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("vocab.json") + ": [\"b\"]"), e.getMessage());
    }

    @Test
    void invalidVocabularyJsonIsNamedByLine(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0,\n \"b\": 1,,\n}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("vocab.json") + ": not valid JSON") && e.getMessage().contains("line 2"), e.getMessage());
    }

    @Test
    void tokenizerConfigFieldsAreChecked(@TempDir Path dir) throws IOException {
        writeFolder(dir, resource("/tokenizer/tokenizer_config.json"));
        Path config = dir.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"added_tokens_decoder\": {}}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(config + ": no tokenizer_class"), e.getMessage());

        Files.writeString(config, "{\"tokenizer_class\": \"LlamaTokenizer\"}");
        e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(config + ": tokenizer_class LlamaTokenizer"), e.getMessage());

        Files.writeString(config, "{\"tokenizer_class\": \"Qwen2Tokenizer\", \"added_tokens_decoder\": {\"x1\": {\"content\": \"<a>\"}}}");
        e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(config + ": added_tokens_decoder[\"x1\"]"), e.getMessage());

        Files.writeString(config, "{\"tokenizer_class\": \"Qwen2Tokenizer\", \"added_tokens_decoder\": {\"151643\": {\"special\": true}}}");
        e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(config + ": added_tokens_decoder[\"151643\"]: no content"), e.getMessage());
    }

    @Test
    void aFolderWithNoTokenizerFilesListsWhatItLooksFor(@TempDir Path dir) {
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json") && e.getMessage().contains("vocab.json + merges.txt"), e.getMessage());
    }
}

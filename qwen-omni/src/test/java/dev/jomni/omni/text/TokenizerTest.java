package dev.jomni.omni.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Against {@code tokenizer_cases.json}: Hugging Face tokenizers' ids and decoded text for the Qwen3 vocabulary. */
class TokenizerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static Tokenizer tokenizer;

    static Path resources() {
        try {
            return Path.of(TokenizerTest.class.getResource("/tokenizer").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    static void load() {
        tokenizer = Tokenizer.load(resources());
    }

    static Stream<Arguments> cases() throws IOException {
        var out = new ArrayList<Arguments>();
        for (JsonNode c : JSON.readTree(resources().resolve("tokenizer_cases.json").toFile())) {
            out.add(Arguments.of(c.get("text").asText(), ids(c.get("ids")), c.get("decoded").asText()));
        }
        return out.stream();
    }

    static int[] ids(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = array.get(i).asInt();
        return ids;
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("cases")
    void encodesLikeHuggingFaceTokenizers(String text, int[] expectedIds, String expectedDecoded) {
        assertArrayEquals(expectedIds, tokenizer.encode(text), () -> "text: " + text);
        assertEquals(expectedDecoded, tokenizer.decode(expectedIds));
    }

    @Test
    void splitRegexCutsLikeAUnicodeBacktrackingEngine() throws IOException {
        // make_split_cases.py: Python's regex module on 1000 random strings of Unicode whitespace,
        // combining marks, digits of several scripts, case-folding traps (ſ, K) and emoji.
        int checked = 0;
        for (JsonNode c : JSON.readTree(resources().resolve("split_cases.json").toFile())) {
            var expected = new ArrayList<String>();
            c.get("pieces").forEach(p -> expected.add(p.asText()));
            assertEquals(expected, tokenizer.preTokenize(c.get("text").asText()), () -> "text: " + c.get("text"));
            checked++;
        }
        assertEquals(1000, checked);
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @ValueSource(strings = {
        "汉字と日本語のかな、한국어 문장도 섞어서",
        "emoji with ZWJ: 👩‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and skin 👋🏿",
        "e\u0301 (decomposed) vs é, Å vs A\u030A",
        "tabs\t\tand\u00A0no-break\u2003em space\u3000ideographic",
        "\n\n\n   \n\t \r\n",
        "digits 0123456789 ٠١٢٣ ①②③ 3.14e-10",
        "math ∑∫√∞ ≠ ≤ ≥ and arrows ←→↑↓",
        "<|im_start|> inside <think>text</think><|endoftext|>",
        "mixed русский ελληνικά עברית العربية हिन्दी",
    })
    void decodeInvertsEncodeOnNormalizedText(String text) {
        int[] ids = tokenizer.encode(text);
        // Encoding normalizes to NFC, so decoding gives back the NFC form of the input.
        assertEquals(java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFC), tokenizer.decode(ids));
    }

    @Test
    void addedTokensInTextAreMatchedWhole() {
        int imStart = tokenizer.tokenId("<|im_start|>");
        int[] ids = tokenizer.encode("a<|im_start|>b");
        assertEquals(3, ids.length);
        assertEquals(imStart, ids[1]);
        assertTrue(tokenizer.isSpecial(imStart));
        assertFalse(tokenizer.isSpecial(tokenizer.tokenId("<think>")));
    }

    @Test
    void decodeSkipsOnlySpecialTokensWhenAsked() {
        int[] ids = tokenizer.encode("<|im_start|>user\n<think>x</think><|im_end|>");
        assertEquals("user\n<think>x</think>", tokenizer.decode(ids, true));
        assertEquals("<|im_start|>user\n<think>x</think><|im_end|>", tokenizer.decode(ids, false));
    }

    @Test
    void decodeReplacesAnIncompleteUtf8SequenceWithTheReplacementCharacter() {
        int leadByte = tokenizer.tokenId(String.valueOf(ByteLevel.charOf(0xF0)));   // starts a 4-byte sequence
        assertEquals("a\uFFFD", tokenizer.decode(new int[] {tokenizer.tokenId("a"), leadByte}));
    }

    @Test
    void streamingDecodeEmitsOnlyCompleteCharactersAndAddsUpToDecode() {
        String text = "emoji 🎵🎶 and 👍🏽 中文测试 <|im_end|>";
        int[] ids = tokenizer.encode(text);
        var stream = tokenizer.decodeStream(false);
        var sb = new StringBuilder();
        for (int id : ids) {
            String piece = stream.step(id);
            assertFalse(piece.contains("\uFFFD"), "a piece ends inside a character: " + piece);
            sb.append(piece);
        }
        sb.append(stream.flush());
        assertEquals(text, sb.toString());
        var skipping = tokenizer.decodeStream(true);
        var out = new StringBuilder();
        for (int id : ids) out.append(skipping.step(id));
        assertEquals(tokenizer.decode(ids, true), out.append(skipping.flush()).toString());
    }

    @Test
    void longRunsEncodeAndDecode() {
        String text = "ab ".repeat(5000) + " ".repeat(3000) + "x".repeat(3000);
        assertEquals(text, tokenizer.decode(tokenizer.encode(text)));
    }

    @Test
    void vocabularyIncludesAddedTokens() {
        assertEquals(151669, tokenizer.vocabSize());
        assertEquals("<|im_end|>", tokenizer.token(151645));
        assertThrows(IllegalArgumentException.class, () -> tokenizer.token(151669));
        assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {-1}));
    }

    @Test
    void missingTokenizerFileIsAnErrorNamingTheFolder(@TempDir Path dir) {
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void corruptGzipIsAnErrorNamingTheFile(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json.gz");
        byte[] gz = Files.readAllBytes(resources().resolve("tokenizer.json.gz"));
        Files.write(file, java.util.Arrays.copyOf(gz, gz.length / 2));   // truncated
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    }

    @Test
    void invalidJsonIsAnErrorNamingTheFileAndLine(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\n  \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,,}}\n}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file.toString()) && e.getMessage().contains("line 2"), e.getMessage());
    }

    @Test
    void unsupportedModelTypeIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": {\"type\": \"Unigram\", \"vocab\": {\"a\": 0}}}");
        var e = assertThrows(TokenizerException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().contains("model.type=Unigram"), e.getMessage());
    }

    /** The fixture's JSON text, for tests that edit it. */
    static String fixtureText() {
        try (InputStream in = new GZIPInputStream(Files.newInputStream(resources().resolve("tokenizer.json.gz")))) {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

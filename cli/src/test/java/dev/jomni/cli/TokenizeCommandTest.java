package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code omni tokenize} contract, on a tiny byte-level BPE written here. */
class TokenizeCommandTest {
    /**
     * A tokenizer.json with the 256 byte-level characters (GPT-2's table: printable Latin-1 as
     * itself, the other bytes from U+0100 up) as ids 0..255, one merge a+b → "ab" = 256, and the
     * added token {@code <|x|>} = 300.
     */
    private static void writeTinyTokenizer(Path dir) throws IOException {
        var vocab = new StringBuilder();
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            int c = printable ? b : next++;
            vocab.append(String.format("\"\\u%04x\": %d, ", c, b));
        }
        vocab.append("\"ab\": 256");
        String json = """
                {"added_tokens": [{"id": 300, "content": "<|x|>", "special": true, "normalized": false,
                   "lstrip": false, "rstrip": false, "single_word": false}],
                 "normalizer": {"type": "NFC"},
                 "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"},
                    "behavior": "Isolated", "invert": false},
                   {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
                 "decoder": {"type": "ByteLevel"},
                 "model": {"type": "BPE", "vocab": {%s}, "merges": [["a", "b"]]}}
                """.formatted(vocab);
        Files.writeString(dir.resolve("tokenizer.json"), json);
    }

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

    @Test
    void printsIdsAsAJsonArrayWithAddedTokensMatched(@TempDir Path dir) throws IOException {
        writeTinyTokenizer(dir);
        // "ab" → 256; " ab" → Ġ (byte 32) + "ab"; "<|x|>" → 300.
        var r = run("tokenize", "--tokenizer", dir.toString(), "ab ab<|x|>");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals("[256, 32, 256, 300]", r.out().strip());
    }

    @Test
    void emptyTextPrintsAnEmptyArray(@TempDir Path dir) throws IOException {
        writeTinyTokenizer(dir);
        var r = run("tokenize", "--tokenizer", dir.toString(), "");
        assertEquals("[]", r.out().strip());
    }

    @Test
    void aFolderWithoutATokenizerIsAnErrorNamingIt(@TempDir Path dir) {
        var r = run("tokenize", "--tokenizer", dir.toString(), "x");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains(dir.toString()) && r.err().contains("tokenizer.json"), r.err());
    }
}

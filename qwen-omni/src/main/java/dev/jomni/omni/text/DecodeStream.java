package dev.jomni.omni.text;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Decodes generated tokens one at a time. Byte-level tokens can end inside a UTF-8 sequence (an
 * emoji is often three tokens), so each step returns only the text whose bytes are complete and
 * keeps the rest for the next token; the pieces concatenate to {@link Tokenizer#decode} of all the
 * ids. Not thread-safe: one per generated sequence.
 */
public final class DecodeStream {
    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    DecodeStream(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /** The text that token {@code id} completes (possibly empty). */
    public String step(int id) {
        tokenizer.appendBytes(id, skipSpecialTokens, pending);
        byte[] bytes = pending.toByteArray();
        int cut = completePrefix(bytes);
        pending.reset();
        pending.write(bytes, cut, bytes.length - cut);
        return new String(bytes, 0, cut, StandardCharsets.UTF_8);
    }

    /** Whatever is left, an unfinished sequence becoming U+FFFD; the stream is then empty. */
    public String flush() {
        String rest = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return rest;
    }

    /**
     * The length of the longest prefix that does not end inside a UTF-8 sequence still missing
     * bytes. Invalid bytes count as complete: the decoder replaces them at once, as decode would.
     */
    static int completePrefix(byte[] b) {
        int n = b.length;
        for (int i = n - 1; i >= Math.max(0, n - 4); i--) {
            int v = b[i] & 0xFF;
            if ((v & 0xC0) == 0x80) continue;             // continuation byte: look further back
            int length = v >= 0xF8 ? 1 : v >= 0xF0 ? 4 : v >= 0xE0 ? 3 : v >= 0xC0 ? 2 : 1;   // 0xF8+: invalid
            return n - i < length ? i : n;
        }
        return n;
    }
}

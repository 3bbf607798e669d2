package dev.jomni.omni.text;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits text at added tokens, leftmost match first and the longest token at that position (the
 * aho-corasick {@code LeftmostLongest} order Hugging Face tokenizers uses), honouring each token's
 * {@code lstrip}, {@code rstrip} and {@code single_word} flags.
 */
final class AddedTokenMatcher {
    /** A piece of the text: an added token's id, or text (id -1) still to be tokenized. */
    record Segment(int id, String text) {
        boolean isToken() {
            return id >= 0;
        }
    }

    private final Map<Character, List<AddedToken>> byFirstChar = new HashMap<>();

    AddedTokenMatcher(List<AddedToken> tokens) {
        for (var t : tokens) {
            if (t.content().isEmpty()) continue;
            byFirstChar.computeIfAbsent(t.content().charAt(0), k -> new ArrayList<>()).add(t);
        }
        for (var list : byFirstChar.values()) list.sort(Comparator.comparingInt((AddedToken t) -> -t.content().length()));
    }

    boolean isEmpty() {
        return byFirstChar.isEmpty();
    }

    List<Segment> split(String text) {
        var out = new ArrayList<Segment>();
        int emitted = 0, from = 0;
        while (from < text.length()) {
            int start = -1;
            AddedToken match = null;
            for (int i = from; i < text.length() && match == null; i++) {
                var candidates = byFirstChar.get(text.charAt(i));
                if (candidates == null) continue;
                for (var t : candidates) {
                    if (text.startsWith(t.content(), i)) {
                        match = t;
                        start = i;
                        break;
                    }
                }
            }
            if (match == null) break;
            int stop = start + match.content().length();
            // As in tokenizers, a match that is not a single word is dropped, not retried shorter.
            if (match.singleWord() && !isSingleWord(text, start, stop)) {
                from = stop;
                continue;
            }
            if (match.lstrip()) {
                while (start > emitted && isWhiteSpace(text.codePointBefore(start))) start -= Character.charCount(text.codePointBefore(start));
            }
            if (match.rstrip()) {
                while (stop < text.length() && isWhiteSpace(text.codePointAt(stop))) stop += Character.charCount(text.codePointAt(stop));
            }
            if (emitted < start) out.add(new Segment(-1, text.substring(emitted, start)));
            out.add(new Segment(match.id(), match.content()));
            emitted = from = stop;
        }
        if (emitted < text.length()) out.add(new Segment(-1, text.substring(emitted)));
        return out;
    }

    /** Unicode White_Space (Rust's {@code char::is_whitespace}); Java's isWhitespace leaves out no-break spaces. */
    static boolean isWhiteSpace(int cp) {
        return Character.isSpaceChar(cp) || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85;
    }

    private static boolean isSingleWord(String text, int start, int stop) {
        boolean leftOk = start == 0 || !isWordChar(text.codePointBefore(start));
        boolean rightOk = stop == text.length() || !isWordChar(text.codePointAt(stop));
        return leftOk && rightOk;
    }

    /** Rust's {@code char::is_alphanumeric() || c == '_'}, as tokenizers' {@code ends_with_word} uses. */
    private static boolean isWordChar(int cp) {
        return Character.isLetterOrDigit(cp) || cp == '_';
    }
}

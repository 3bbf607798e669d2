package dev.jomni.train;

/**
 * Python's string semantics where the seed pipeline's behaviour depends on them. Python's
 * {@code str.strip()} removes every character for which {@code isspace()} holds, NBSP and the other
 * Unicode space separators included; Java's {@link String#strip()} keeps U+00A0, U+2007 and U+202F.
 */
public final class PythonText {
    private PythonText() {}

    /** Python's {@code str.isspace()} for one char: whitespace, any Unicode space separator, or NEL. */
    public static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u0085';
    }

    /** Python's {@code s.strip()}. */
    public static String strip(String s) {
        int start = 0, end = s.length();
        while (start < end && isSpace(s.charAt(start))) start++;
        while (end > start && isSpace(s.charAt(end - 1))) end--;
        return s.substring(start, end);
    }

    /** Python's {@code s.rstrip(ch)}. */
    public static String rstrip(String s, char ch) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == ch) end--;
        return s.substring(0, end);
    }

    /** Python's {@code len(s)}: code points, not UTF-16 units. */
    public static int len(String s) {
        return s.codePointCount(0, s.length());
    }
}

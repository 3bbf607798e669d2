package dev.jomni.omni.text;

import java.util.ArrayList;
import java.util.List;

/**
 * Splits a Jinja template into text and tag tokens, with the whitespace rules transformers compiles
 * chat templates with: {@code trim_blocks} (the newline after a block or comment tag goes),
 * {@code lstrip_blocks} (spaces and tabs before a block or comment tag on its own line go), the
 * {@code -} and {@code +} markers, and one trailing newline of the template dropped
 * ({@code keep_trailing_newline=False}).
 */
final class JinjaLexer {
    enum Type { TEXT, VAR_BEGIN, VAR_END, BLOCK_BEGIN, BLOCK_END, NAME, STRING, INT, FLOAT, OP, EOF }

    record Token(Type type, String text, Object value, int line) {
        boolean is(Type t, String s) {
            return type == t && text.equals(s);
        }

        boolean isOp(String s) {
            return is(Type.OP, s);
        }

        boolean isName(String s) {
            return is(Type.NAME, s);
        }
    }

    private static final String[] OPERATORS = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
        "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"};

    private final String src;
    private final List<Token> out = new ArrayList<>();
    private int pos;
    private int countedTo, countedLines = 1;

    private JinjaLexer(String src) {
        this.src = src.endsWith("\n") ? src.substring(0, src.length() - 1) : src;
    }

    static List<Token> tokenize(String source) {
        var lexer = new JinjaLexer(source);
        lexer.run();
        return lexer.out;
    }

    private void run() {
        boolean lineStarting = true;
        while (pos < src.length()) {
            int tag = nextTagStart(pos);
            String text = src.substring(pos, tag < 0 ? src.length() : tag);
            if (tag < 0) {
                emitText(text);
                break;
            }
            char kind = src.charAt(tag + 1);
            char sign = tag + 2 < src.length() ? src.charAt(tag + 2) : 0;
            if (sign == '-') {
                text = stripTrailing(text);
            } else if (sign != '+' && kind != '{') {
                int lineStart = text.lastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && isBlank(text, lineStart)) text = text.substring(0, lineStart);
            }
            emitText(text);
            pos = tag + 2 + (sign == '-' || sign == '+' ? 1 : 0);
            switch (kind) {
                case '#' -> {
                    int end = src.indexOf("#}", pos);
                    if (end < 0) throw error("unclosed comment");
                    boolean strip = src.charAt(end - 1) == '-' && end - 1 >= pos;
                    boolean keep = src.charAt(end - 1) == '+' && end - 1 >= pos;
                    pos = end + 2;
                    pos = afterTag(strip, keep, true);
                }
                case '{' -> {
                    out.add(new Token(Type.VAR_BEGIN, "{{", null, line()));
                    boolean strip = expression("}}");
                    pos = afterTag(strip, false, false);
                }
                default -> {
                    out.add(new Token(Type.BLOCK_BEGIN, "{%", null, line()));
                    int blockStart = out.size();
                    boolean strip = expression("%}");
                    boolean keep = src.charAt(pos - 3) == '+';
                    pos = afterTag(strip, keep, true);
                    if (out.size() == blockStart + 2 && out.get(blockStart).isName("raw")) raw();
                }
            }
            lineStarting = pos > 0 && src.charAt(pos - 1) == '\n';
        }
        out.add(new Token(Type.EOF, "", null, line()));
    }

    /** {@code {% raw %}…{% endraw %}}: the body is text; the raw/endraw tokens are dropped. */
    private void raw() {
        out.removeLast();
        out.removeLast();
        out.removeLast();
        var m = java.util.regex.Pattern.compile("\\{%([-+]?)\\s*endraw\\s*([-+]?)%}").matcher(src);
        if (!m.find(pos)) throw error("unclosed raw block");
        String body = src.substring(pos, m.start());
        if (m.group(1).equals("-")) body = stripTrailing(body);
        emitText(body);
        pos = m.end();
        pos = afterTag(m.group(2).equals("-"), m.group(2).equals("+"), true);
    }

    private int afterTag(boolean stripAfter, boolean keepNewline, boolean isBlock) {
        if (stripAfter) {
            while (pos < src.length() && Character.isWhitespace(src.charAt(pos))) pos++;
        } else if (isBlock && !keepNewline && pos < src.length() && src.charAt(pos) == '\n') {
            pos++;
        }
        return pos;
    }

    private int nextTagStart(int from) {
        for (int i = src.indexOf('{', from); i >= 0 && i + 1 < src.length(); i = src.indexOf('{', i + 1)) {
            char c = src.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    /** Tokens of a tag's expression up to its end marker; returns whether the end had a {@code -}. */
    private boolean expression(String end) {
        int depth = 0;   // open brackets: as in Jinja2, "}}" inside {'a': {}} does not end the tag
        while (true) {
            while (pos < src.length() && Character.isWhitespace(src.charAt(pos))) pos++;
            if (pos >= src.length()) throw error("unclosed tag, expected " + end);
            if (depth == 0 && (src.startsWith("-" + end, pos) || src.startsWith("+" + end, pos))) {
                boolean strip = src.charAt(pos) == '-';
                pos += 1 + end.length();
                out.add(new Token(end.equals("}}") ? Type.VAR_END : Type.BLOCK_END, end, null, line()));
                return strip;
            }
            if (depth == 0 && src.startsWith(end, pos)) {
                pos += end.length();
                out.add(new Token(end.equals("}}") ? Type.VAR_END : Type.BLOCK_END, end, null, line()));
                return false;
            }
            char c = src.charAt(pos);
            if (c == '\'' || c == '"') {
                string(c);
            } else if (Character.isDigit(c)) {
                number();
            } else if (Character.isLetter(c) || c == '_') {
                int start = pos;
                while (pos < src.length() && (Character.isLetterOrDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
                out.add(new Token(Type.NAME, src.substring(start, pos), null, line()));
            } else {
                String op = null;
                for (var o : OPERATORS) {
                    if (src.startsWith(o, pos)) {
                        op = o;
                        break;
                    }
                }
                if (op == null) throw error("unexpected character '" + c + "'");
                if (op.equals("(") || op.equals("[") || op.equals("{")) depth++;
                if ((op.equals(")") || op.equals("]") || op.equals("}")) && depth > 0) depth--;
                pos += op.length();
                out.add(new Token(Type.OP, op, null, line()));
            }
        }
    }

    private void number() {
        int start = pos;
        while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
        boolean isFloat = false;
        if (pos + 1 < src.length() && src.charAt(pos) == '.' && Character.isDigit(src.charAt(pos + 1))) {
            isFloat = true;
            pos++;
            while (pos < src.length() && (Character.isDigit(src.charAt(pos)) || src.charAt(pos) == '_')) pos++;
        }
        if (pos < src.length() && (src.charAt(pos) == 'e' || src.charAt(pos) == 'E')) {
            int save = pos++;
            if (pos < src.length() && (src.charAt(pos) == '+' || src.charAt(pos) == '-')) pos++;
            if (pos < src.length() && Character.isDigit(src.charAt(pos))) {
                isFloat = true;
                while (pos < src.length() && Character.isDigit(src.charAt(pos))) pos++;
            } else {
                pos = save;
            }
        }
        String text = src.substring(start, pos).replace("_", "");
        out.add(isFloat ? new Token(Type.FLOAT, text, Double.parseDouble(text), line())
                : new Token(Type.INT, text, Long.parseLong(text), line()));
    }

    /** A Python string literal with its escapes. */
    private void string(char quote) {
        int startLine = line();
        var sb = new StringBuilder();
        pos++;
        while (true) {
            if (pos >= src.length()) throw error("unclosed string literal");
            char c = src.charAt(pos++);
            if (c == quote) break;
            if (c != '\\' || pos >= src.length()) {
                sb.append(c);
                continue;
            }
            char e = src.charAt(pos++);
            switch (e) {
                case 'n' -> sb.append('\n');
                case 't' -> sb.append('\t');
                case 'r' -> sb.append('\r');
                case '0' -> sb.append('\0');
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'v' -> sb.append('\u000B');
                case 'a' -> sb.append('\u0007');
                case '\\', '\'', '"' -> sb.append(e);
                case '\n' -> { }
                case 'x' -> sb.appendCodePoint(hex(2));
                case 'u' -> sb.appendCodePoint(hex(4));
                case 'U' -> sb.appendCodePoint(hex(8));
                default -> sb.append('\\').append(e);   // Python keeps unknown escapes as written
            }
        }
        out.add(new Token(Type.STRING, sb.toString(), sb.toString(), startLine));
    }

    private int hex(int digits) {
        if (pos + digits > src.length()) throw error("truncated escape in string literal");
        int v = Integer.parseInt(src.substring(pos, pos + digits), 16);
        pos += digits;
        return v;
    }

    private void emitText(String text) {
        if (!text.isEmpty()) out.add(new Token(Type.TEXT, text, text, line()));
    }

    /** The 1-based line of the current position; only errors and tokens need it, so it is counted on demand. */
    private int line() {
        if (pos < countedTo) {
            countedTo = 0;
            countedLines = 1;
        }
        for (; countedTo < pos && countedTo < src.length(); countedTo++) if (src.charAt(countedTo) == '\n') countedLines++;
        return countedLines;
    }

    private static String stripTrailing(String s) {
        int end = s.length();
        while (end > 0 && Character.isWhitespace(s.charAt(end - 1))) end--;
        return s.substring(0, end);
    }

    private static boolean isBlank(String s, int from) {
        if (from >= s.length()) return false;
        for (int i = from; i < s.length(); i++) if (!Character.isWhitespace(s.charAt(i))) return false;
        return true;
    }

    private JinjaException error(String what) {
        return new JinjaException("line " + line() + ": " + what);
    }
}

package dev.jomni.train.score;

import dev.jomni.train.PythonText;
import dev.jomni.train.data.AudioQa;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Whether a predicted answer is right. One definition everywhere: a prediction is right when it maps to
 * exactly one choice and that choice is the answer ({@link Matching#STRICT}); a missing, empty or
 * ambiguous prediction is wrong. {@link Matching#LEGACY_SUBSTRING} reproduces {@code rest/filter.py}.
 */
public final class Scorer {
    private static final Pattern LETTER_ONLY = Pattern.compile("^\\(?([a-z])\\)?[.:]?$");
    private static final Pattern LETTER_AND_TEXT = Pattern.compile("^(?:\\(([a-z])\\)|([a-z])[.):])\\s*(.+)$", Pattern.DOTALL);
    private static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern LEGACY_PAREN = Pattern.compile("^\\s*\\([A-Da-d]\\)\\s*", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern LEGACY_DOT = Pattern.compile("^\\s*[A-Da-d]\\.\\s*", Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern LEGACY_PRED_LETTER = Pattern.compile("^([A-Da-d])$");
    private static final Pattern LEGACY_GT_LETTER = Pattern.compile("^\\(([A-Da-d])\\)");

    private Scorer() {}

    /** Whether {@code prediction} is right for {@code item} under {@code matching}. */
    public static boolean isCorrect(String prediction, AudioQa item, Matching matching) {
        if (!item.scored() || prediction == null || PythonText.strip(prediction).isEmpty()) return false;
        return switch (matching) {
            case STRICT -> choiceOf(prediction, item.choices()) == item.answerIndex();
            case LEGACY_SUBSTRING -> legacyMatch(prediction, item.answer());
        };
    }

    /**
     * The one choice {@code prediction} names, or -1. Tried in order, on texts trimmed, lower-cased, with
     * runs of whitespace made one space, surrounding quotes and trailing dots removed:
     * <ol>
     * <li>the text equals one choice's;
     * <li>a letter alone ({@code B}, {@code (B)}, {@code B.}) names the choice at that position;
     * <li>a letter and a text ({@code (B) Vivace}, {@code B. Vivace}): the letter's choice, unless the
     *     text names a different choice (a contradiction, so -1);
     * <li>exactly one choice's text occurs in the prediction as whole words, not counting occurrences
     *     inside another occurring choice's ({@code the answer is grand piano} names {@code grand piano},
     *     not {@code piano}); two or more such choices is ambiguous, so -1.
     * </ol>
     * A prediction that is part of a choice names nothing: {@code dog} is not {@code dog barking}.
     */
    public static int choiceOf(String prediction, List<String> choices) {
        String p = normalise(prediction);
        if (p.isEmpty()) return -1;
        var norm = new ArrayList<String>(choices.size());
        for (String c : choices) norm.add(normalise(c));
        int exact = uniqueIndex(norm, p);
        if (exact != -1) return exact < 0 ? -1 : exact;
        Matcher m = LETTER_ONLY.matcher(p);
        if (m.matches()) {
            int i = m.group(1).charAt(0) - 'a';
            return i < choices.size() ? i : -1;
        }
        m = LETTER_AND_TEXT.matcher(p);
        if (m.matches()) {
            int byLetter = (m.group(1) != null ? m.group(1) : m.group(2)).charAt(0) - 'a';
            if (byLetter < choices.size()) {
                int byText = textChoice(m.group(3), norm);
                return byText < 0 || byText == byLetter ? byLetter : -1;
            }
        }
        return textChoice(p, norm);
    }

    /** Steps 1 and 4 of {@link #choiceOf} on normalised texts. */
    private static int textChoice(String p, List<String> norm) {
        int exact = uniqueIndex(norm, p);
        if (exact != -1) return exact < 0 ? -1 : exact;
        // spans[i]: where choice i occurs in p as whole words
        var spans = new ArrayList<List<int[]>>();
        for (String c : norm) spans.add(c.isEmpty() ? List.of() : wordOccurrences(p, c));
        int found = -1;
        for (int i = 0; i < norm.size(); i++) {
            if (spans.get(i).isEmpty() || coveredByOther(i, spans)) continue;
            if (found >= 0) return -1;
            found = i;
        }
        return found;
    }

    /** Index of the one element equal to {@code p}; -1 for none, -2 for several (duplicated choices). */
    private static int uniqueIndex(List<String> norm, String p) {
        int found = -1;
        for (int i = 0; i < norm.size(); i++) {
            if (!norm.get(i).equals(p)) continue;
            if (found >= 0) return -2;
            found = i;
        }
        return found;
    }

    private static List<int[]> wordOccurrences(String p, String c) {
        var out = new ArrayList<int[]>();
        for (int at = p.indexOf(c); at >= 0; at = p.indexOf(c, at + 1)) {
            int end = at + c.length();
            boolean startOk = at == 0 || !Character.isLetterOrDigit(p.charAt(at - 1)) || !Character.isLetterOrDigit(c.charAt(0));
            boolean endOk = end == p.length() || !Character.isLetterOrDigit(p.charAt(end))
                    || !Character.isLetterOrDigit(c.charAt(c.length() - 1));
            if (startOk && endOk) out.add(new int[] {at, end});
        }
        return out;
    }

    /** Whether every occurrence of choice i lies inside an occurrence of a longer choice. */
    private static boolean coveredByOther(int i, List<List<int[]>> spans) {
        for (int[] s : spans.get(i)) {
            boolean covered = false;
            for (int j = 0; j < spans.size() && !covered; j++) {
                if (j == i) continue;
                for (int[] o : spans.get(j))
                    if (o[0] <= s[0] && s[1] <= o[1] && o[1] - o[0] > s[1] - s[0]) { covered = true; break; }
            }
            if (!covered) return false;
        }
        return true;
    }

    static String normalise(String s) {
        String t = WHITESPACE.matcher(PythonText.strip(s)).replaceAll(" ").toLowerCase(Locale.ROOT);
        while (t.length() >= 2 && isQuote(t.charAt(0)) && t.charAt(t.length() - 1) == closing(t.charAt(0)))
            t = t.substring(1, t.length() - 1).strip();
        return PythonText.strip(PythonText.rstrip(t, '.'));
    }

    private static boolean isQuote(char c) { return c == '"' || c == '\'' || c == '`' || c == '\u201c' || c == '\u2018'; }

    private static char closing(char open) {
        return switch (open) {
            case '\u201c' -> '\u201d';
            case '\u2018' -> '\u2019';
            default -> open;
        };
    }

    /** {@code rest/filter.py}'s {@code check_answer_match(pred, gt, case_sensitive=False)}. */
    static boolean legacyMatch(String prediction, String groundTruth) {
        String p = legacyNormalise(prediction), g = legacyNormalise(groundTruth);
        if (p.equals(g)) return true;
        Matcher pl = LEGACY_PRED_LETTER.matcher(p);
        Matcher gl = LEGACY_GT_LETTER.matcher(groundTruth);
        boolean gtLetter = gl.find();
        if (pl.find() && gtLetter) return pl.group(1).equalsIgnoreCase(gl.group(1));
        if (gtLetter && p.toUpperCase(Locale.ROOT).equals(gl.group(1).toUpperCase(Locale.ROOT))) return true;
        if (PythonText.len(g) > 2 && p.contains(g)) return true;
        return PythonText.len(p) > 2 && g.contains(p);
    }

    private static String legacyNormalise(String s) {
        String t = PythonText.strip(s);
        t = LEGACY_PAREN.matcher(t).replaceFirst("");
        t = LEGACY_DOT.matcher(t).replaceFirst("");
        return PythonText.strip(t.toLowerCase(Locale.ROOT));
    }
}

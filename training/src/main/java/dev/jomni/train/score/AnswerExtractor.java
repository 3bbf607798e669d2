package dev.jomni.train.score;

import dev.jomni.train.PythonText;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The answer a generation states, by {@code rest/generate.py}'s {@code extract_final_answer} patterns,
 * kept unchanged so that numbers stay comparable with the original's. Case-insensitive; the first hit wins:
 * <ol>
 * <li>{@code ANSWER:\s*(.+?)(?:\n|$)}: trimmed, trailing dots stripped, a leading {@code (A)}…{@code (D)}
 *     (upper case only) dropped; used when something is left;
 * <li>{@code (the) (correct) answer is|should be (X) text};
 * <li>{@code therefore|thus|so, (the) (correct) answer|choice is (X) text} (cannot fire: 2 matches first);
 * <li>{@code (X) text} ending at a dot or the end.
 * </ol>
 * No hit gives "". The extracted text is not mapped to a choice here; {@link Scorer} does that.
 *
 * <p>Porting notes: Python's {@code \s} and case folding are Unicode's
 * ({@code UNICODE_CHARACTER_CLASS | UNICODE_CASE}); its {@code .} excludes only {@code \n} and its
 * {@code $} also matches before a final {@code \n} ({@code UNIX_LINES}).
 */
public final class AnswerExtractor {
    private static final int PY = Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNIX_LINES;
    private static final int PY_I = PY | Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE;
    private static final Pattern ANSWER_LINE = Pattern.compile("ANSWER:\\s*(.+?)(?:\\n|$)", PY_I);
    private static final Pattern LEADING_LETTER = Pattern.compile("^\\([A-D]\\)\\s*", PY);
    private static final List<Pattern> FALLBACKS = List.of(
            Pattern.compile("(?:the\\s+)?(?:correct\\s+)?answer\\s+(?:is|should\\s+be)[:\\s]*\\([A-D]\\)\\s*([A-Za-z][A-Za-z\\s]+)", PY_I),
            Pattern.compile("(?:therefore|thus|so)[,\\s]+(?:the\\s+)?(?:correct\\s+)?(?:answer|choice)\\s+(?:is|should\\s+be)[:\\s]*"
                    + "\\([A-D]\\)\\s*([A-Za-z][A-Za-z\\s]+)", PY_I),
            Pattern.compile("\\([A-D]\\)\\s+([A-Za-z][A-Za-z\\s]+?)(?:\\.|\\s*$)", PY_I));

    private AnswerExtractor() {}

    /** The stated answer in {@code answerText} (the part after {@code </think>}), or "". */
    public static String extract(String answerText) {
        if (answerText.isEmpty()) return "";
        Matcher m = ANSWER_LINE.matcher(answerText);
        if (m.find()) {
            String a = PythonText.rstrip(PythonText.strip(m.group(1)), '.');
            a = LEADING_LETTER.matcher(a).replaceFirst("");
            if (!a.isEmpty()) return a;
        }
        for (Pattern p : FALLBACKS) {
            Matcher f = p.matcher(answerText);
            if (f.find()) {
                String a = PythonText.rstrip(PythonText.strip(f.group(1)), '.');
                if (!a.isEmpty()) return a;
            }
        }
        return "";
    }
}

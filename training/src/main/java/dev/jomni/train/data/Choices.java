package dev.jomni.train.data;

import dev.jomni.train.PythonText;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The options a seed question lists in its own text. Two layouts occur in the original project's data:
 * {@code (A) text} lines (AudioSkills MCQ, {@code augment_countingqa_mcq.py}) and a {@code Choices:}
 * line followed by {@code - text} lines (the filtered ReST data, e.g. {@code regression_finetune_dataset.json}).
 */
final class Choices {
    private static final Pattern LETTERED = Pattern.compile("^\\s*\\(([A-Z])\\)\\s*(.*?)\\s*$");
    private static final Pattern DASHED = Pattern.compile("^\\s*-\\s+(.*?)\\s*$");
    private static final Pattern DASH_HEADER = Pattern.compile("^\\s*choices\\s*:\\s*$", Pattern.CASE_INSENSITIVE);

    private Choices() {}

    /** Where the options sit in a question: their texts and the line range [first, end) they occupy. */
    record Block(List<String> texts, int firstLine, int endLine) {}

    /**
     * The options listed in {@code question}, or null when it lists none.
     *
     * @throws IllegalArgumentException when the lettered lines do not run A, B, C, … without a gap
     */
    static Block parse(String question) {
        String[] lines = question.split("\n", -1);
        var texts = new ArrayList<String>();
        int first = -1, end = -1;
        for (int i = 0; i < lines.length; i++) {
            Matcher m = LETTERED.matcher(lines[i]);
            if (!m.matches()) continue;
            char expected = (char) ('A' + texts.size());
            if (m.group(1).charAt(0) != expected)
                throw new IllegalArgumentException("option line '" + lines[i].strip() + "' where (" + expected
                        + ") was expected: options must run (A), (B), … in order");
            if (m.group(2).isEmpty()) throw new IllegalArgumentException("option (" + expected + ") has no text");
            if (first < 0) first = i;
            end = i + 1;
            texts.add(m.group(2));
        }
        if (!texts.isEmpty()) return new Block(texts, first, end);
        for (int i = 0; i < lines.length; i++) {
            if (!DASH_HEADER.matcher(lines[i]).matches()) continue;
            int j = i + 1;
            while (j < lines.length) {
                Matcher m = DASHED.matcher(lines[j]);
                if (!m.matches() || m.group(1).isEmpty()) break;
                texts.add(m.group(1));
                j++;
            }
            if (!texts.isEmpty()) return new Block(texts, i + 1, j);
        }
        return null;
    }

    /**
     * The question without its option block: the lines before the options, minus a header line that
     * ends in ':' ({@code Choose the correct option:}, {@code Choices:}), then trimmed; any text after
     * the block is kept. {@code question} must already be cleaned of {@code <sound>} tags.
     */
    static String stem(String question) {
        Block b = parse(question);
        if (b == null) return question;
        String[] lines = question.split("\n", -1);
        int headEnd = b.firstLine();
        int last = headEnd - 1;
        while (last >= 0 && lines[last].isBlank()) last--;
        if (last >= 0 && lines[last].strip().endsWith(":")) headEnd = last;
        var sb = new StringBuilder(String.join("\n", List.of(lines).subList(0, headEnd)));
        String tail = String.join("\n", List.of(lines).subList(b.endLine(), lines.length));
        if (!tail.isBlank()) sb.append("\n").append(tail);
        return PythonText.strip(sb.toString());
    }

    /** {@code (A) first\n(B) second…}, the AudioSkills layout. */
    static String lettered(List<String> choices) {
        var sb = new StringBuilder();
        for (int i = 0; i < choices.size(); i++) {
            if (i > 0) sb.append('\n');
            sb.append('(').append((char) ('A' + i)).append(") ").append(choices.get(i));
        }
        return sb.toString();
    }
}

package dev.jomni.train.score;

import dev.jomni.train.PythonText;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A generation split into its reasoning and the text after it, as {@code rest/generate.py}'s
 * {@code parse_thinking_and_answer} does:
 * <ul>
 * <li>{@code <think>(.*?)</think>} found (dot matches newlines): thinking is the group, the answer text
 *     everything after the <b>first</b> {@code </think>} of the whole text;
 * <li>else, {@code <think>} present (a truncated generation): thinking is everything after it, answer "";
 * <li>else thinking is "" and the answer text is everything.
 * </ul>
 * All parts are trimmed with Python's {@code strip()}. One addition: a text with {@code </think>} but no
 * {@code <think>} (a template that put the opening tag into the prompt) splits at the first
 * {@code </think>}; the original gave such a text no thinking at all and kept the tag in the answer.
 */
public record Completion(String thinking, String answerText) {
    private static final Pattern THINK = Pattern.compile("<think>(.*?)</think>", Pattern.DOTALL);

    public static Completion split(String raw) {
        Matcher m = THINK.matcher(raw);
        if (m.find()) {
            int close = raw.indexOf("</think>");
            return new Completion(PythonText.strip(m.group(1)), PythonText.strip(raw.substring(close + "</think>".length())));
        }
        int open = raw.indexOf("<think>");
        if (open >= 0) return new Completion(PythonText.strip(raw.substring(open + "<think>".length())), "");
        int close = raw.indexOf("</think>");
        if (close >= 0)
            return new Completion(PythonText.strip(raw.substring(0, close)), PythonText.strip(raw.substring(close + "</think>".length())));
        return new Completion("", PythonText.strip(raw));
    }
}

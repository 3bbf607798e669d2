package dev.jomni.train.data;

import dev.jomni.train.PythonText;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One multiple-choice audio question, whatever file form it came from (see {@link Dataset}).
 *
 * @param id                the record's {@code id}
 * @param audio             the resolved audio file (absolute, normalised)
 * @param question          the question as written in the file ({@code <sound>} tags and all), or the
 *                          last human turn of {@code conversations} when {@code question} is empty
 * @param choicesInQuestion whether the question text itself lists the choices ({@code (A) text} lines
 *                          or a {@code Choices:} list), as the seed records do; MMAR questions do not
 * @param choices           the option texts, without letters
 * @param answerIndex       the index in {@code choices} of the right option; -1 for a record kept without
 *                          a ground truth ({@link LoadOptions#requireAnswers()} off), which is never scored
 * @param answer            the ground-truth answer as written in the file ("" when there is none)
 * @param response          a reference response ({@code <think>…</think>} then {@code ANSWER: …}), the
 *                          SFT target of filtered ReST data; "" when the record has none
 * @param tags              the record's other scalar fields: {@code category}, {@code sub-category}
 *                          ({@code sub_category} is read as that), {@code modality}, {@code language},
 *                          {@code source}, {@code dataset}, …
 */
public record AudioQa(String id, Path audio, String question, boolean choicesInQuestion, List<String> choices,
                      int answerIndex, String answer, String response, Map<String, String> tags) {
    public AudioQa {
        Objects.requireNonNull(id, "id");
        choices = List.copyOf(choices);
        tags = Map.copyOf(tags);
        if (answerIndex < -1 || answerIndex >= choices.size())
            throw new IllegalArgumentException(id + ": answerIndex " + answerIndex + " outside " + choices.size() + " choices");
    }

    /** The question as the seed pipeline feeds it to the model: {@code <sound>} tags removed, then trimmed. */
    public String cleanQuestion() {
        return PythonText.strip(question.replace("<sound>", ""));
    }

    /** Whether the record has a ground truth to score against. */
    public boolean scored() { return answerIndex >= 0; }

    /** The right option's text as listed in {@code choices}. */
    public String answerChoice() {
        if (!scored()) throw new IllegalStateException("record '" + id + "' has no ground truth");
        return choices.get(answerIndex);
    }

    /** The right option's letter: A for the first choice. */
    public char answerLetter() {
        if (!scored()) throw new IllegalStateException("record '" + id + "' has no ground truth");
        return (char) ('A' + answerIndex);
    }

    /** {@code category}, or "" when the record has none. */
    public String category() { return tags.getOrDefault("category", ""); }

    /** {@code sub-category}, or "" when the record has none. */
    public String subCategory() { return tags.getOrDefault("sub-category", ""); }

    /** A tag's value, or null when the record has none. */
    public String tag(String name) { return tags.get(name); }
}

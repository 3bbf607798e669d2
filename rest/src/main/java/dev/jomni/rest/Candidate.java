package dev.jomni.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.train.score.AnswerExtractor;
import dev.jomni.train.score.Completion;

/**
 * One generated answer as {@code rest/generate.py} stores it: the raw output, its split at {@code </think>}
 * ({@link Completion}) and the answer extracted from the text after it ({@link AnswerExtractor}).
 */
public record Candidate(String rawOutput, String thinkingPrediction, String answerText, String answerPrediction) {
    /** Splits and extracts {@code raw} as the original does. */
    public static Candidate of(String raw) {
        Completion c = Completion.split(raw);
        return new Candidate(raw, c.thinking(), c.answerText(), AnswerExtractor.extract(c.answerText()));
    }

    void write(ObjectNode o) {
        o.put("raw_output", rawOutput).put("thinking_prediction", thinkingPrediction).put("answer_text", answerText)
                .put("answer_prediction", answerPrediction);
    }

    static Candidate read(JsonNode o) {
        return new Candidate(o.path("raw_output").asText(""), o.path("thinking_prediction").asText(""), o.path("answer_text").asText(""),
                o.path("answer_prediction").asText(""));
    }
}

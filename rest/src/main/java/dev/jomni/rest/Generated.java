package dev.jomni.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * One line of {@code generations.jsonl}, the original's record: {@code {id, sound, audio_dir, question (raw),
 * ground_truth, candidates: [{raw_output, thinking_prediction, answer_text, answer_prediction}], num_candidates}}.
 *
 * @param audioDir the record's own {@code audio_dir}, or null when it has none (written as JSON null, as the
 *                 original's {@code item.get("audio_dir")})
 */
public record Generated(String id, String sound, String audioDir, String question, String groundTruth, List<Candidate> candidates) {
    static final ObjectMapper JSON = new ObjectMapper();

    public Generated {
        candidates = List.copyOf(candidates);
    }

    /** The JSON line (no newline). */
    String toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", id).put("sound", sound);
        if (audioDir == null) o.putNull("audio_dir");
        else o.put("audio_dir", audioDir);
        o.put("question", question).put("ground_truth", groundTruth);
        ArrayNode cs = o.putArray("candidates");
        for (Candidate c : candidates) c.write(cs.addObject());
        o.put("num_candidates", candidates.size());
        return o.toString();
    }

    static Generated read(JsonNode o) {
        List<Candidate> cs = new ArrayList<>();
        for (JsonNode c : o.path("candidates")) cs.add(Candidate.read(c));
        return new Generated(o.path("id").asText(), o.path("sound").asText(""), o.path("audio_dir").isNull() || o.path("audio_dir").isMissingNode()
                ? null : o.path("audio_dir").asText(), o.path("question").asText(""), o.path("ground_truth").asText(""), cs);
    }
}

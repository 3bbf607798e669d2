package dev.jomni.train.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.train.PythonText;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/**
 * The challenge's submission: {@code result.jsonl}, one {@code {"id", "thinking_prediction",
 * "answer_prediction"}} object per line, handed in as a zip holding that single file at its top level.
 */
public final class Submission {
    /** {@code thinking_prediction} must be shorter than this, in characters (code points). */
    public static final int MAX_THINKING_CHARS = 10_000;
    /**
     * Written for an item whose generation stated no answer: the format forbids an empty
     * {@code answer_prediction}; it names no choice, so it scores as wrong.
     */
    public static final String NO_ANSWER = "(no answer)";
    public static final String ENTRY = "result.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private Submission() {}

    /** Problems found in a submission; valid when there are none. */
    public record Check(int records, List<String> problems) {
        public boolean valid() { return problems.isEmpty(); }
    }

    /**
     * Writes {@code result.jsonl}. A thinking text of {@link #MAX_THINKING_CHARS} or more is cut to fit, and
     * an empty answer becomes {@link #NO_ANSWER}, so the file always passes {@link #check}.
     *
     * @return how many thinking texts were cut
     */
    public static int write(Path file, List<Prediction> predictions) throws IOException {
        int cut = 0;
        var sb = new StringBuilder();
        for (Prediction p : predictions) {
            String thinking = p.thinking();
            if (PythonText.len(thinking) >= MAX_THINKING_CHARS) {
                thinking = thinking.substring(0, thinking.offsetByCodePoints(0, MAX_THINKING_CHARS - 1));
                cut++;
            }
            String answer = PythonText.strip(p.answer()).isEmpty() ? NO_ANSWER : p.answer();
            var node = JSON.createObjectNode().put("id", p.id()).put("thinking_prediction", thinking)
                    .put("answer_prediction", answer);
            sb.append(JSON.writeValueAsString(node)).append('\n');
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        Files.writeString(file, sb, StandardCharsets.UTF_8);
        return cut;
    }

    /** Zips {@code jsonl} as the single deflated top-level entry {@code result.jsonl}. */
    public static void zip(Path jsonl, Path zip) throws IOException {
        try (var out = new ZipOutputStream(Files.newOutputStream(zip))) {
            out.setMethod(ZipOutputStream.DEFLATED);
            out.putNextEntry(new ZipEntry(ENTRY));
            Files.copy(jsonl, out);
            out.closeEntry();
        }
    }

    /**
     * Reads a {@code result.jsonl} (or the one in a submission zip) leniently: answers by id, a missing
     * field read as "". For scoring a file that {@link #check} may reject; the first occurrence of an id
     * wins. Malformed lines are an error naming the file and line.
     */
    public static Map<String, Prediction> read(Path fileOrZip) throws IOException {
        String text = content(fileOrZip, new ArrayList<>());
        if (text == null) throw new IOException(fileOrZip + ": no " + ENTRY + " in the zip");
        var out = new java.util.LinkedHashMap<String, Prediction>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) continue;
            JsonNode n;
            try {
                n = JSON.readTree(lines[i]);
            } catch (JsonProcessingException e) {
                throw new IOException(fileOrZip + ":" + (i + 1) + ": malformed JSON: " + e.getOriginalMessage());
            }
            if (!n.isObject() || !n.path("id").isValueNode())
                throw new IOException(fileOrZip + ":" + (i + 1) + ": not an object with an 'id'");
            String id = n.get("id").asText();
            out.putIfAbsent(id, new Prediction(id, n.path("thinking_prediction").asText(""), n.path("answer_prediction").asText("")));
        }
        return out;
    }

    /**
     * Every problem in a submission, not just the first. The original's checks
     * ({@code validate_results_zip.py}): a zip holds exactly one entry, {@code result.jsonl}, at its top
     * level; each line is a JSON object with an {@code id}, a string {@code thinking_prediction} under
     * {@value #MAX_THINKING_CHARS} characters and a non-empty string {@code answer_prediction}. Added here:
     * an empty file, a non-string or empty id, duplicated ids and, given the dataset's ids, ids that are
     * missing or unknown.
     *
     * @param datasetIds the dataset's ids, or null to skip the checks against it
     */
    public static Check check(Path fileOrZip, Collection<String> datasetIds) throws IOException {
        var problems = new ArrayList<String>();
        String text = content(fileOrZip, problems);
        if (text == null) return new Check(0, problems);
        String name = isZip(fileOrZip) ? fileOrZip + "!" + ENTRY : fileOrZip.toString();
        var firstLine = new HashMap<String, Integer>();
        var seen = new LinkedHashSet<String>();
        int records = 0;
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) continue;
            records++;
            String at = name + ":" + (i + 1);
            JsonNode n;
            try {
                n = JSON.readTree(lines[i]);
            } catch (JsonProcessingException e) {
                problems.add(at + ": invalid JSON: " + e.getOriginalMessage());
                continue;
            }
            if (!n.isObject()) {
                problems.add(at + ": not a JSON object");
                continue;
            }
            JsonNode id = n.get("id");
            String idText = id != null && id.isTextual() ? id.asText() : null;
            String who = at + (idText != null ? ", id '" + idText + "'" : "");
            if (id == null) problems.add(at + ": missing 'id'");
            else if (!id.isTextual()) problems.add(at + ": 'id' must be a string, not " + id.getNodeType());
            else if (idText.isEmpty()) problems.add(at + ": 'id' is empty");
            else {
                Integer first = firstLine.putIfAbsent(idText, i + 1);
                if (first != null) problems.add(who + ": duplicated id, first on line " + first);
                seen.add(idText);
            }
            JsonNode thinking = n.get("thinking_prediction");
            if (thinking == null) problems.add(who + ": missing 'thinking_prediction'");
            else if (!thinking.isTextual()) problems.add(who + ": 'thinking_prediction' must be a string");
            else if (PythonText.len(thinking.asText()) >= MAX_THINKING_CHARS)
                problems.add(who + ": 'thinking_prediction' is " + PythonText.len(thinking.asText()) + " chars (max "
                        + (MAX_THINKING_CHARS - 1) + ")");
            JsonNode answer = n.get("answer_prediction");
            if (answer == null) problems.add(who + ": missing 'answer_prediction'");
            else if (!answer.isTextual()) problems.add(who + ": 'answer_prediction' must be a string");
            else if (answer.asText().isEmpty()) problems.add(who + ": 'answer_prediction' is empty");
        }
        if (records == 0) problems.add(name + ": no records");
        if (datasetIds != null) {
            var known = new LinkedHashSet<>(datasetIds);
            for (String id : seen) if (!known.contains(id)) problems.add(name + ": id '" + id + "' is not in the dataset");
            int missing = 0;
            for (String id : known) {
                if (seen.contains(id)) continue;
                missing++;
                problems.add(name + ": dataset id '" + id + "' has no prediction");
            }
            if (missing > 0) problems.add(name + ": " + missing + " of " + known.size() + " dataset ids have no prediction");
        }
        return new Check(records, problems);
    }

    static boolean isZip(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
        }
    }

    /** The jsonl text of a file or of a zip's single {@code result.jsonl}; null (with problems added) when there is none. */
    private static String content(Path file, List<String> problems) throws IOException {
        if (!Files.isRegularFile(file)) {
            problems.add(file + ": no such file");
            return null;
        }
        if (!isZip(file)) return Files.readString(file, StandardCharsets.UTF_8);
        try (var zip = new ZipFile(file.toFile())) {
            var entries = new ArrayList<String>();
            zip.stream().forEach(e -> entries.add(e.getName()));
            ZipEntry result = zip.getEntry(ENTRY);
            if (entries.size() != 1 || result == null)
                problems.add(file + ": a submission zip must hold exactly one entry, " + ENTRY + ", at its top level; it holds "
                        + entries);
            if (result == null) return null;
            try (InputStream in = zip.getInputStream(result)) {
                var buf = new ByteArrayOutputStream();
                in.transferTo(buf);
                return buf.toString(StandardCharsets.UTF_8);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}

package dev.jomni.train.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.train.PythonText;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A multiple-choice audio dataset in one of the original project's forms, loaded in one call:
 * {@code Dataset.load(Path.of("MMAR-meta.json"))}.
 *
 * <h2>Files</h2>
 * A JSON array of record objects, or JSONL (one object per line; blank lines ignored). The first
 * non-blank character decides: {@code [} is an array, anything else is JSONL.
 *
 * <h2>Records</h2>
 * <ul>
 * <li><b>Seed records</b> (AudioSkills, ReST data): {@code id}, {@code sound}, {@code question},
 *     {@code answer}, optional {@code audio_dir}, {@code conversations}, {@code response},
 *     {@code duration}, {@code dataset}, {@code category}, {@code sub_category}. The question embeds
 *     the options as {@code (A) text} lines (or a {@code Choices:} line and {@code - text} lines).
 * <li><b>Conversation records</b>: when {@code question} is missing or empty, the question is the
 *     <b>last</b> {@code human} turn of {@code conversations} and, if {@code answer} is missing or empty,
 *     the answer is the last {@code gpt} turn (as the original's loaders do).
 * <li><b>MMAR meta records</b>: {@code id}, {@code audio_path}, {@code question}, {@code choices},
 *     {@code answer}, {@code modality}, {@code category}, {@code sub-category}, {@code language},
 *     {@code source}, {@code url}, {@code timestamp}.
 * </ul>
 * Choices come from {@code choices} when present, else from the question's option lines. The answer
 * is an option's text; {@code (B) text} and a bare {@code (B)} are accepted when letter and text agree,
 * and an answer that equals exactly one option after trimming and case folding is accepted too (MMAR has
 * {@code "2040"} against the option {@code "2040 "}). Anything else (MMAR has five such records, e.g.
 * {@code "American\nColombian"}) is an error for that record.
 *
 * <h2>Audio paths</h2>
 * With {@code A} the audio root ({@link LoadOptions#audioDir()}, by default the data file's folder),
 * and Python's {@code os.path.join} semantics (an empty part vanishes, an absolute part restarts the path):
 * <ul>
 * <li>{@code sound}: {@code A / audio_dir / sound}, with the record's own {@code audio_dir} when it has
 *     one, as {@code rest/generate.py} does. The file-name guess of {@code rest/train.py} for records
 *     without {@code audio_dir} ({@code concat_*} under {@code countingqa_audioskills/counting_audios/},
 *     the rest under {@code musicbench_audioskills/audio/}) is not copied: such records resolve to
 *     {@code A / sound}.
 * <li>{@code audio_path} (MMAR): {@code A / audio_path}, as the MMAR scripts'
 *     {@code realpath(dataset_audio_prefix/audio_path)}; the MMAR scripts' default root is the working
 *     directory, this loader's is the data file's folder.
 * </ul>
 * The result is made absolute and normalised ({@code .} and {@code ..} removed, links not followed).
 *
 * <h2>Errors</h2>
 * Malformed JSON, a record without an id, question, choices or answer, an answer that is none of the
 * choices, a duplicated id, or (with {@link LoadOptions#checkAudio()}) an audio file that is missing or
 * unreadable: a {@link DataException} naming the file, the record (id and position) and the field, thrown
 * after every record is read and listing every bad one (one line each) when there are several. With
 * {@link LoadOptions#skipBadRecords()} the record is left out with a warning naming the same, and
 * {@link #skipped()} counts them; a malformed JSON array cannot be skipped past and always fails. With
 * {@link LoadOptions#requireAnswers()} off, a record whose answer is missing or none of the choices is
 * kept, with a warning, as a record without ground truth (for generating a submission over all ids).
 *
 * @param file    the data file
 * @param items   the records, in file order
 * @param skipped how many bad records were left out
 */
public record Dataset(Path file, List<AudioQa> items, int skipped) {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Fields that become {@link AudioQa} components rather than tags. */
    private static final Set<String> STRUCTURAL = Set.of("id", "sound", "audio_path", "audio_dir", "question",
            "answer", "choices", "conversations", "response");
    private static final Pattern LETTER_PREFIX = Pattern.compile("^\\s*\\(([A-Za-z])\\)\\s*(.*)$", Pattern.DOTALL);

    public Dataset {
        items = List.copyOf(items);
    }

    /** Loads {@code file} with {@link LoadOptions#defaults()}. */
    public static Dataset load(Path file) {
        return load(file, LoadOptions.defaults());
    }

    public static Dataset load(Path file, LoadOptions options) {
        Path audioRoot = options.audioDir() != null ? options.audioDir()
                : file.toAbsolutePath().getParent();
        var items = new ArrayList<AudioQa>();
        var firstSeen = new HashMap<String, Integer>();
        int skipped = 0;
        var bad = new ArrayList<DataException>();
        List<Raw> raws = readRecords(file);
        for (Raw raw : raws) {
            try {
                if (raw.node() == null) throw new DataException(raw.error());
                AudioQa item = toItem(file, raw, audioRoot, options);
                Integer first = firstSeen.putIfAbsent(item.id(), raw.index());
                if (first != null)
                    throw fieldError(file, raw, item.id(), "id", "duplicated id, first seen in record #" + first);
                items.add(item);
            } catch (DataException e) {
                // Not skipping, the load still fails, but after reading every record: a user fixing the file
                // should see all of its bad records at once, not one per run.
                if (!options.skipBadRecords()) { bad.add(e); continue; }
                options.warnings().accept("warning: skipped: " + e.getMessage());
                skipped++;
            }
        }
        if (bad.size() == 1) throw bad.getFirst();
        if (!bad.isEmpty()) {
            var message = new StringBuilder(file + ": " + bad.size() + " bad records of " + raws.size() + ":");
            for (DataException e : bad) message.append("\n  ").append(e.getMessage());
            throw new DataException(message.toString());
        }
        if (skipped > 0)
            options.warnings().accept("warning: " + file + ": skipped " + skipped + " bad record(s) of " + raws.size());
        return new Dataset(file, items, skipped);
    }

    /**
     * The ids of {@code file}'s records in order, duplicates included, reading nothing else (no audio,
     * no answers): what a submission is checked against.
     */
    public static List<String> readIds(Path file) {
        var ids = new ArrayList<String>();
        for (Raw raw : readRecords(file)) {
            if (raw.node() == null) throw new DataException(raw.error());
            ids.add(requireId(file, raw));
        }
        return ids;
    }

    public int size() { return items.size(); }

    /** The records by id, in file order. */
    public Map<String, AudioQa> byId() {
        var map = new LinkedHashMap<String, AudioQa>();
        for (AudioQa q : items) map.put(q.id(), q);
        return Collections.unmodifiableMap(map);
    }

    /** One record of a file: its position, its line (JSONL, else 0), the object, or why it is not one. */
    private record Raw(int index, int line, JsonNode node, String error) {}

    private static List<Raw> readRecords(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new DataException(file + ": cannot read data file: " + e.getMessage(), e);
        }
        if (text.startsWith("\uFEFF")) text = text.substring(1);
        var out = new ArrayList<Raw>();
        if (text.strip().startsWith("[")) {
            JsonNode root;
            try {
                root = JSON.readTree(text);
            } catch (JsonProcessingException e) {
                throw new DataException(file + ": malformed JSON at line " + e.getLocation().getLineNr() + ", column "
                        + e.getLocation().getColumnNr() + ": " + e.getOriginalMessage(), e);
            }
            for (int i = 0; i < root.size(); i++) {
                JsonNode n = root.get(i);
                out.add(n.isObject() ? new Raw(i, 0, n, null)
                        : new Raw(i, 0, null, file + ": record #" + i + ": not a JSON object but " + n.getNodeType()));
            }
            return out;
        }
        String[] lines = text.split("\n", -1);
        for (int l = 0; l < lines.length; l++) {
            if (lines[l].isBlank()) continue;
            int index = out.size();
            try {
                JsonNode n = JSON.readTree(lines[l]);
                out.add(n.isObject() ? new Raw(index, l + 1, n, null)
                        : new Raw(index, l + 1, null, file + ":" + (l + 1) + ": record #" + index
                                + ": not a JSON object but " + n.getNodeType()));
            } catch (JsonProcessingException e) {
                out.add(new Raw(index, l + 1, null, file + ":" + (l + 1) + ": record #" + index + ": malformed JSON: "
                        + e.getOriginalMessage()));
            }
        }
        return out;
    }

    private static String where(Path file, Raw raw, String id) {
        String place = raw.line() > 0 ? file + ":" + raw.line() : file.toString();
        return place + ": record " + (id != null ? "'" + id + "' " : "") + "(#" + raw.index() + ")";
    }

    private static DataException fieldError(Path file, Raw raw, String id, String field, String what) {
        return new DataException(where(file, raw, id) + ": field '" + field + "': " + what);
    }

    private static String requireId(Path file, Raw raw) {
        JsonNode id = raw.node().get("id");
        if (id == null || id.isNull() || !id.isValueNode() || id.asText().isBlank())
            throw fieldError(file, raw, null, "id", id == null || id.isNull() ? "missing" : "not a non-empty string");
        return id.asText();
    }

    private static String text(Path file, Raw raw, String id, String field) {
        JsonNode n = raw.node().get(field);
        if (n == null || n.isNull()) return "";
        if (!n.isTextual()) throw fieldError(file, raw, id, field, "not a string but " + n.getNodeType());
        return n.asText();
    }

    private static AudioQa toItem(Path file, Raw raw, Path audioRoot, LoadOptions options) {
        JsonNode node = raw.node();
        String id = requireId(file, raw);

        String question = text(file, raw, id, "question");
        String answer = text(file, raw, id, "answer");
        if (question.isEmpty()) {
            JsonNode conv = node.get("conversations");
            String human = "", gpt = "";
            if (conv != null && conv.isArray()) {
                for (JsonNode turn : conv) {
                    String from = turn.path("from").asText(""), value = turn.path("value").asText("");
                    if (from.equals("human")) human = value;
                    else if (from.equals("gpt")) gpt = value;
                }
            }
            if (human.isEmpty())
                throw fieldError(file, raw, id, "question", "missing, and 'conversations' has no human turn");
            question = human;
            if (answer.isEmpty()) answer = gpt;
        }

        String clean = PythonText.strip(question.replace("<sound>", ""));
        JsonNode cn = node.get("choices");
        boolean hasChoicesField = cn != null && !cn.isNull();
        Choices.Block inQuestion;
        try {
            inQuestion = Choices.parse(clean);
        } catch (IllegalArgumentException e) {
            // with a choices field, odd '(X)' lines in the question are just text
            if (!hasChoicesField) throw fieldError(file, raw, id, "question", e.getMessage());
            inQuestion = null;
        }
        List<String> choices;
        if (hasChoicesField) {
            if (!cn.isArray() || cn.isEmpty())
                throw fieldError(file, raw, id, "choices", "not a non-empty array of strings");
            choices = new ArrayList<>();
            for (JsonNode c : cn) {
                if (!c.isTextual()) throw fieldError(file, raw, id, "choices", "holds a " + c.getNodeType() + ", not a string");
                choices.add(c.asText());
            }
        } else if (inQuestion != null) {
            choices = inQuestion.texts();
        } else {
            throw fieldError(file, raw, id, "choices", "missing, and the question lists no '(A) text' lines");
        }
        if (choices.size() < 2) throw fieldError(file, raw, id, "choices", "only " + choices.size() + " choice");

        DataException noAnswer = null;
        int answerIndex = PythonText.strip(answer).isEmpty() ? -1 : answerIndex(answer, choices);
        if (PythonText.strip(answer).isEmpty())
            noAnswer = fieldError(file, raw, id, "answer", "missing (and no gpt turn in 'conversations')");
        else if (answerIndex == -2)
            noAnswer = fieldError(file, raw, id, "answer", "'" + answer + "' names one option by letter and another by text; choices "
                    + choices);
        else if (answerIndex < 0)
            noAnswer = fieldError(file, raw, id, "answer", "'" + answer + "' is none of the choices " + choices);
        if (noAnswer != null && options.requireAnswers()) throw noAnswer;

        Path audio = resolveAudio(file, raw, id, audioRoot);
        if (options.checkAudio()) {
            String field = node.hasNonNull("sound") ? "sound" : "audio_path";
            if (!Files.exists(audio)) throw fieldError(file, raw, id, field, "audio file " + audio + " does not exist");
            if (!Files.isRegularFile(audio) || !Files.isReadable(audio))
                throw fieldError(file, raw, id, field, "audio file " + audio + " is not a readable file");
        }

        var tags = new LinkedHashMap<String, String>();
        node.properties().forEach(e -> {
            if (STRUCTURAL.contains(e.getKey()) || !e.getValue().isValueNode() || e.getValue().isNull()) return;
            String key = e.getKey().equals("sub_category") ? "sub-category" : e.getKey();
            tags.putIfAbsent(key, e.getValue().asText());
        });
        if (noAnswer != null) {
            options.warnings().accept("warning: kept without a ground truth (not scored): " + noAnswer.getMessage());
            answerIndex = -1;
        }
        return new AudioQa(id, audio, question, inQuestion != null, choices, answerIndex, answer,
                text(file, raw, id, "response"), tags);
    }

    /** The option {@code answer} names; -1 for none, -2 when its letter and its text disagree. */
    static int answerIndex(String answer, List<String> choices) {
        int exact = choices.indexOf(answer);
        if (exact >= 0) return exact;
        Matcher m = LETTER_PREFIX.matcher(answer);
        if (m.matches()) {
            int byLetter = Character.toUpperCase(m.group(1).charAt(0)) - 'A';
            if (byLetter >= choices.size()) return -1;
            String rest = m.group(2);
            if (PythonText.strip(rest).isEmpty()) return byLetter;
            int byText = looseIndex(rest, choices);
            return byText == byLetter ? byLetter : byText < 0 ? -1 : -2;
        }
        return looseIndex(answer, choices);
    }

    private static int looseIndex(String answer, List<String> choices) {
        String a = fold(answer);
        int found = -1;
        for (int i = 0; i < choices.size(); i++) {
            if (!fold(choices.get(i)).equals(a)) continue;
            if (found >= 0) return -1;
            found = i;
        }
        return found;
    }

    private static String fold(String s) {
        return PythonText.strip(s).toLowerCase(Locale.ROOT);
    }

    private static Path resolveAudio(Path file, Raw raw, String id, Path root) {
        JsonNode node = raw.node();
        Path p;
        try {
            if (node.hasNonNull("sound")) {
                String sound = text(file, raw, id, "sound");
                if (sound.isEmpty()) throw fieldError(file, raw, id, "sound", "empty");
                p = root.resolve(text(file, raw, id, "audio_dir")).resolve(sound);
            } else if (node.hasNonNull("audio_path")) {
                String ap = text(file, raw, id, "audio_path");
                if (ap.isEmpty()) throw fieldError(file, raw, id, "audio_path", "empty");
                p = root.resolve(ap);
            } else {
                throw fieldError(file, raw, id, "sound", "missing (and no 'audio_path')");
            }
        } catch (java.nio.file.InvalidPathException e) {
            throw fieldError(file, raw, id, node.hasNonNull("sound") ? "sound" : "audio_path", "invalid path: " + e.getMessage());
        }
        return p.toAbsolutePath().normalize();
    }
}

package dev.jomni.omni.text;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * A byte-level BPE tokenizer read from a Hugging Face {@code tokenizer.json} (plain or gzipped), as
 * Qwen ships it: a Unicode normalizer, regex split pre-tokenizers, the byte-level mapping, BPE merges
 * by rank, and added tokens matched whole in the text before any of that.
 *
 * <p>{@link #encode} is {@code tokenizer.encode(text, add_special_tokens=False)} of Hugging Face
 * tokenizers: added tokens written in the text (special or not) are matched, and nothing is added
 * around the ids (Qwen adds no BOS). Instances are immutable apart from an internal cache and safe
 * to share between threads.
 */
public final class Tokenizer {
    /**
     * Field-name canonicalization off: the vocabulary is 151k distinct object keys, and Jackson's
     * symbol table made loading 5–10× slower (seconds instead of a few hundred milliseconds).
     */
    static final ObjectMapper JSON = new ObjectMapper(
            JsonFactory.builder().disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES).build());

    private final Map<String, Integer> tokenToId;
    private final String[] idToToken;
    private final boolean[] special;
    private final List<Normalizer.Form> normalizers;
    private final List<Split> splits;
    private final AddedTokenMatcher rawAdded;         // matched before normalization
    private final AddedTokenMatcher normalizedAdded;  // matched in the normalized text
    private final Bpe bpe;
    private final boolean ignoreMerges;

    /** One {@code Split} pre-tokenizer: matches become pieces and so do the gaps between them, unless removed. */
    record Split(Pattern pattern, boolean keepMatches) {}

    private Tokenizer(Map<String, Integer> tokenToId, String[] idToToken, boolean[] special,
                      List<Normalizer.Form> normalizers, List<Split> splits, List<AddedToken> added,
                      Bpe bpe, boolean ignoreMerges) {
        this.tokenToId = tokenToId;
        this.idToToken = idToToken;
        this.special = special;
        this.normalizers = normalizers;
        this.splits = splits;
        this.rawAdded = new AddedTokenMatcher(added.stream().filter(t -> !t.normalized()).toList());
        this.normalizedAdded = new AddedTokenMatcher(added.stream().filter(AddedToken::normalized).toList());
        this.bpe = bpe;
        this.ignoreMerges = ignoreMerges;
    }

    /**
     * Loads a tokenizer from a folder or a file. A folder is read as Hugging Face does: its
     * {@code tokenizer.json} (or {@code tokenizer.json.gz}) when there is one, else the slow
     * tokenizer's files, {@code vocab.json} + {@code merges.txt} with {@code tokenizer_config.json}
     * (its {@code tokenizer_class} and {@code added_tokens_decoder}), the form Qwen3-Omni release
     * folders carry. A file is read as {@code tokenizer.json}.
     */
    public static Tokenizer load(Path dirOrFile) {
        Path file = dirOrFile;
        if (Files.isDirectory(dirOrFile)) {
            file = dirOrFile.resolve("tokenizer.json");
            if (!Files.exists(file)) file = dirOrFile.resolve("tokenizer.json.gz");
            if (!Files.exists(file)) {
                if (Files.exists(dirOrFile.resolve("vocab.json")) || Files.exists(dirOrFile.resolve("merges.txt"))) {
                    return SlowTokenizerFiles.load(dirOrFile);
                }
                throw new TokenizerException(dirOrFile + ": no tokenizer.json, tokenizer.json.gz or vocab.json + merges.txt in this folder");
            }
        }
        try (InputStream in = open(file)) {
            return read(file, in);
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": file not found", e);
        } catch (JsonProcessingException e) {
            throw jsonError(file, e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    static TokenizerException jsonError(Path file, JsonProcessingException e) {
        return new TokenizerException(file + ": not valid JSON: " + e.getOriginalMessage()
                + " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr(), e);
    }

    /** Gzip is recognised by its magic bytes, so a renamed file still loads. */
    private static InputStream open(Path file) throws IOException {
        var in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        in.mark(2);
        int b0 = in.read(), b1 = in.read();
        in.reset();
        return b0 == 0x1F && b1 == 0x8B ? new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16) : in;
    }

    // ---------------------------------------------------------------- encode / decode

    /** The ids of {@code text}; added tokens in the text are matched, no BOS/EOS is added. */
    public int[] encode(String text) {
        var ids = new IntList();
        for (var seg : rawAdded.split(text)) {
            if (seg.isToken()) {
                ids.add(seg.id());
                continue;
            }
            String normalized = normalize(seg.text());
            for (var inner : normalizedAdded.split(normalized)) {
                if (inner.isToken()) ids.add(inner.id());
                else encodeOrdinary(inner.text(), ids);
            }
        }
        return ids.toArray();
    }

    private void encodeOrdinary(String text, IntList out) {
        for (var p : preTokenize(text)) {
            if (ignoreMerges) {
                Integer whole = tokenToId.get(byteLevel(p));
                if (whole != null) {
                    out.add(whole);
                    continue;
                }
            }
            out.addAll(bpe.encode(p));
        }
    }

    /** The pieces BPE runs on: the pre-tokenizer's regex splits of normalized text. */
    List<String> preTokenize(String text) {
        List<String> pieces = List.of(text);
        for (var split : splits) {
            var next = new ArrayList<String>();
            for (var p : pieces) split(split, p, next);
            pieces = next;
        }
        return pieces;
    }

    private static void split(Split split, String text, List<String> out) {
        Matcher m = split.pattern().matcher(text);
        int last = 0;
        while (m.find()) {
            if (m.start() == m.end()) continue;
            if (last < m.start()) out.add(text.substring(last, m.start()));
            if (split.keepMatches()) out.add(m.group());
            last = m.end();
        }
        if (last < text.length()) out.add(text.substring(last));
    }

    private String normalize(String text) {
        for (var form : normalizers) text = Normalizer.normalize(text, form);
        return text;
    }

    private static String byteLevel(String piece) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        var sb = new StringBuilder(bytes.length);
        for (byte b : bytes) sb.append(ByteLevel.charOf(b & 0xFF));
        return sb.toString();
    }

    /** The text of {@code ids}, special tokens included. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * The text of {@code ids}. As in Hugging Face tokenizers' ByteLevel decoder, every token's
     * characters are turned back into bytes (a token with characters outside the byte-level
     * alphabet, such as an added token, contributes its own UTF-8), and the bytes are decoded once,
     * invalid sequences becoming U+FFFD.
     *
     * @param skipSpecialTokens leave out added tokens marked {@code special} (non-special ones such
     *                          as {@code <think>} stay)
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        var bytes = new ByteArrayOutputStream();
        for (int id : ids) appendBytes(id, skipSpecialTokens, bytes);
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** The bytes a token stands for (none for a skipped special token). */
    void appendBytes(int id, boolean skipSpecialTokens, ByteArrayOutputStream out) {
        String token = token(id);
        if (skipSpecialTokens && special[id]) return;
        boolean allByteLevel = true;
        for (int i = 0; i < token.length() && allByteLevel; i++) allByteLevel = ByteLevel.byteOf(token.charAt(i)) >= 0;
        if (allByteLevel) {
            for (int i = 0; i < token.length(); i++) out.write(ByteLevel.byteOf(token.charAt(i)));
        } else {
            out.writeBytes(token.getBytes(StandardCharsets.UTF_8));
        }
    }

    /** Incremental decoding for streaming generated tokens; see {@link DecodeStream}. */
    public DecodeStream decodeStream(boolean skipSpecialTokens) {
        return new DecodeStream(this, skipSpecialTokens);
    }

    // ---------------------------------------------------------------- vocabulary

    /** One more than the largest id (vocabulary and added tokens). */
    public int vocabSize() {
        return idToToken.length;
    }

    /** The id of a token string (a vocabulary entry in byte-level form, or an added token), if any. */
    public OptionalInt findTokenId(String token) {
        Integer id = tokenToId.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** The id of a token string; an error naming the token if the tokenizer has none. */
    public int tokenId(String token) {
        Integer id = tokenToId.get(token);
        if (id == null) throw new IllegalArgumentException("tokenizer has no token " + token);
        return id;
    }

    /** The token string of an id (byte-level form for vocabulary entries). */
    public String token(int id) {
        if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
            throw new IllegalArgumentException("token id " + id + " is not in the vocabulary (size " + idToToken.length + ")");
        }
        return idToToken[id];
    }

    /** Whether the id is an added token marked {@code special}. */
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    // ---------------------------------------------------------------- loading

    /**
     * Streams the file: the vocabulary and merges (the bulk: 151k + 151k entries for Qwen) are read
     * token by token into arrays; the small sections are read as trees.
     */
    private static Tokenizer read(Path file, InputStream in) throws IOException {
        JsonNode addedTokens = null, normalizer = null, preTokenizer = null, decoder = null;
        ModelSection model = null;
        try (JsonParser p = JSON.getFactory().createParser(in)) {
            if (p.nextToken() != JsonToken.START_OBJECT) throw new TokenizerException(file + ": not a JSON object");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                p.nextToken();
                switch (field) {
                    case "added_tokens" -> addedTokens = p.readValueAsTree();
                    case "normalizer" -> normalizer = p.readValueAsTree();
                    case "pre_tokenizer" -> preTokenizer = p.readValueAsTree();
                    case "decoder" -> decoder = p.readValueAsTree();
                    case "model" -> model = readModel(file, p);
                    default -> p.skipChildren();
                }
            }
        }
        if (model == null) throw new TokenizerException(file + ": no \"model\" section");
        checkDecoder(file, decoder);

        var added = new ArrayList<AddedToken>();
        if (addedTokens != null) {
            for (var t : addedTokens) {
                if (!t.hasNonNull("id") || !t.hasNonNull("content")) {
                    throw new TokenizerException(file + ": added_tokens entry without id or content: " + t);
                }
                added.add(new AddedToken(t.get("id").asInt(), t.get("content").asText(), t.path("special").asBoolean(false),
                        t.path("normalized").asBoolean(false), t.path("lstrip").asBoolean(false),
                        t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false)));
            }
        }
        return build(model, added, normalizers(file, normalizer), splits(file, preTokenizer));
    }

    /** The tokenizer of a parsed model; {@code model}'s labels name the files in errors. */
    static Tokenizer build(ModelSection model, List<AddedToken> added, List<Normalizer.Form> normalizers, List<Split> splits) {
        int[] byteIds = new int[256];
        for (int b = 0; b < 256; b++) {
            Integer id = model.vocab.get(String.valueOf(ByteLevel.charOf(b)));
            if (id == null) {
                throw new TokenizerException(model.vocabWhere + " lacks the byte-level character for byte " + b
                        + " ('" + ByteLevel.charOf(b) + "'): not a byte-level BPE vocabulary");
            }
            byteIds[b] = id;
        }
        int n = model.mergeLeft.size();
        int[] left = new int[n], right = new int[n], merged = new int[n];
        for (int r = 0; r < n; r++) {
            String a = model.mergeLeft.get(r), b = model.mergeRight.get(r);
            Integer ia = model.vocab.get(a), ib = model.vocab.get(b), im = model.vocab.get(a + b);
            if (ia == null || ib == null || im == null) {
                throw new TokenizerException(model.mergeWhere.apply(r) + " (\"" + a + "\", \"" + b
                        + "\") uses a token that is not in " + model.vocabWhere);
            }
            left[r] = ia;
            right[r] = ib;
            merged[r] = im;
        }

        // Added tokens go into the vocabulary map only now, after the merges were resolved against
        // the model's own entries (an added token may reuse a vocabulary string).
        int size = 0;
        for (int id : model.vocab.values()) size = Math.max(size, id + 1);
        for (var t : added) size = Math.max(size, t.id() + 1);
        var idToToken = new String[size];
        var special = new boolean[size];
        var tokenToId = model.vocab;
        tokenToId.forEach((token, id) -> idToToken[id] = token);
        for (var t : added) {
            idToToken[t.id()] = t.content();
            special[t.id()] = t.special();
            tokenToId.put(t.content(), t.id());
        }
        return new Tokenizer(tokenToId, idToToken, special, normalizers, splits, added,
                new Bpe(byteIds, left, right, merged), model.ignoreMerges);
    }

    /** A BPE model's vocabulary and merges, with where they came from for error messages. */
    static final class ModelSection {
        final Map<String, Integer> vocab = new HashMap<>(1 << 18);
        final List<String> mergeLeft = new ArrayList<>(1 << 18);
        final List<String> mergeRight = new ArrayList<>(1 << 18);
        boolean ignoreMerges;
        final String vocabWhere;                       // e.g. "…/tokenizer.json: model.vocab"
        final IntFunction<String> mergeWhere;          // merge rank -> e.g. "…/tokenizer.json: model.merges[7]"

        ModelSection(String vocabWhere, IntFunction<String> mergeWhere) {
            this.vocabWhere = vocabWhere;
            this.mergeWhere = mergeWhere;
        }
    }

    private static ModelSection readModel(Path file, JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) throw new TokenizerException(file + ": \"model\" is not an object");
        var m = new ModelSection(file + ": model.vocab", r -> file + ": model.merges[" + r + "]");
        String type = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            JsonToken value = p.nextToken();
            switch (field) {
                case "type" -> type = p.getText();
                case "vocab" -> {
                    if (value != JsonToken.START_OBJECT) throw new TokenizerException(file + ": model.vocab is not an object");
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String token = p.currentName();
                        if (p.nextToken() != JsonToken.VALUE_NUMBER_INT || p.getIntValue() < 0) {
                            throw new TokenizerException(file + ": model.vocab[\"" + token + "\"] is not a non-negative integer id");
                        }
                        m.vocab.put(token, p.getIntValue());
                    }
                }
                case "merges" -> readMerges(file, p, m);
                case "ignore_merges" -> m.ignoreMerges = p.getValueAsBoolean();
                case "continuing_subword_prefix", "end_of_word_suffix" -> {
                    if (value != JsonToken.VALUE_NULL && !p.getText().isEmpty()) {
                        throw new TokenizerException(file + ": model." + field + "=\"" + p.getText() + "\" is not supported (byte-level BPE has none)");
                    }
                }
                case "byte_fallback" -> {
                    if (p.getValueAsBoolean()) throw new TokenizerException(file + ": model.byte_fallback=true is not supported (byte-level BPE needs none)");
                }
                default -> p.skipChildren();
            }
        }
        if (type != null && !type.equals("BPE")) {
            throw new TokenizerException(file + ": model.type=" + type + " is not supported (byte-level BPE only)");
        }
        if (m.vocab.isEmpty()) throw new TokenizerException(file + ": model.vocab is missing or empty");
        return m;
    }

    /** Merges come as {@code "a b"} strings (older files) or {@code ["a", "b"]} pairs (newer ones). */
    private static void readMerges(Path file, JsonParser p, ModelSection m) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) throw new TokenizerException(file + ": model.merges is not an array");
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            int rank = m.mergeLeft.size();
            if (t == JsonToken.VALUE_STRING) {
                String s = p.getText();
                int space = s.indexOf(' ');
                if (space <= 0 || space != s.lastIndexOf(' ')) {
                    throw new TokenizerException(file + ": model.merges[" + rank + "] \"" + s + "\" is not two tokens separated by a space");
                }
                m.mergeLeft.add(s.substring(0, space));
                m.mergeRight.add(s.substring(space + 1));
            } else if (t == JsonToken.START_ARRAY) {
                String a = p.nextToken() == JsonToken.VALUE_STRING ? p.getText() : null;
                String b = a != null && p.nextToken() == JsonToken.VALUE_STRING ? p.getText() : null;
                if (b == null || p.nextToken() != JsonToken.END_ARRAY) {
                    throw new TokenizerException(file + ": model.merges[" + rank + "] is not a pair of strings");
                }
                m.mergeLeft.add(a);
                m.mergeRight.add(b);
            } else {
                throw new TokenizerException(file + ": model.merges[" + rank + "] is neither a string nor a pair");
            }
        }
    }

    private static List<Normalizer.Form> normalizers(Path file, JsonNode n) {
        var forms = new ArrayList<Normalizer.Form>();
        if (n == null || n.isNull()) return forms;
        String type = n.path("type").asText();
        switch (type) {
            case "NFC" -> forms.add(Normalizer.Form.NFC);
            case "NFD" -> forms.add(Normalizer.Form.NFD);
            case "NFKC" -> forms.add(Normalizer.Form.NFKC);
            case "NFKD" -> forms.add(Normalizer.Form.NFKD);
            case "Sequence" -> {
                for (var inner : n.path("normalizers")) forms.addAll(normalizers(file, inner));
            }
            default -> throw new TokenizerException(file + ": normalizer type " + type + " is not supported (NFC, NFD, NFKC, NFKD, Sequence)");
        }
        return forms;
    }

    static final String GPT2_SPLIT =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /**
     * The regex splits of the pre-tokenizer, which must end in the byte-level step. Patterns compile
     * with UNICODE_CHARACTER_CLASS so that {@code \s} is Unicode White_Space as in Oniguruma (which
     * tokenizers uses), not Java's ASCII-only default; alternation, greedy quantifiers and lookahead
     * backtrack the same way in both engines.
     */
    private static List<Split> splits(Path file, JsonNode n) {
        if (n == null || n.isNull()) throw new TokenizerException(file + ": no pre_tokenizer (byte-level BPE needs the ByteLevel step)");
        var steps = new ArrayList<JsonNode>();
        if (n.path("type").asText().equals("Sequence")) n.path("pretokenizers").forEach(steps::add);
        else steps.add(n);
        var splits = new ArrayList<Split>();
        boolean byteLevel = false;
        for (var step : steps) {
            String type = step.path("type").asText();
            if (byteLevel) throw new TokenizerException(file + ": pre_tokenizer " + type + " after ByteLevel is not supported");
            switch (type) {
                case "Split" -> {
                    JsonNode pattern = step.path("pattern");
                    String regex = pattern.has("Regex") ? pattern.get("Regex").asText()
                            : pattern.has("String") ? Pattern.quote(pattern.get("String").asText()) : null;
                    if (regex == null) throw new TokenizerException(file + ": pre_tokenizer Split has no Regex or String pattern");
                    if (step.path("invert").asBoolean(false)) throw new TokenizerException(file + ": pre_tokenizer Split with invert=true is not supported");
                    String behavior = step.path("behavior").asText();
                    boolean keep = switch (behavior) {
                        case "Isolated" -> true;
                        case "Removed" -> false;
                        default -> throw new TokenizerException(file + ": pre_tokenizer Split behavior " + behavior + " is not supported (Isolated, Removed)");
                    };
                    splits.add(new Split(compile(file, regex), keep));
                }
                case "ByteLevel" -> {
                    if (step.path("add_prefix_space").asBoolean(false)) {
                        throw new TokenizerException(file + ": pre_tokenizer ByteLevel add_prefix_space=true is not supported");
                    }
                    if (step.path("use_regex").asBoolean(true)) splits.add(new Split(compile(file, GPT2_SPLIT), true));
                    byteLevel = true;
                }
                default -> throw new TokenizerException(file + ": pre_tokenizer type " + type + " is not supported (Split, ByteLevel, Sequence)");
            }
        }
        if (!byteLevel) throw new TokenizerException(file + ": pre_tokenizer has no ByteLevel step: not a byte-level BPE tokenizer");
        return splits;
    }

    static Pattern compile(Path file, String regex) {
        try {
            return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (RuntimeException e) {
            throw new TokenizerException(file + ": pre_tokenizer regex does not compile in Java: " + e.getMessage(), e);
        }
    }

    private static void checkDecoder(Path file, JsonNode d) {
        String type = d == null || d.isNull() ? "none" : d.path("type").asText();
        if (!type.equals("ByteLevel")) throw new TokenizerException(file + ": decoder " + type + " is not supported (ByteLevel only)");
    }

    /** A growable int array, so encoding long texts does not box every id. */
    private static final class IntList {
        private int[] a = new int[64];
        private int size;

        void add(int v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            a[size++] = v;
        }

        void addAll(int[] vs) {
            if (size + vs.length > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, size + vs.length));
            System.arraycopy(vs, 0, a, size, vs.length);
            size += vs.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}

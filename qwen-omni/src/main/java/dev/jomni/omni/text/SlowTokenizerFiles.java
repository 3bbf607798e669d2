package dev.jomni.omni.text;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The slow Hugging Face tokenizer's files of a byte-level BPE: {@code vocab.json} (token to id),
 * {@code merges.txt} (one merge a line, by rank) and {@code tokenizer_config.json}, whose
 * {@code tokenizer_class} fixes the normalizer and pre-tokenizer and whose
 * {@code added_tokens_decoder} holds the added tokens. The result is the tokenizer that
 * transformers' conversion to {@code tokenizer.json} gives, so it encodes exactly as that file does.
 */
final class SlowTokenizerFiles {
    private SlowTokenizerFiles() {}

    /** Qwen2Tokenizer's PRETOKENIZE_REGEX (the one Qwen2's {@code tokenizer.json} carries too). */
    static final String QWEN2_SPLIT =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    static Tokenizer load(Path dir) {
        Path vocab = dir.resolve("vocab.json"), merges = dir.resolve("merges.txt"), config = dir.resolve("tokenizer_config.json");
        for (Path p : List.of(vocab, merges, config)) {
            if (!Files.exists(p)) {
                throw new TokenizerException(p + ": file not found (a folder without tokenizer.json needs vocab.json, merges.txt"
                        + " and tokenizer_config.json)");
            }
        }
        JsonNode cfg = readConfig(config);
        var mergeLines = new ArrayList<Integer>();
        var model = new Tokenizer.ModelSection(vocab.toString(), r -> merges + ": line " + mergeLines.get(r));
        readVocab(vocab, model);
        readMerges(merges, model, mergeLines);

        String cls = cfg.path("tokenizer_class").asText(null);
        if (cls == null) throw new TokenizerException(config + ": no tokenizer_class (Qwen2Tokenizer or GPT2Tokenizer expected)");
        if (cfg.path("add_prefix_space").asBoolean(false)) {
            throw new TokenizerException(config + ": add_prefix_space=true is not supported");
        }
        List<Normalizer.Form> normalizers;
        List<Tokenizer.Split> splits;
        switch (cls) {
            case "Qwen2Tokenizer", "Qwen2TokenizerFast" -> {
                normalizers = List.of(Normalizer.Form.NFC);
                splits = List.of(new Tokenizer.Split(Tokenizer.compile(config, QWEN2_SPLIT), true));
            }
            case "GPT2Tokenizer", "GPT2TokenizerFast" -> {
                normalizers = List.of();
                splits = List.of(new Tokenizer.Split(Tokenizer.compile(config, Tokenizer.GPT2_SPLIT), true));
            }
            default -> throw new TokenizerException(config + ": tokenizer_class " + cls
                    + " is not supported without a tokenizer.json (Qwen2Tokenizer, GPT2Tokenizer)");
        }
        return Tokenizer.build(model, addedTokens(config, cfg), normalizers, splits);
    }

    private static JsonNode readConfig(Path config) {
        try {
            JsonNode cfg = Tokenizer.JSON.readTree(config.toFile());
            if (cfg == null || !cfg.isObject()) throw new TokenizerException(config + ": not a JSON object");
            return cfg;
        } catch (JsonProcessingException e) {
            throw Tokenizer.jsonError(config, e);
        } catch (IOException e) {
            throw new TokenizerException(config + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** {@code added_tokens_decoder}: {@code {"151643": {"content": "<|endoftext|>", "special": true, ...}, ...}}. */
    private static List<AddedToken> addedTokens(Path config, JsonNode cfg) {
        var added = new ArrayList<AddedToken>();
        JsonNode decoder = cfg.get("added_tokens_decoder");
        if (decoder == null || decoder.isNull()) return added;
        if (!decoder.isObject()) throw new TokenizerException(config + ": added_tokens_decoder is not an object");
        for (Map.Entry<String, JsonNode> e : decoder.properties()) {
            String where = config + ": added_tokens_decoder[\"" + e.getKey() + "\"]";
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException ex) {
                throw new TokenizerException(where + ": the key is not a token id");
            }
            if (id < 0) throw new TokenizerException(where + ": the key is not a token id");
            JsonNode t = e.getValue();
            if (!t.isObject() || !t.path("content").isTextual() || t.path("content").asText().isEmpty()) {
                throw new TokenizerException(where + ": no content string");
            }
            added.add(new AddedToken(id, t.get("content").asText(), t.path("special").asBoolean(false),
                    t.path("normalized").asBoolean(false), t.path("lstrip").asBoolean(false),
                    t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false)));
        }
        return added;
    }

    private static void readVocab(Path file, Tokenizer.ModelSection model) {
        try (InputStream in = Files.newInputStream(file); JsonParser p = Tokenizer.JSON.getFactory().createParser(in)) {
            if (p.nextToken() != JsonToken.START_OBJECT) throw new TokenizerException(file + ": not a JSON object of token to id");
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String token = p.currentName();
                if (p.nextToken() != JsonToken.VALUE_NUMBER_INT || p.getIntValue() < 0) {
                    throw new TokenizerException(file + ": [\"" + token + "\"] is not a non-negative integer id");
                }
                model.vocab.put(token, p.getIntValue());
            }
            if (model.vocab.isEmpty()) throw new TokenizerException(file + ": the vocabulary is empty");
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": file not found", e);
        } catch (JsonProcessingException e) {
            throw Tokenizer.jsonError(file, e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /**
     * As tokenizers' {@code BPE::from_file} and Qwen2Tokenizer read it: a first line starting with
     * {@code #version} is a header, empty lines are skipped, every other line is two tokens and a space.
     */
    private static void readMerges(Path file, Tokenizer.ModelSection model, List<Integer> lines) {
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int lineNo = 0;
            while ((line = in.readLine()) != null) {
                lineNo++;
                if (lineNo == 1 && line.startsWith("#version")) continue;
                if (line.isEmpty()) continue;
                int space = line.indexOf(' ');
                if (space <= 0 || space == line.length() - 1 || space != line.lastIndexOf(' ')) {
                    throw new TokenizerException(file + ": line " + lineNo + " \"" + line + "\" is not two tokens separated by a space");
                }
                model.mergeLeft.add(line.substring(0, space));
                model.mergeRight.add(line.substring(space + 1));
                lines.add(lineNo);
            }
        } catch (java.nio.charset.MalformedInputException e) {
            throw new TokenizerException(file + ": not UTF-8 text", e);
        } catch (NoSuchFileException e) {
            throw new TokenizerException(file + ": file not found", e);
        } catch (IOException e) {
            throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
        }
    }
}

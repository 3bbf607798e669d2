package dev.jomni.omni.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.StringJoiner;

/**
 * {@code generation_config.json}: the sampling defaults a model ships, read as vLLM's
 * {@code --generation-config auto} reads them: {@code temperature}, {@code top_k}, {@code top_p},
 * {@code min_p}, {@code repetition_penalty} and {@code max_new_tokens} become the defaults of requests
 * that set none, and {@code eos_token_id} (one id or a list) adds stop tokens. As in vLLM,
 * {@code do_sample} is not read: a temperature in the file samples. The {@code talker_*} keys (the
 * Instruct release has only those) belong to the talker, not the thinker, and are ignored. A key the
 * file lacks, or holds as null, is empty here.
 */
public record GenerationConfig(OptionalInt maxNewTokens, OptionalDouble temperature, OptionalInt topK, OptionalDouble topP,
                               OptionalDouble minP, OptionalDouble repetitionPenalty, List<Long> eosTokenIds) {
    public static final String FILE = "generation_config.json";

    /** No file: every default is the built-in one. */
    public static final GenerationConfig NONE = new GenerationConfig(OptionalInt.empty(), OptionalDouble.empty(), OptionalInt.empty(),
            OptionalDouble.empty(), OptionalDouble.empty(), OptionalDouble.empty(), List.of());

    public GenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    /**
     * The file itself, or {@code generation_config.json} of a model folder; {@link #NONE} when the
     * folder has none (transformers and vLLM then use their built-in defaults too).
     */
    public static GenerationConfig load(Path fileOrDir) {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve(FILE) : fileOrDir;
        if (Files.isDirectory(fileOrDir) && !Files.exists(file)) return NONE;
        ConfigNode c = ConfigNode.read(file);
        OptionalInt maxNewTokens = c.has("max_new_tokens") ? OptionalInt.of(c.integer("max_new_tokens")) : OptionalInt.empty();
        if (maxNewTokens.isPresent() && maxNewTokens.getAsInt() < 1) throw c.error("max_new_tokens", "= " + maxNewTokens.getAsInt() + " must be at least 1");
        OptionalDouble temperature = number(c, "temperature", 0, Double.MAX_VALUE, true);
        OptionalInt topK = c.has("top_k") ? OptionalInt.of(c.integer("top_k")) : OptionalInt.empty();
        if (topK.isPresent() && topK.getAsInt() < 0) throw c.error("top_k", "= " + topK.getAsInt() + " must be 0 (no filter) or more");
        OptionalDouble topP = number(c, "top_p", 0, 1, false);
        OptionalDouble minP = number(c, "min_p", 0, 1, true);
        OptionalDouble repetitionPenalty = number(c, "repetition_penalty", 0, Double.MAX_VALUE, false);
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, eosTokenIds(c));
    }

    /** A number in [lo, hi], or (lo, hi] when {@code lowInclusive} is false. */
    private static OptionalDouble number(ConfigNode c, String key, double lo, double hi, boolean lowInclusive) {
        if (!c.has(key)) return OptionalDouble.empty();
        double v = c.number(key);
        if (!(lowInclusive ? v >= lo : v > lo) || !(v <= hi)) {
            throw c.error(key, "= " + v + " must be in " + (lowInclusive ? "[" : "(") + lo + ", " + (hi == Double.MAX_VALUE ? "∞)" : hi + "]"));
        }
        return OptionalDouble.of(v);
    }

    private static List<Long> eosTokenIds(ConfigNode c) {
        if (!c.has("eos_token_id")) return List.of();
        JsonNode v = c.node.get("eos_token_id");
        var ids = new ArrayList<Long>();
        for (JsonNode x : v.isArray() ? v : List.of(v)) {
            if (!x.isIntegralNumber() || !x.canConvertToInt() || x.intValue() < 0) {
                throw c.error("eos_token_id", "= " + v + " is not a token id or a list of token ids");
            }
            ids.add(x.longValue());
        }
        return ids;
    }

    /** The settings the file gives, e.g. {@code "temperature 0.6, top_k 20"}; empty when it gives none. */
    public String describe() {
        var j = new StringJoiner(", ");
        maxNewTokens.ifPresent(v -> j.add("max_new_tokens " + v));
        temperature.ifPresent(v -> j.add("temperature " + v));
        topK.ifPresent(v -> j.add("top_k " + v));
        topP.ifPresent(v -> j.add("top_p " + v));
        minP.ifPresent(v -> j.add("min_p " + v));
        repetitionPenalty.ifPresent(v -> j.add("repetition_penalty " + v));
        if (!eosTokenIds.isEmpty()) j.add("eos_token_id " + eosTokenIds);
        return j.toString();
    }
}

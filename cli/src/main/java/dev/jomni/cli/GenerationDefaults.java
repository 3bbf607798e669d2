package dev.jomni.cli;

import dev.jomni.omni.config.GenerationConfig;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Collection;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import picocli.CommandLine.Option;

/**
 * Where a generating command's sampling settings come from, as vLLM's {@code --generation-config auto}:
 * a flag the user gave, else the model folder's {@code generation_config.json}, else the command's
 * built-in default. {@code --ignore-generation-config} leaves the file out (vLLM's
 * {@code --generation-config vllm}). The file's {@code eos_token_id}s are added to the stop tokens.
 * Sampling flags are therefore boxed and have no picocli default: null means "not given".
 */
final class GenerationDefaults {
    /** How the help starts a default that the file may set: {@code FROM_FILE + "temperature, else 0"}. */
    static final String FROM_FILE = "default: generation_config.json's ";

    @Option(names = "--ignore-generation-config",
            description = "Ignore the model folder's generation_config.json, whose sampling settings are otherwise the defaults "
                    + "of the sampling options not given (flags override the file, the file overrides the built-in defaults).")
    boolean ignore;

    /** The model folder's file, or none when ignored; what it sets is noted on {@code log}. */
    GenerationConfig load(Path model, PrintStream log) {
        if (ignore) return GenerationConfig.NONE;
        GenerationConfig g = GenerationConfig.load(model);
        String set = g.describe();
        if (!set.isEmpty()) {
            log.println(model.resolve(GenerationConfig.FILE) + ": " + set
                    + " (defaults where no flag is given; --ignore-generation-config leaves them out)");
        }
        return g;
    }

    static double pick(Double flag, OptionalDouble file, double builtin) {
        return flag != null ? flag : file.orElse(builtin);
    }

    static int pick(Integer flag, OptionalInt file, int builtin) {
        return flag != null ? flag : file.orElse(builtin);
    }

    /** The chat's end tokens (those the tokenizer has) and the file's eos_token_id list. */
    static void addStops(Collection<Long> stops, dev.jomni.omni.text.Tokenizer tokenizer, GenerationConfig g) {
        for (String t : new String[] {"<|im_end|>", "<|endoftext|>"}) tokenizer.findTokenId(t).ifPresent(id -> stops.add((long) id));
        stops.addAll(g.eosTokenIds());
    }
}

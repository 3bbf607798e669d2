package dev.jomni.cli;

import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * {@code --use_4bit} (the seed's and transformers' load_in_4bit spelling; {@code --use-4bit} too): the thinker's text
 * decoder Linears and experts held in NF4 (QLoRA), quantized while loading. On by default for training (sft, rest,
 * grpo: {@code --use_4bit=false} keeps the base dense), off for inference. A checkpoint written by {@code omni quantize}
 * is NF4 either way. Loading prints the weights by kind to stderr.
 */
final class Use4bit {
    private Use4bit() {}

    /** The training commands' flag, default on. */
    static final class Training {
        @Option(names = {"--use_4bit", "--use-4bit"}, arity = "0..1", defaultValue = "true", fallbackValue = "true", paramLabel = "BOOL",
                description = "Hold the frozen base's text decoder Linears and experts in NF4 (QLoRA; default: ${DEFAULT-VALUE}).")
        boolean on;

        Thinker load(Path model, DType dtype, Device device) { return Use4bit.load(model, dtype, device, on); }
    }

    /** The inference commands' flag, default off. */
    static final class Inference {
        @Option(names = {"--use_4bit", "--use-4bit"}, arity = "0..1", defaultValue = "false", fallbackValue = "true", paramLabel = "BOOL",
                description = "Hold the text decoder Linears and experts in NF4, quantized while loading (default: ${DEFAULT-VALUE}).")
        boolean on;

        Thinker load(Path model, DType dtype, Device device) { return Use4bit.load(model, dtype, device, on); }
    }

    static Thinker load(Path model, DType dtype, Device device, boolean use4bit) {
        Thinker thinker = Thinker.load(model, dtype, device, use4bit);
        System.err.print(thinker.weightReport());
        return thinker;
    }
}

package dev.jomni.cli;

import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.MergedExport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code omni merge}: the base model with a LoRA adapter merged in, as a Hugging Face checkpoint. */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Write the model with a PEFT LoRA adapter merged into its weights (W + scaling*B*A): config and tokenizer files copied, "
                + "safetensors sharded with model.safetensors.index.json as transformers' save_pretrained writes them.")
final class MergeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Base model folder.")
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "PEFT LoRA adapter folder.")
    Path adapter;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder.")
    Path out;

    @Option(names = {"--max_shard_size", "--max-shard-size"}, defaultValue = "5000000000", paramLabel = "BYTES",
            description = "Largest shard in bytes (default: ${DEFAULT-VALUE}, transformers' 5GB).")
    long maxShardSize;

    @Option(names = "--dtype", defaultValue = "keep", description = "keep (each tensor's stored dtype), f32 or bf16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Override
    public Integer call() {
        DType as = switch (dtype) {
            case "keep" -> null;
            case "f32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype " + dtype + ": keep, f32 or bf16");
        };
        Thinker thinker = Thinker.load(model, DType.F32, Device.cpu());
        LoraAdapter applied = LoraAdapter.apply(adapter, thinker);
        var files = MergedExport.write(model, applied, out, maxShardSize, as);
        System.out.println("wrote " + files.size() + " file(s) to " + out + " (" + applied.mergedWeights().size() + " merged weights)");
        return 0;
    }
}

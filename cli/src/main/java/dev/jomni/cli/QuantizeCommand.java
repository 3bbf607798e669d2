package dev.jomni.cli;

import dev.jomni.omni.model.Bnb4bitCheckpoint;
import dev.jomni.tensor.ops.Nf4Weight;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code omni quantize}: a thinker checkpoint in bitsandbytes 4-bit NF4, which forward, generate, eval, serve and the trainers load as is. */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Write the thinker in bitsandbytes 4-bit (NF4, double quantization, blocks of 64) as transformers' save_pretrained",
                "writes a load_in_4bit model: each of the text decoder's Linears and both stacked expert weights of every layer as bnb's",
                "six tensors (weight, absmax, quant_map, nested_absmax, nested_quant_map, quant_state), the rest (embeddings, lm_head,",
                "router, norms, audio encoder) as stored; shards plus model.safetensors.index.json; config.json with its",
                "quantization_config; tokenizer and other files copied. Only the thinker's tensors are written.",
                "Weights whose K is not a multiple of 64 stay dense and are named."})
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = {"--model", "--model_name_or_path", "--model-name-or-path"}, required = true, paramLabel = "DIR", description = "Model folder (config.json + safetensors).")
    Path model;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder.")
    Path out;

    @Option(names = {"--max_shard_size", "--max-shard-size"}, defaultValue = "5000000000", paramLabel = "BYTES",
            description = "Largest shard in bytes (default: ${DEFAULT-VALUE}, transformers' 5GB).")
    long maxShardSize;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE",
            description = "Where the NF4 weights are quantized: cpu (default) or cuda[:N] (the same bytes, in a fraction of the time).")
    String device;

    @Override
    public Integer call() {
        if (out.toAbsolutePath().normalize().equals(model.toAbsolutePath().normalize()))
            throw new IllegalArgumentException("omni quantize: --out " + out + " is the model folder; write elsewhere");
        var where = dev.jomni.tensor.Device.parse(device);
        if (where.kind() != dev.jomni.tensor.Device.Kind.CPU) System.setProperty(Nf4Weight.DEVICE_QUANTIZE, "true");   // asked for by name
        var w = Bnb4bitCheckpoint.write(model, out, maxShardSize, where);
        for (String n : w.notes()) System.err.println(n);
        System.out.printf(Locale.ROOT, "quantize: %d NF4 weights, %d kept as stored, %,d bytes of tensors in %d file(s) in %s%n",
                w.nf4Weights(), w.denseWeights(), w.bytes(), w.files().size(), out);
        return 0;
    }
}

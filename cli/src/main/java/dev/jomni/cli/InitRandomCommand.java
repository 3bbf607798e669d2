package dev.jomni.cli;

import dev.jomni.omni.model.RandomCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code omni init-random}: a random-weight thinker checkpoint of a config's shapes, as the release lays it out. */
@Command(name = "init-random", mixinStandardHelpOptions = true,
        description = "Write a thinker checkpoint with random weights (N(0, initializer_range^2), norms 1, biases 0, as transformers "
                + "initialises a new model): the thinker tensors of a release with this config (the talker and code2wav are not written), "
                + "sharded as the reference index maps them, with model.safetensors.index.json and config.json. Written shard by shard.")
final class InitRandomCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, paramLabel = "FILE", description = "config.json of the model (full Qwen3-Omni or thinker-only).")
    Path config;

    @Option(names = "--out", paramLabel = "DIR", description = "Output folder (not needed with --dry-run).")
    Path out;

    @Option(names = "--index", paramLabel = "FILE", description = "Reference model.safetensors.index.json (or .json.gz) whose shard layout to copy "
            + "(default: the one beside --config, if any; without one, shards of at most 5 GB).")
    Path index;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16, or nf4: the bitsandbytes 4-bit serialization of the attention "
            + "projections and every expert (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--dry-run", description = "List the tensors that would be written (name, shape, shard) and the totals; allocate and write nothing.")
    boolean dryRun;

    @Override
    public Integer call() {
        var format = switch (dtype) {
            case "bf16", "bfloat16" -> RandomCheckpoint.Format.BF16;
            case "nf4" -> RandomCheckpoint.Format.NF4;
            default -> throw new IllegalArgumentException("--dtype " + dtype + ": bf16 or nf4");
        };
        Path reference = index;
        if (reference == null) {
            Path beside = config.toAbsolutePath().resolveSibling("model.safetensors.index.json");
            if (Files.exists(beside)) reference = beside;
            else if (Files.exists(beside.resolveSibling(beside.getFileName() + ".gz"))) reference = beside.resolveSibling(beside.getFileName() + ".gz");
        }
        var plan = RandomCheckpoint.plan(config, reference);
        long params = 0, bytes = 0;
        for (var p : plan.tensors()) {
            params += p.spec().numel();
            bytes += RandomCheckpoint.storedBytes(p.spec(), format);
            if (dryRun) System.out.println(p.spec().name() + "\t" + (format == RandomCheckpoint.Format.NF4 && RandomCheckpoint.quantized(p.spec().name())
                    ? "NF4" : "BF16") + "\t" + java.util.Arrays.toString(p.spec().shape()) + "\t" + p.shard());
        }
        String layout = reference == null ? "shards of at most 5 GB" : "the shard layout of " + reference;
        String skipped = plan.skippedByPrefix().isEmpty() ? "" : "; not written (not the thinker): " + plan.skippedByPrefix();
        System.err.printf("%d thinker tensors, %,d parameters, %s %.2f GB, %s%s%n", plan.tensors().size(), params,
                dryRun ? "would write" : "writing", bytes / 1e9, layout, skipped);
        if (dryRun) return 0;
        if (out == null) throw new IllegalArgumentException("--out is required (or --dry-run)");
        long written = RandomCheckpoint.write(config, reference, out, format, seed, System.err::println);
        System.out.printf("wrote %.2f GB of %s weights to %s%n", written / 1e9, format.name().toLowerCase(), out);
        return 0;
    }
}

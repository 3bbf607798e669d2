package dev.jomni.cli;

import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.data.SynthTask;
import java.nio.file.Path;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code omni data}: datasets in the seed formats. */
@Command(name = "data", mixinStandardHelpOptions = true, synopsisSubcommandLabel = "COMMAND",
        description = "Datasets in the original project's formats.",
        subcommands = {DataCommand.Synth.class, DataCommand.Check.class})
final class DataCommand implements Runnable {
    @Spec CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "name a subcommand: synth or check");
    }

    @Command(name = "synth", mixinStandardHelpOptions = true,
            description = "Write the synthetic audio task: 16 kHz WAVs and a dataset in the seed record format "
                    + "(counting, pitch, duration, loudness, order; 4-way multiple choice).")
    static final class Synth implements Callable<Integer> {
        @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder: DIR/data.json and DIR/audio/.")
        Path out;

        @Option(names = "--n", required = true, paramLabel = "N", description = "Number of records.")
        int n;

        @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed (default: ${DEFAULT-VALUE}).")
        long seed;

        @Override
        public Integer call() throws Exception {
            Path file = SynthTask.generate(out, n, seed);
            System.out.println("wrote " + n + " records to " + file + " (audio in " + out.resolve("audio") + ")");
            summarise(Dataset.load(file));
            return 0;
        }
    }

    @Command(name = "check", mixinStandardHelpOptions = true,
            description = "Load a dataset as evaluation and training would, and summarise it.")
    static final class Check implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "A JSON array or JSONL of seed, conversation or MMAR records.")
        Path file;

        @Option(names = {"--audio-dir", "--audio_dir"}, paramLabel = "DIR", description = "Audio root (default: the data file's folder).")
        Path audioDir;

        @Option(names = "--skip-bad-records", description = "Warn about bad records and leave them out instead of failing.")
        boolean skipBadRecords;

        @Option(names = "--keep-unscored",
                description = "Keep records whose answer is missing or none of the choices, without a ground truth (warned, not scored).")
        boolean keepUnscored;

        @Override
        public Integer call() {
            summarise(Dataset.load(file, LoadOptions.defaults().withAudioDir(audioDir).withSkipBadRecords(skipBadRecords)
                    .withRequireAnswers(!keepUnscored)));
            return 0;
        }
    }

    /** Records, skipped records, and per category the count and how often each letter is the answer. */
    static void summarise(Dataset d) {
        long unscored = d.items().stream().filter(q -> !q.scored()).count();
        System.out.println(d.size() + " records" + (d.skipped() > 0 ? ", " + d.skipped() + " bad record(s) skipped" : "")
                + (unscored > 0 ? ", " + unscored + " without a ground truth" : ""));
        var byCategory = new TreeMap<String, int[]>();
        for (AudioQa q : d.items()) {
            int[] c = byCategory.computeIfAbsent(q.category().isEmpty() ? "(no category)" : q.category(), k -> new int[27]);
            c[0]++;
            if (q.scored()) c[1 + Math.min(q.answerIndex(), 25)]++;
        }
        byCategory.forEach((cat, c) -> {
            var sb = new StringBuilder(String.format("  %-40s %6d   answers", cat, c[0]));
            for (int i = 1; i < c.length; i++) if (c[i] > 0) sb.append(' ').append((char) ('A' + i - 1)).append('=').append(c[i]);
            System.out.println(sb);
        });
    }
}

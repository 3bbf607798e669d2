package dev.jomni.cli;

import dev.jomni.train.data.Dataset;
import dev.jomni.train.eval.Submission;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code omni submission}: the challenge's result.jsonl. */
@Command(name = "submission", mixinStandardHelpOptions = true, synopsisSubcommandLabel = "COMMAND",
        description = "The challenge submission (result.jsonl, zipped).", subcommands = SubmissionCommand.Check.class)
final class SubmissionCommand implements Runnable {
    @Spec CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "name a subcommand: check");
    }

    @Command(name = "check", mixinStandardHelpOptions = true,
            description = "Check a result.jsonl or submission zip; list every problem. Exit code 0 only when valid.")
    static final class Check implements Callable<Integer> {
        @Parameters(paramLabel = "ZIP|FILE", description = "A result.jsonl, or a zip holding exactly one top-level result.jsonl.")
        Path file;

        @Option(names = "--data", paramLabel = "FILE", description = "The dataset: also report ids missing, unknown or duplicated against it.")
        Path data;

        @Option(names = "--zip", paramLabel = "OUT", description = "When FILE is a valid result.jsonl, also write the submission zip OUT.")
        Path zip;

        @Override
        public Integer call() throws Exception {
            Submission.Check c = Submission.check(file, data == null ? null : Dataset.readIds(data));
            for (String p : c.problems()) System.out.println(p);
            if (!c.valid()) {
                System.out.println("INVALID: " + c.problems().size() + " problem(s) in " + c.records() + " record(s)");
                return 1;
            }
            System.out.println("valid: " + c.records() + " record(s)" + (data != null ? ", every dataset id once" : ""));
            if (zip != null) {
                Submission.zip(file, zip);
                System.out.println("wrote " + zip);
            }
            return 0;
        }
    }
}

package dev.jomni.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code omni} command: one subcommand per job; each lives in its own class in this package. */
@Command(name = "omni", mixinStandardHelpOptions = true, version = "jomni 0.1.0-SNAPSHOT",
        description = "Train and serve Qwen3-Omni for audio reasoning on the JVM.",
        subcommands = {DemoCommand.class, SftCommand.class, RestCommand.class, GrpoCommand.class, ForwardCommand.class, GenerateCommand.class, EvalCommand.class,
                ServeCommand.class, MergeCommand.class, TokenizeCommand.class, DataCommand.class, SubmissionCommand.class, AnalyzeCommand.class,
                InitRandomCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns its exit code (tests call this instead of main). */
    static int run(String... args) {
        var cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            // the whole command path ("omni data check:"), so that a nested command's errors name it as typed
            cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": " + e.getMessage());
            if (System.getenv("JOMNI_TRACE") != null) e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }
}

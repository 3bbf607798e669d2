package dev.jomni.cli;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code omni} command: one subcommand per job; each lives in its own class in this package. */
@Command(name = "omni", mixinStandardHelpOptions = true, version = "jomni 0.1.0-SNAPSHOT",
        description = {"Train and serve Qwen3-Omni for audio reasoning on the JVM.",
                "Every option takes its snake_case spelling beside the kebab-case one (--max_new_tokens = --max-new-tokens)."},
        subcommands = {DemoCommand.class, SftCommand.class, RestCommand.class, GrpoCommand.class, ForwardCommand.class, GenerateCommand.class, EvalCommand.class,
                ServeCommand.class, MergeCommand.class, QuantizeCommand.class, InitRandomCommand.class, TokenizeCommand.class, ChatTemplateCommand.class,
                DataCommand.class, SubmissionCommand.class, AnalyzeCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns its exit code (tests call this instead of main). */
    static int run(String... args) {
        var cli = commandLine();
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            // the whole command path ("omni data check:"), so that a nested command's errors name it as typed
            cmd.getErr().println(cmd.getCommandSpec().qualifiedName() + ": " + e.getMessage());
            if (System.getenv("JOMNI_TRACE") != null) e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(spellingsOf(cli, args));
    }

    static CommandLine commandLine() {
        return new CommandLine(new Main());
    }

    /**
     * The arguments with each {@code --long_option} a command does not know under that spelling
     * rewritten to the one it does, underscores and hyphens swapped ({@code --max_new_tokens} →
     * {@code --max-new-tokens}, {@code --audio-dir} → {@code --audio_dir}), for the command that
     * the subcommand names before it select. Nothing after {@code --} is touched.
     */
    static String[] spellingsOf(CommandLine root, String[] args) {
        var out = new ArrayList<String>(args.length);
        CommandLine command = root;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--")) {
                out.addAll(List.of(args).subList(i, args.length));
                break;
            }
            CommandLine sub = command.getSubcommands().get(a);
            if (sub != null) {
                command = sub;
            } else if (a.startsWith("--") && a.length() > 2) {
                int eq = a.indexOf('=');
                String name = eq < 0 ? a : a.substring(0, eq), rest = eq < 0 ? "" : a.substring(eq);
                var spec = command.getCommandSpec();
                if (spec.findOption(name) == null) {
                    String body = name.substring(2);
                    for (String other : new String[] {"--" + body.replace('_', '-'), "--" + body.replace('-', '_')}) {
                        if (spec.findOption(other) != null) {
                            a = other + rest;
                            break;
                        }
                    }
                }
            }
            out.add(a);
        }
        return out.toArray(String[]::new);
    }
}

package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/** The command line's help against itself and against the README's command table. */
class HelpAndReadmeTest {
    /** Every command below {@code omni}, by its path ("data synth"). */
    static Map<String, CommandLine> commands() {
        var out = new LinkedHashMap<String, CommandLine>();
        collect("", Main.commandLine(), out);
        return out;
    }

    private static void collect(String prefix, CommandLine cmd, Map<String, CommandLine> out) {
        cmd.getSubcommands().forEach((name, sub) -> {
            if (!sub.getSubcommands().isEmpty()) collect(prefix + name + " ", sub, out);
            else out.put(prefix + name, sub);
        });
    }

    private static List<OptionSpec> options(CommandLine cmd) {
        return cmd.getCommandSpec().options().stream().filter(o -> !o.usageHelp() && !o.versionHelp()).toList();
    }

    @Test
    void everyDefaultIsShownInTheHelp() {
        var missing = new ArrayList<String>();
        commands().forEach((path, cmd) -> {
            for (var o : options(cmd)) {
                if (o.defaultValue() == null) continue;
                boolean offFlag = o.arity().max() == 0 && "false".equals(o.defaultValue());
                String text = String.join(" ", o.description());
                if (!offFlag && !text.toLowerCase().contains("default")) missing.add(path + " " + o.longestName() + " (default " + o.defaultValue() + ")");
            }
        });
        assertEquals(List.of(), missing, "options whose --help does not say their default");
    }

    @Test
    void everyOptionIsDescribed() {
        var bare = new ArrayList<String>();
        commands().forEach((path, cmd) -> {
            for (var o : options(cmd)) if (String.join("", o.description()).isBlank()) bare.add(path + " " + o.longestName());
        });
        assertEquals(List.of(), bare, "options without a description");
    }

    /** Each name of each option, in either spelling, reaches that option: --max_new_tokens and --max-new-tokens alike. */
    @Test
    void snakeCaseAndKebabCaseSpellingsAreBothAccepted() {
        var root = Main.commandLine();
        commands().forEach((path, cmd) -> {
            for (var o : options(cmd)) {
                for (String name : o.names()) {
                    if (!name.startsWith("--")) continue;
                    for (String spelling : List.of("--" + name.substring(2).replace('-', '_'), "--" + name.substring(2).replace('_', '-'))) {
                        var args = new ArrayList<>(List.of(path.split(" ")));
                        args.add(spelling);
                        String[] rewritten = Main.spellingsOf(root, args.toArray(String[]::new));
                        assertTrue(cmd.getCommandSpec().findOption(rewritten[rewritten.length - 1]) == o, path + " " + spelling);
                    }
                }
            }
        });
        // and a real parse: eval's --audio-dir and --batch-size given in the seed's spelling
        var parsed = root.parseArgs(Main.spellingsOf(root, new String[] {"eval", "--model", "m", "--data", "d.json", "--out", "o",
                "--audio_dir", "wavs", "--batch_size=2", "--max_new_tokens", "3"}));
        var eval = parsed.subcommand().matchedOptions();
        assertEquals(List.of("--model", "--data", "--out", "--audio-dir", "--batch-size", "--max-new-tokens"),
                eval.stream().map(OptionSpec::longestName).map(n -> n.replace('_', '-')).toList());
        assertEquals("2", parsed.subcommand().matchedOption("--batch-size").stringValues().getFirst());
    }

    // ---------------------------------------------------------------- README

    private static final Pattern ROW = Pattern.compile("^\\| `omni ([^`]*)` \\|.*\\|$");
    private static final Pattern FLAG = Pattern.compile("--[A-Za-z][\\w-]*");

    /** The README's command table: the first cell of each row, by command path. */
    static Map<String, String> readmeRows() throws IOException {
        var rows = new LinkedHashMap<String, String>();
        var names = commands().keySet();
        for (String line : Files.readAllLines(Path.of("../README.md"))) {
            var m = ROW.matcher(line);
            if (!m.matches()) continue;
            String usage = m.group(1).replace("\\|", "|");
            String path = names.stream().filter(n -> usage.equals(n) || usage.startsWith(n + " ")).findFirst()
                    .orElseThrow(() -> new AssertionError("README row names no omni command: " + usage));
            rows.put(path, usage.substring(path.length()));
        }
        return rows;
    }

    @Test
    void readmeTableListsEveryCommand() throws IOException {
        assertEquals(List.copyOf(commands().keySet()).stream().sorted().toList(), readmeRows().keySet().stream().sorted().toList());
    }

    /**
     * Each row's flags are the command's own, spelled as its --help spells them; required options
     * stand outside brackets, optional ones inside; a literal value shown is the default; and a row
     * lists every option unless it ends in "…" (the long trainers' and servers' rows pick the common ones).
     */
    @Test
    void readmeFlagsAgreeWithTheHelp() throws IOException {
        var problems = new ArrayList<String>();
        for (var row : readmeRows().entrySet()) {
            String path = row.getKey(), usage = row.getValue();
            var cmd = commands().get(path);
            var seen = new java.util.HashSet<OptionSpec>();
            var m = FLAG.matcher(usage);
            while (m.find()) {
                String flag = m.group();
                OptionSpec o = cmd.getCommandSpec().findOption(flag);
                if (o == null) {
                    problems.add("omni " + path + ": README's " + flag + " is not an option (--help: " + names(cmd) + ")");
                    continue;
                }
                seen.add(o);
                boolean bracketed = depth(usage, m.start()) > 0;
                if (o.required() && bracketed) problems.add("omni " + path + ": " + flag + " is required, README shows it optional");
                if (!o.required() && !bracketed) problems.add("omni " + path + ": " + flag + " is optional, README shows it required");
                String value = valueAfter(usage, m.end());
                if (value != null && o.defaultValue() != null && !sameValue(value, o.defaultValue()))
                    problems.add("omni " + path + ": README shows " + flag + " " + value + ", the default is " + o.defaultValue());
            }
            if (!usage.strip().endsWith("…")) {
                for (var o : options(cmd)) if (!seen.contains(o)) problems.add("omni " + path + ": " + o.longestName() + " is not in the README row");
            }
            for (var o : options(cmd)) {
                if (o.required() && !seen.contains(o)) problems.add("omni " + path + ": required " + o.longestName() + " is not in the README row");
            }
        }
        assertEquals(List.of(), problems);
    }

    private static String names(CommandLine cmd) {
        return String.join(" ", options(cmd).stream().map(OptionSpec::longestName).toList());
    }

    private static int depth(String s, int at) {
        int d = 0;
        for (int i = 0; i < at; i++) {
            if (s.charAt(i) == '[') d++;
            else if (s.charAt(i) == ']') d--;
        }
        return d;
    }

    /** A literal value written after a flag ("--seed 42"), or null for a placeholder (N, DIR), alternatives (a|b) or none. */
    private static String valueAfter(String usage, int end) {
        var m = Pattern.compile("^[ =]([^ \\]\\[]+)").matcher(usage.substring(end));
        if (!m.find()) return null;
        String v = m.group(1);
        boolean number = v.matches("-?[0-9][-0-9.eE,]*");
        if (!number && (v.startsWith("-") || v.contains("|") || v.equals(v.toUpperCase()))) return null;
        return v;
    }

    private static boolean sameValue(String a, String b) {
        if (a.equals(b)) return true;
        try {
            return Double.parseDouble(a) == Double.parseDouble(b);
        } catch (NumberFormatException e) {
            return false;
        }
    }

    @Test
    void theCommandTreeIsComplete() {
        assertNotNull(commands().get("chat-template"));
        assertNotNull(commands().get("data synth"));
    }
}

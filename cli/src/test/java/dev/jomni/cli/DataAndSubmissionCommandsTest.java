package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.train.eval.AnswerGenerator;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class DataAndSubmissionCommandsTest {
    @TempDir Path dir;
    PrintStream savedOut, savedErr;
    ByteArrayOutputStream out, err;

    @BeforeEach
    void capture() {
        savedOut = System.out;
        savedErr = System.err;
        out = new ByteArrayOutputStream();
        err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(savedOut);
        System.setErr(savedErr);
    }

    String stdout() { return out.toString(StandardCharsets.UTF_8); }

    /** Answers a random letter per sample, as an untrained model would: accuracy near chance. */
    static AnswerGenerator randomLetters(long seed) {
        var rng = new SplittableRandom(seed);
        return (batch, n) -> {
            var all = new ArrayList<List<String>>();
            for (var p : batch) {
                var samples = new ArrayList<String>();
                for (int k = 0; k < n; k++)
                    samples.add("<think>\nguessing\n</think>\n\nANSWER: (" + (char) ('A' + rng.nextInt(p.item().choices().size())) + ")");
                all.add(samples);
            }
            return all;
        };
    }

    @Test
    void synthWritesADatasetThatDataCheckLoads() {
        Path synth = dir.resolve("synth");
        assertEquals(0, Main.run("data", "synth", "--out", synth.toString(), "--n", "20", "--seed", "3"), err.toString());
        assertTrue(Files.isRegularFile(synth.resolve("data.json")));
        assertTrue(stdout().contains("20 records"), stdout());
        assertTrue(stdout().contains("Counting") && stdout().contains("A=1 B=1 C=1 D=1"), stdout());
        assertEquals(0, Main.run("data", "check", synth.resolve("data.json").toString()));
    }

    @Test
    void dataCheckFailsOnABadRecordNamingItUnlessSkipping() throws Exception {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, "{\"id\":\"x\",\"sound\":\"x.wav\",\"question\":\"Q\\n(A) a\\n(B) b\",\"answer\":\"a\"}\n");
        assertEquals(1, Main.run("data", "check", f.toString()));
        assertTrue(err.toString().contains("record 'x' (#0): field 'sound': audio file"), err.toString());
        assertEquals(0, Main.run("data", "check", "--skip-bad-records", f.toString()));
        assertTrue(stdout().contains("0 records, 1 bad record(s) skipped"), stdout());
    }

    @Test
    void dataCheckReportsEveryBadRecordUnderItsOwnName() throws Exception {
        Path f = dir.resolve("d.jsonl");
        Files.writeString(f, "{\"id\":\"x\",\"sound\":\"x.wav\",\"question\":\"Q\\n(A) a\\n(B) b\",\"answer\":\"a\"}\n"
                + "{\"id\":\"y\",\"sound\":\"y.wav\",\"question\":\"Q\\n(A) a\\n(B) b\",\"answer\":\"c\"}\n");
        assertEquals(1, Main.run("data", "check", f.toString()));
        String e = err.toString();
        assertTrue(e.startsWith("omni data check: " + f + ": 2 bad records of 2"), e);
        assertTrue(e.contains("record 'x' (#0): field 'sound'") && e.contains("record 'y' (#1)"), e);
    }

    @Test
    void dataSynthErrorsNameTheCommandOnce() {
        assertEquals(1, Main.run("data", "synth", "--out", dir.resolve("s").toString(), "--n", "0"));
        assertTrue(err.toString().startsWith("omni data synth: n = 0"), err.toString());
    }

    @Test
    void evalOnTheSyntheticTaskWritesASubmissionThatCheckAcceptsAndAnalyzeScores() throws Exception {
        Path synth = dir.resolve("synth"), runDir = dir.resolve("run");
        assertEquals(0, Main.run("data", "synth", "--out", synth.toString(), "--n", "40", "--seed", "1"));
        String data = synth.resolve("data.json").toString();
        int rc = new CommandLine(new EvalCommand(randomLetters(5))).execute("--model", dir.resolve("none").toString(), "--data", data,
                "--out", runDir.toString(), "--batch-size", "4", "--num-samples", "3", "--vote", "majority");
        assertEquals(0, rc, err.toString());
        assertTrue(stdout().contains("accuracy (strict matching") && stdout().contains("Counting"), stdout());
        assertTrue(err.toString().contains("eval [") && err.toString().contains("40/40"), "progress bar on stderr");

        Path result = runDir.resolve("result.jsonl");
        assertEquals(0, Main.run("submission", "check", "--data", data, result.toString()), stdout());
        assertTrue(stdout().contains("valid: 40 record(s)"), stdout());
        assertEquals(0, Main.run("analyze", "--data", data, result.toString()));
        assertTrue(stdout().contains("Performance by CATEGORY") && stdout().contains("WORST 10 PERFORMERS"), stdout());
        String analysis = stdout().substring(stdout().lastIndexOf("accuracy (strict matching"));
        assertEquals(1, analysis.split("Performance by CATEGORY", -1).length - 1, analysis);
        assertTrue(!analysis.contains("\ncategory\n") && !analysis.contains("\nsub-category\n"), "the groups are printed once: " + analysis);
        assertTrue(Files.readString(runDir.resolve("metrics.json")).contains("\"prompt\" : \"rest\""));
    }

    /** An answer generator that fails the test if it is asked for anything. */
    static AnswerGenerator never() {
        return (batch, n) -> { throw new AssertionError("the run started"); };
    }

    @Test
    void evalRefusesAnOutputThatIsAFileBeforeAnyWork() throws Exception {
        Path synth = dir.resolve("synth"), file = Files.writeString(dir.resolve("taken"), "x");
        assertEquals(0, Main.run("data", "synth", "--out", synth.toString(), "--n", "2", "--seed", "1"));
        var cli = new CommandLine(new EvalCommand(never()));
        var msg = new java.util.concurrent.atomic.AtomicReference<String>();
        cli.setExecutionExceptionHandler((e, c, p) -> { msg.set(e.getMessage()); return 1; });
        assertEquals(1, cli.execute("--model", "none", "--data", synth.resolve("data.json").toString(), "--out", file.toString()));
        assertTrue(msg.get().contains(file.toString()) && msg.get().contains("not a directory"), msg.get());
    }

    @Test
    void evalOnAnEmptyDatasetFails() throws Exception {
        Path data = Files.writeString(dir.resolve("empty.jsonl"), "");
        var cli = new CommandLine(new EvalCommand(never()));
        var msg = new java.util.concurrent.atomic.AtomicReference<String>();
        cli.setExecutionExceptionHandler((e, c, p) -> { msg.set(e.getMessage()); return 1; });
        assertEquals(1, cli.execute("--model", "none", "--data", data.toString(), "--out", dir.resolve("run").toString()));
        assertTrue(msg.get().contains(data.toString()) && msg.get().contains("no records"), msg.get());
    }

    @Test
    void helpFormatsItsPercentSigns() {
        for (String command : List.of("eval", "analyze")) {
            assertEquals(0, Main.run(command, "--help"));
            assertTrue(stdout().contains("95% intervals"), stdout());
        }
        assertTrue(!err.toString().contains("picocli WARN"), err.toString());
    }

    @Test
    void submissionCheckListsEveryProblemAndExitsNonZero() throws Exception {
        Path f = dir.resolve("result.jsonl");
        Files.writeString(f, "{\"id\":\"a\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"\"}\n"
                + "{\"id\":\"a\",\"answer_prediction\":\"x\"}\n");
        assertEquals(1, Main.run("submission", "check", f.toString()));
        String s = stdout();
        assertTrue(s.contains("'answer_prediction' is empty") && s.contains("missing 'thinking_prediction'")
                && s.contains("duplicated id") && s.contains("INVALID: 3 problem(s) in 2 record(s)"), s);
    }

    @Test
    void submissionCheckZipsAValidFile() throws Exception {
        Path f = dir.resolve("result.jsonl"), zip = dir.resolve("sub.zip");
        Files.writeString(f, "{\"id\":\"a\",\"thinking_prediction\":\"t\",\"answer_prediction\":\"x\"}\n");
        assertEquals(0, Main.run("submission", "check", "--zip", zip.toString(), f.toString()));
        assertEquals(0, Main.run("submission", "check", zip.toString()));
    }
}

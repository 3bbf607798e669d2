package dev.jomni.cli;

import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.eval.AccuracyReport;
import dev.jomni.train.eval.Submission;
import dev.jomni.train.score.Matching;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code omni analyze}: accuracy and error analysis by category of a result.jsonl. */
@Command(name = "analyze", mixinStandardHelpOptions = true,
        description = "Score a result.jsonl (or submission zip) against its dataset: accuracy with 95%% intervals, "
                + "then modality, category, sub-category, language and source worst first.")
final class AnalyzeCommand implements Callable<Integer> {
    @Parameters(paramLabel = "RESULT", description = "result.jsonl or a submission zip.")
    Path result;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "The dataset with the ground truth.")
    Path data;

    @Option(names = "--top-n", defaultValue = "10", paramLabel = "N", description = "Worst groups listed per field (default: ${DEFAULT-VALUE}).")
    int topN;

    @Option(names = "--matching", defaultValue = "strict", paramLabel = "MODE",
            description = "strict (default) or legacy-substring (the original filter.py rule, for comparison only).")
    String matching;

    @Option(names = "--skip-bad-records", description = "Warn about bad dataset records and leave them out instead of failing.")
    boolean skipBadRecords;

    @Override
    public Integer call() throws Exception {
        // no audio is read, and a record without a usable answer is only left out of the scores
        Dataset d = Dataset.load(data, LoadOptions.defaults().withCheckAudio(false).withRequireAnswers(false)
                .withSkipBadRecords(skipBadRecords));
        var answers = new LinkedHashMap<String, String>();
        Submission.read(result).forEach((id, p) -> answers.put(id, p.answer()));
        Matching m = Matching.byId(matching);
        // the overall line and its notes only: the groups follow once, worst first (printing eval's table too
        // showed category and sub-category twice, in two formats)
        System.out.print(AccuracyReport.of(d, answers, m, List.of()).table());
        System.out.println();
        System.out.print(AccuracyReport.of(d, answers, m, AccuracyReport.ANALYSIS_DIMENSIONS).worstFirst(topN));
        return 0;
    }
}

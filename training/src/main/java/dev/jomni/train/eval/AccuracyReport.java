package dev.jomni.train.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.score.Matching;
import dev.jomni.train.score.Scorer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Accuracy over a dataset, overall and per group of a record field ({@code category},
 * {@code sub-category}, …), each with a 95 % Wilson score interval. One definition: correct predictions
 * over <b>all</b> records of the dataset; a record without a prediction, or with an empty one, is wrong.
 * Predictions for ids the dataset lacks are counted in {@link #unknownIds()} and scored nowhere; records
 * kept without a ground truth ({@code AudioQa.scored()} false) are counted in {@link #unscored()} and left
 * out of every tally.
 * Records without the field (or with null) are left out of that field's groups.
 */
public final class AccuracyReport {
    /** The dimensions {@code omni eval} reports. */
    public static final List<String> EVAL_DIMENSIONS = List.of("category", "sub-category");
    /** The dimensions {@code analyze_errors_by_category.py} printed. */
    public static final List<String> ANALYSIS_DIMENSIONS = List.of("modality", "category", "sub-category", "language", "source");
    /** z for a two-sided 95 % interval. */
    private static final double Z95 = 1.959963984540054;

    private final Matching matching;
    private final Tally overall;
    private final Map<String, List<Tally>> groups;
    private final int missing, unknownIds, unscored;

    /**
     * Correct count, total and 95 % Wilson interval of one group. Wilson rather than the normal
     * approximation because groups are small and accuracies near 0 or 1, where p ± z·√(p(1−p)/n)
     * leaves [0, 1] or collapses to a point.
     */
    public record Tally(String group, int correct, int total) {
        public double accuracy() { return total == 0 ? 0 : correct / (double) total; }

        public double low() { return wilson(-1); }

        public double high() { return wilson(+1); }

        private double wilson(int sign) {
            if (total == 0) return sign < 0 ? 0 : 1;
            double n = total, p = correct / n, z2 = Z95 * Z95;
            double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
            double half = Z95 * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
            return Math.clamp(centre + sign * half, 0.0, 1.0);
        }
    }

    private AccuracyReport(Matching matching, Tally overall, Map<String, List<Tally>> groups, int missing, int unknownIds,
                           int unscored) {
        this.matching = matching;
        this.overall = overall;
        this.groups = groups;
        this.missing = missing;
        this.unknownIds = unknownIds;
        this.unscored = unscored;
    }

    /** Scores {@code answers} (id → predicted answer text) against {@code data}. */
    public static AccuracyReport of(Dataset data, Map<String, String> answers, Matching matching, List<String> dimensions) {
        var counts = new LinkedHashMap<String, TreeMap<String, int[]>>();
        for (String d : dimensions) counts.put(d, new TreeMap<>());
        int correct = 0, missing = 0, unscored = 0;
        for (AudioQa item : data.items()) {
            if (!item.scored()) {
                unscored++;
                continue;
            }
            String answer = answers.get(item.id());
            if (answer == null) missing++;
            boolean right = answer != null && !answer.equals(Submission.NO_ANSWER) && Scorer.isCorrect(answer, item, matching);
            if (right) correct++;
            for (String d : dimensions) {
                String value = item.tag(d);
                if (value == null) continue;
                int[] c = counts.get(d).computeIfAbsent(value, k -> new int[2]);
                c[1]++;
                if (right) c[0]++;
            }
        }
        var ids = data.byId();
        int unknown = (int) answers.keySet().stream().filter(id -> !ids.containsKey(id)).count();
        var groups = new LinkedHashMap<String, List<Tally>>();
        counts.forEach((d, byValue) -> {
            var list = new ArrayList<Tally>();
            byValue.forEach((v, c) -> list.add(new Tally(v, c[0], c[1])));
            if (!list.isEmpty()) groups.put(d, List.copyOf(list));
        });
        return new AccuracyReport(matching, new Tally("overall", correct, data.size() - unscored), groups, missing, unknown,
                unscored);
    }

    public Tally overall() { return overall; }

    /** Per dimension, its groups in name order; dimensions no record has are absent. */
    public Map<String, List<Tally>> groups() { return groups; }

    /** Records of the dataset without a prediction (counted wrong). */
    public int missing() { return missing; }

    /** Predictions whose id is not in the dataset (not counted). */
    public int unknownIds() { return unknownIds; }

    /** Records without a ground truth, not scored. */
    public int unscored() { return unscored; }

    public Matching matching() { return matching; }

    /** The console table: overall, then each dimension's groups, with intervals. */
    public String table() {
        int longest = 22;
        for (var list : groups.values()) for (Tally t : list) longest = Math.max(longest, t.group().length());
        int width = Math.min(longest + 2, 60);
        var sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "accuracy (%s matching; 95%% Wilson interval; no prediction = wrong)%n",
                matching.id()));
        String head = "%-" + width + "s %6s %6s %9s   %s%n";
        sb.append(String.format(Locale.ROOT, head, "group", "right", "total", "accuracy", "95% CI"));
        row(sb, width, overall, "");
        groups.forEach((d, list) -> {
            sb.append(d).append('\n');
            for (Tally t : list) row(sb, width, t, "  ");
        });
        if (missing > 0) sb.append(String.format(Locale.ROOT, "%d record(s) without a prediction%n", missing));
        if (unscored > 0) sb.append(String.format(Locale.ROOT, "%d record(s) without a ground truth, not scored%n", unscored));
        if (unknownIds > 0) sb.append(String.format(Locale.ROOT, "%d prediction(s) for ids not in the dataset, ignored%n", unknownIds));
        return sb.toString();
    }

    private static void row(StringBuilder sb, int width, Tally t, String indent) {
        String name = indent + t.group();
        if (name.length() > width) name = name.substring(0, width - 1) + "\u2026";
        sb.append(String.format(Locale.ROOT, "%-" + width + "s %6d %6d %8.2f%%   [%6.2f%%, %6.2f%%]%n", name,
                t.correct(), t.total(), 100 * t.accuracy(), 100 * t.low(), 100 * t.high()));
    }

    /**
     * Error analysis as {@code analyze_errors_by_category.py} printed it: per dimension, the groups worst
     * first, then the {@code topN} worst.
     */
    public String worstFirst(int topN) {
        var sb = new StringBuilder();
        groups.forEach((d, list) -> {
            var sorted = new ArrayList<>(list);
            sorted.sort(Comparator.comparingDouble(Tally::accuracy).thenComparing(Tally::group));
            sb.append("=".repeat(80)).append('\n').append("Performance by ").append(d.toUpperCase(Locale.ROOT)).append('\n')
                    .append("=".repeat(80)).append('\n');
            sb.append(String.format(Locale.ROOT, "%-40s %-12s %-15s %s%n", "Category", "Accuracy", "Correct/Total", "95% CI"));
            sb.append("-".repeat(80)).append('\n');
            for (Tally t : sorted)
                sb.append(String.format(Locale.ROOT, "%-40s %6.2f%%     %4d/%-4d       [%.2f%%, %.2f%%]%n", t.group(),
                        100 * t.accuracy(), t.correct(), t.total(), 100 * t.low(), 100 * t.high()));
            sb.append(String.format(Locale.ROOT, "%nWORST %d PERFORMERS:%n", topN)).append("-".repeat(80)).append('\n');
            for (int i = 0; i < Math.min(topN, sorted.size()); i++) {
                Tally t = sorted.get(i);
                sb.append(String.format(Locale.ROOT, "%d. %-38s %6.2f%%  (%d/%d)%n", i + 1, t.group(), 100 * t.accuracy(),
                        t.correct(), t.total()));
            }
            sb.append('\n');
        });
        return sb.toString();
    }

    /** {@code {matching, interval, overall:{correct,total,accuracy,ci_low,ci_high}, <dimension>:{group:{…}}, missing, unknown_ids}}. */
    public ObjectNode json() {
        var mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.put("matching", matching.id());
        root.put("interval", "wilson-95");
        root.set("overall", tallyJson(mapper, overall));
        groups.forEach((d, list) -> {
            ObjectNode g = root.putObject(d);
            for (Tally t : list) g.set(t.group(), tallyJson(mapper, t));
        });
        root.put("missing", missing);
        root.put("unknown_ids", unknownIds);
        root.put("unscored", unscored);
        return root;
    }

    private static ObjectNode tallyJson(ObjectMapper mapper, Tally t) {
        return mapper.createObjectNode().put("correct", t.correct()).put("total", t.total()).put("accuracy", t.accuracy())
                .put("ci_low", t.low()).put("ci_high", t.high());
    }
}

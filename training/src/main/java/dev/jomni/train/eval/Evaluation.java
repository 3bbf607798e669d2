package dev.jomni.train.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.train.Progress;
import dev.jomni.train.PythonText;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.score.AnswerExtractor;
import dev.jomni.train.score.Completion;
import dev.jomni.train.score.Scorer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An evaluation run: every record of a dataset prompted, answered by an {@link AnswerGenerator} in
 * batches, each completion split ({@link Completion}), its answer extracted ({@link AnswerExtractor})
 * and mapped to a choice ({@link Scorer#choiceOf}), the samples voted into one prediction and scored.
 *
 * <pre>{@code
 * var data = Dataset.load(dataFile, LoadOptions.defaults().withAudioDir(audioDir));
 * var run = Evaluation.run(data, generator, EvalOptions.defaults(), Progress.start("eval", data.size()));
 * run.write(outDir);                        // result.jsonl, generations.jsonl, metrics.json
 * System.out.print(run.report().table());   // accuracy overall, by category and sub-category
 * }</pre>
 *
 * @param data    the dataset
 * @param options how it ran
 * @param items   one result per record, in dataset order
 */
public record Evaluation(Dataset data, EvalOptions options, List<ItemResult> items) {
    /** One completion: its raw text, the split, the extracted answer and the choice it names (-1: none). */
    public record Sample(String raw, Completion completion, String extracted, int choice) {}

    /**
     * One record's outcome.
     *
     * @param prediction the submission line: the voted choice's text (trimmed) when the answer names a
     *                   choice, so exact-match graders agree, else the extracted text as written
     */
    public record ItemResult(AudioQa item, List<Sample> samples, Prediction prediction, boolean correct) {}

    public Evaluation {
        items = List.copyOf(items);
    }

    /**
     * Runs {@code generator} over {@code data}.
     *
     * @param progress advanced by each batch's size and closed at the end; null for none
     */
    public static Evaluation run(Dataset data, AnswerGenerator generator, EvalOptions options, Progress progress) {
        var results = new ArrayList<ItemResult>(data.size());
        List<AudioQa> all = data.items();
        try {
            for (int from = 0; from < all.size(); from += options.batchSize()) {
                List<AudioQa> slice = all.subList(from, Math.min(all.size(), from + options.batchSize()));
                var batch = new ArrayList<PromptedItem>(slice.size());
                for (AudioQa q : slice) batch.add(new PromptedItem(q, options.prompt().build(q)));
                List<List<String>> out = generator.generate(batch, options.numSamples());
                if (out == null || out.size() != batch.size())
                    throw new IllegalStateException("answer generator returned " + (out == null ? "null" : out.size() + " lists")
                            + " for a batch of " + batch.size() + " (first id '" + slice.getFirst().id() + "')");
                for (int i = 0; i < slice.size(); i++) {
                    List<String> texts = out.get(i);
                    if (texts == null || texts.size() != options.numSamples())
                        throw new IllegalStateException("answer generator returned " + (texts == null ? "null" : texts.size())
                                + " samples for id '" + slice.get(i).id() + "', expected " + options.numSamples());
                    results.add(score(slice.get(i), texts, options));
                }
                if (progress != null) progress.advance(slice.size());
            }
        } finally {
            if (progress != null) progress.close();
        }
        return new Evaluation(data, options, results);
    }

    static ItemResult score(AudioQa item, List<String> texts, EvalOptions options) {
        var samples = new ArrayList<Sample>(texts.size());
        for (String raw : texts) {
            String text = raw == null ? "" : raw;
            Completion c = Completion.split(text);
            String extracted = AnswerExtractor.extract(c.answerText());
            samples.add(new Sample(text, c, extracted, extracted.isEmpty() ? -1 : Scorer.choiceOf(extracted, item.choices())));
        }
        Sample chosen = switch (options.vote()) {
            case FIRST -> samples.getFirst();
            case MAJORITY -> majority(samples);
        };
        // the choice's own text, trimmed (MMAR lists "2040 " for the answer "2040"), so exact-match graders agree
        String answer = chosen.choice() >= 0 ? PythonText.strip(item.choices().get(chosen.choice())) : chosen.extracted();
        var prediction = new Prediction(item.id(), chosen.completion().thinking(), answer);
        return new ItemResult(item, samples, prediction, Scorer.isCorrect(answer, item, options.matching()));
    }

    /** The first sample naming the most-named choice (ties: the choice named first); the first sample if none names one. */
    static Sample majority(List<Sample> samples) {
        var votes = new LinkedHashMap<Integer, Integer>();
        for (Sample s : samples) if (s.choice() >= 0) votes.merge(s.choice(), 1, Integer::sum);
        int best = -1, bestVotes = 0;
        for (var e : votes.entrySet()) if (e.getValue() > bestVotes) { best = e.getKey(); bestVotes = e.getValue(); }
        for (Sample s : samples) if (s.choice() == best) return s;
        return samples.getFirst();
    }

    public List<Prediction> predictions() {
        return items.stream().map(ItemResult::prediction).toList();
    }

    /** Accuracy by {@link AccuracyReport#EVAL_DIMENSIONS}, from the same answers {@code result.jsonl} holds. */
    public AccuracyReport report() {
        Map<String, String> answers = new LinkedHashMap<>();
        for (ItemResult r : items) answers.put(r.item().id(), r.prediction().answer());
        return AccuracyReport.of(data, answers, options.matching(), AccuracyReport.EVAL_DIMENSIONS);
    }

    /**
     * Writes into {@code dir}: {@code result.jsonl} (the submission), {@code generations.jsonl} (per record:
     * prompt preset, ground truth, every sample's raw text, thinking, answer text, extracted answer, choice)
     * and {@code metrics.json} (the options, the prompt preset, and {@link AccuracyReport#json()}).
     */
    public void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        int cut = Submission.write(dir.resolve(Submission.ENTRY), predictions());
        var mapper = new ObjectMapper();
        var gens = new StringBuilder();
        for (ItemResult r : items) {
            ObjectNode n = mapper.createObjectNode();
            n.put("id", r.item().id()).put("prompt", options.prompt().id()).put("ground_truth", r.item().answer())
                    .put("answer_prediction", r.prediction().answer()).put("correct", r.correct());
            ArrayNode cands = n.putArray("candidates");
            for (Sample s : r.samples())
                cands.addObject().put("raw_output", s.raw()).put("thinking_prediction", s.completion().thinking())
                        .put("answer_text", s.completion().answerText()).put("answer_prediction", s.extracted())
                        .put("choice", s.choice());
            gens.append(mapper.writeValueAsString(n)).append('\n');
        }
        Files.writeString(dir.resolve("generations.jsonl"), gens, StandardCharsets.UTF_8);
        ObjectNode metrics = mapper.createObjectNode();
        metrics.put("data", data.file().toString()).put("records", data.size()).put("skipped_records", data.skipped())
                .put("prompt", options.prompt().id()).put("num_samples", options.numSamples()).put("vote", options.vote().id())
                .put("batch_size", options.batchSize()).put("thinking_truncated", cut)
                .put("no_answer", (int) items.stream().filter(r -> r.prediction().answer().isBlank()).count());
        metrics.set("accuracy", report().json());
        Files.writeString(dir.resolve("metrics.json"),
                mapper.enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(metrics) + "\n", StandardCharsets.UTF_8);
    }
}

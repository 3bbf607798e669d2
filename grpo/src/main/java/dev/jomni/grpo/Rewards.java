package dev.jomni.grpo;

import dev.jomni.train.PythonText;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.score.AnswerExtractor;
import dev.jomni.train.score.Completion;
import dev.jomni.train.score.Matching;
import dev.jomni.train.score.Scorer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reward functions with weights, as TRL's reward_funcs / reward_weights: the reward of a completion is
 * Σ_k w_k · f_k(item, completion). Each function sees the answer after the think block ({@link Completion#split}),
 * except the format reward, which checks the block itself.
 */
public final class Rewards {
    /** One reward function: its name (TRL logs rewards/NAME/mean) and its value for a completion text. */
    public interface Function {
        String name();

        double score(AudioQa item, String completion);
    }

    private static final Pattern LETTER = Pattern.compile("\\(([A-Da-d])\\)");
    private static final Pattern ANSWER_LINE = Pattern.compile("(?m)^\\s*ANSWER:\\s*\\S");

    /**
     * The original train_grpo.py reward (seed-pipeline.md §4) on the answer text: with a and g trimmed and lower-cased,
     * 1.0 if a equals g, else 0.8 if g occurs in a, else 0.9 if both raw texts hold {@code (X)} with the same first
     * letter, else 0.
     */
    public static final Function ORIGINAL = new Named("original", (item, c) -> {
        String raw = Completion.split(c).answerText(), a = PythonText.strip(raw).toLowerCase(Locale.ROOT);
        String g = PythonText.strip(item.answer()).toLowerCase(Locale.ROOT);
        if (a.equals(g)) return 1.0;
        if (a.contains(g)) return 0.8;
        Matcher ma = LETTER.matcher(raw), mg = LETTER.matcher(item.answer());
        if (ma.find() && mg.find() && ma.group(1).equalsIgnoreCase(mg.group(1))) return 0.9;
        return 0.0;
    });

    /** The eval's definition: 1 when the stated answer maps to exactly one choice and it is the right one ({@link Matching#STRICT}). */
    public static final Function STRICT = new Named("strict", (item, c) ->
            Scorer.isCorrect(AnswerExtractor.extract(Completion.split(c).answerText()), item, Matching.STRICT) ? 1.0 : 0.0);

    /** 1 when the completion closes a think block and then states an {@code ANSWER:} line, else 0. */
    public static final Function FORMAT = new Named("format", (item, c) -> {
        int close = c.indexOf("</think>");
        return close >= 0 && ANSWER_LINE.matcher(c.substring(close + "</think>".length())).find() ? 1.0 : 0.0;
    });

    private record Named(String name, java.util.function.BiFunction<AudioQa, String, Double> f) implements Function {
        @Override
        public double score(AudioQa item, String completion) { return f.apply(item, completion); }
    }

    private final List<Function> functions;
    private final double[] weights;

    public Rewards(List<Function> functions, double[] weights) {
        if (functions.isEmpty()) throw new IllegalArgumentException("reward_funcs: none given");
        if (weights == null) {
            weights = new double[functions.size()];
            java.util.Arrays.fill(weights, 1.0);                     // TRL: all 1 when reward_weights is None
        }
        if (weights.length != functions.size())
            throw new IllegalArgumentException("reward_weights: " + weights.length + " weights for " + functions.size() + " reward_funcs");
        this.functions = List.copyOf(functions);
        this.weights = weights.clone();
    }

    /** {@code --reward_funcs} (comma-separated names: original, strict, format) and {@code --reward_weights} (null: all 1). */
    public static Rewards parse(String funcs, String weights) {
        List<Function> fs = new ArrayList<>();
        for (String n : funcs.split("[,\\s]+"))
            if (!n.isEmpty())
                fs.add(switch (n) {
                    case "original" -> ORIGINAL;
                    case "strict" -> STRICT;
                    case "format" -> FORMAT;
                    default -> throw new IllegalArgumentException("--reward_funcs " + n + ": known are original, strict, format");
                });
        double[] w = null;
        if (weights != null && !weights.isBlank())
            w = java.util.Arrays.stream(weights.split("[,\\s]+")).filter(s -> !s.isEmpty()).mapToDouble(Double::parseDouble).toArray();
        return new Rewards(fs, w);
    }

    public List<Function> functions() { return functions; }

    public double[] weights() { return weights.clone(); }

    /** Each function's value [F] for one completion. */
    public double[] perFunction(AudioQa item, String completion) {
        double[] r = new double[functions.size()];
        for (int k = 0; k < r.length; k++) r[k] = functions.get(k).score(item, completion);
        return r;
    }

    /** Σ_k w_k · r_k. */
    public double total(double[] perFunction) {
        double s = 0;
        for (int k = 0; k < perFunction.length; k++) s += weights[k] * perFunction[k];
        return s;
    }
}

package dev.jomni.train;

import java.util.Locale;

/**
 * A learning-rate schedule as transformers' {@code get_scheduler} builds one ({@code optimization.py}): the
 * rate of optimizer step {@code s} (0-based, the count of updates already done) is {@code lr · factor(s)}.
 * With w warmup steps and T total:
 * <ul>
 * <li>{@code linear}: s/w during warmup, then max(0, (T − s)/(T − w));
 * <li>{@code cosine}: s/w during warmup, then max(0, ½(1 + cos(π·(s − w)/(T − w)))) (num_cycles 0.5);
 * <li>{@code constant_with_warmup}: s/w during warmup, then 1;
 * <li>{@code constant}: 1 (warmup ignored, as transformers does).
 * </ul>
 * Warmup steps: {@code warmup_steps} when positive, else ⌈T · warmup_ratio⌉ ({@code TrainingArguments.get_warmup_steps}).
 * As in transformers, the first step of a warmup runs at rate 0. The schedule is a pure function of s, so
 * a resumed run needs only the step count.
 */
public record LrSchedule(String type, double lr, int warmupSteps, int totalSteps) {
    public LrSchedule {
        type = type.toLowerCase(Locale.ROOT);
        if (!type.equals("linear") && !type.equals("cosine") && !type.equals("constant") && !type.equals("constant_with_warmup"))
            throw new IllegalArgumentException("lr_scheduler_type '" + type + "': known are linear, cosine, constant, constant_with_warmup");
        if (warmupSteps < 0 || totalSteps < 1) throw new IllegalArgumentException("lr schedule: warmup " + warmupSteps + ", total " + totalSteps);
    }

    public static LrSchedule of(String type, double lr, double warmupRatio, int warmupSteps, int totalSteps) {
        if (warmupRatio < 0 || warmupRatio > 1) throw new IllegalArgumentException("warmup_ratio " + warmupRatio + " must be in [0, 1]");
        int w = warmupSteps > 0 ? warmupSteps : (int) Math.ceil(totalSteps * warmupRatio);
        return new LrSchedule(type, lr, w, totalSteps);
    }

    /** The rate of 0-based step s. */
    public double at(long s) {
        if (type.equals("constant")) return lr;
        if (s < warmupSteps) return lr * s / Math.max(1.0, warmupSteps);
        double rest = Math.max(1.0, totalSteps - warmupSteps);
        return switch (type) {
            case "linear" -> lr * Math.max(0.0, (totalSteps - s) / rest);
            case "cosine" -> lr * Math.max(0.0, 0.5 * (1 + Math.cos(Math.PI * 2 * 0.5 * ((s - warmupSteps) / rest))));
            default -> lr;
        };
    }
}

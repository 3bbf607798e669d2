package dev.jomni.grpo;

import java.util.Locale;

/**
 * Group-relative advantages as TRL's {@code _generate_and_score_completions} computes them (multi_objective_aggregation
 * sum_then_normalize): with R the weighted sum of the reward functions per completion, grouped by prompt in runs of
 * num_generations, A = R − mean_group(R), divided by (std + 1e-4) unless scale_rewards is none, std being the
 * group's (scale_rewards group) or the whole batch's (batch), with Bessel's correction (TRL's nanstd).
 * frac_reward_zero_std is the share of completions whose std (the group's for group and none, the batch's for batch) is 0.
 */
public final class Advantages {
    public enum Scale {
        GROUP, BATCH, NONE;

        public static Scale parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "group", "true" -> GROUP;                  // TRL < 0.22 took a boolean: true meant group
                case "batch" -> BATCH;
                case "none", "false" -> NONE;
                default -> throw new IllegalArgumentException("--scale_rewards " + s + ": known are group, batch, none");
            };
        }
    }

    /** The advantages [B] and the share of completions with zero reward std. */
    public record Result(double[] advantages, double fracZeroStd) {}

    private Advantages() {}

    public static Result of(double[] rewards, int numGenerations, Scale scale) {
        int n = rewards.length;
        if (numGenerations < 1 || n % numGenerations != 0)
            throw new IllegalArgumentException("advantages: " + n + " rewards are not whole groups of num_generations " + numGenerations);
        double[] adv = new double[n], std = new double[n];
        double batchStd = scale == Scale.BATCH ? std(rewards, 0, n) : 0;
        for (int g = 0; g < n; g += numGenerations) {
            double mean = 0;
            for (int i = g; i < g + numGenerations; i++) mean += rewards[i];
            mean /= numGenerations;
            double s = scale == Scale.BATCH ? batchStd : numGenerations > 1 ? std(rewards, g, g + numGenerations) : 0;
            for (int i = g; i < g + numGenerations; i++) {
                std[i] = s;
                adv[i] = rewards[i] - mean;
                if (scale != Scale.NONE) adv[i] /= s + 1e-4;
            }
        }
        int zero = 0;
        for (double s : std) if (Math.abs(s) <= 1e-8) zero++;          // torch.isclose(std, 0): atol 1e-8
        return new Result(adv, (double) zero / n);
    }

    /** Sample standard deviation (Bessel) of x[from, to); NaN for fewer than two values, as TRL's nanstd. */
    static double std(double[] x, int from, int to) {
        int n = to - from;
        if (n < 2) return Double.NaN;
        double mean = 0;
        for (int i = from; i < to; i++) mean += x[i];
        mean /= n;
        double v = 0;
        for (int i = from; i < to; i++) v += (x[i] - mean) * (x[i] - mean);
        return Math.sqrt(v / (n - 1));
    }

    static double mean(double[] x) {
        double s = 0;
        for (double v : x) s += v;
        return x.length == 0 ? Double.NaN : s / x.length;
    }
}

package dev.jomni.rest;

import dev.jomni.train.PythonText;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Which correct candidates of a problem become SFT samples, as {@code rest/filter.py} chooses them
 * (seed-pipeline.md §2.3). Correct candidates are ordered by ascending {@code raw_output} length in
 * characters (stable), so "best" means shortest.
 */
public sealed interface Filter {
    /** Every correct candidate, in candidate order (weight 1.0). */
    record All() implements Filter {}

    /** The shortest correct candidate (weight 1.0). */
    record Best() implements Filter {}

    /** The k shortest correct candidates (weight 1.0). */
    record TopK(int k) implements Filter {
        public TopK {
            if (k < 1) throw new IllegalArgumentException("--top_k " + k + ": must be at least 1");
        }
    }

    /**
     * By category: challenging, all (weight 1.0); learning_zone, the k shortest (1.5); almost_mastered, the shortest
     * (0.5); mastered, the shortest (0.1) only with {@code includeMastered} and a draw ≤ {@code masteredSampleRate}
     * from a generator seeded with {@code seed} that draws once per mastered problem (Java's SplittableRandom, not
     * Python's Mersenne Twister: the same rate, other problems). {@code learningZoneOnly} drops challenging and
     * almost_mastered.
     */
    record LearningZone(int k, boolean learningZoneOnly, boolean includeMastered, double masteredSampleRate, long seed) implements Filter {}

    /** The original's categories by the absolute number c of correct candidates, whatever K is. */
    enum Category {
        TOO_HARD("too_hard"), CHALLENGING("challenging"), LEARNING_ZONE("learning_zone"), ALMOST_MASTERED("almost_mastered"), MASTERED("mastered");

        private final String id;

        Category(String id) { this.id = id; }

        public String id() { return id; }

        /** c = 0 too_hard, 1–3 challenging, 4–11 learning_zone, 12–14 almost_mastered, ≥ 15 mastered. */
        public static Category of(int correct) {
            if (correct == 0) return TOO_HARD;
            if (correct <= 3) return CHALLENGING;
            if (correct <= 11) return LEARNING_ZONE;
            if (correct <= 14) return ALMOST_MASTERED;
            return MASTERED;
        }
    }

    /** A kept candidate: its index in the problem's candidates and its weight. */
    record Kept(int candidate, double weight) {}

    /** The strategy of {@code --filter_strategy} (all, best, top_k, learning_zone). */
    static Filter parse(String strategy, int k, boolean learningZoneOnly, boolean includeMastered, double masteredSampleRate, long seed) {
        return switch (strategy) {
            case "all" -> new All();
            case "best" -> new Best();
            case "top_k" -> new TopK(k);
            case "learning_zone" -> new LearningZone(k, learningZoneOnly, includeMastered, masteredSampleRate, seed);
            default -> throw new IllegalArgumentException("--filter_strategy " + strategy + ": known are top_k, all, best, learning_zone");
        };
    }

    default String id() {
        return switch (this) {
            case All a -> "all";
            case Best b -> "best";
            case TopK t -> "top_k";
            case LearningZone l -> "learning_zone";
        };
    }

    /** Whether the strategy gives samples different weights (only learning_zone does). */
    default boolean weighted() { return this instanceof LearningZone; }

    /** A stateful selector for one pass over the problems (learning_zone's draws advance per mastered problem). */
    default Selector selector() {
        SplittableRandom rng = this instanceof LearningZone l ? new SplittableRandom(l.seed()) : null;
        return (raws, correct) -> select(this, raws, correct, rng);
    }

    /** Chooses among one problem's candidates. */
    @FunctionalInterface
    interface Selector {
        /**
         * @param raws    the candidates' raw outputs
         * @param correct the indices of the correct ones, in candidate order (after dedup, when asked)
         */
        List<Kept> select(List<String> raws, List<Integer> correct);
    }

    private static List<Kept> select(Filter f, List<String> raws, List<Integer> correct, SplittableRandom rng) {
        List<Integer> byLength = new ArrayList<>(correct);
        byLength.sort(Comparator.comparingInt(i -> PythonText.len(raws.get(i))));   // List.sort is stable
        return switch (f) {
            case All a -> weighted(correct, 1.0);
            case Best b -> weighted(byLength.subList(0, Math.min(1, byLength.size())), 1.0);
            case TopK t -> weighted(byLength.subList(0, Math.min(t.k(), byLength.size())), 1.0);
            case LearningZone l -> switch (Category.of(correct.size())) {
                case TOO_HARD -> List.of();
                case CHALLENGING -> l.learningZoneOnly() ? List.of() : weighted(correct, 1.0);
                case LEARNING_ZONE -> weighted(byLength.subList(0, Math.min(l.k(), byLength.size())), 1.5);
                case ALMOST_MASTERED -> l.learningZoneOnly() ? List.of() : weighted(byLength.subList(0, 1), 0.5);
                case MASTERED -> {
                    boolean draw = rng.nextDouble() <= l.masteredSampleRate();
                    yield l.includeMastered() && draw ? weighted(byLength.subList(0, 1), 0.1) : List.of();
                }
            };
        };
    }

    private static List<Kept> weighted(List<Integer> indices, double w) {
        return indices.stream().map(i -> new Kept(i, w)).toList();
    }

    /** For messages: {@code top_k (k 3)}. */
    default String describe() {
        return switch (this) {
            case All a -> "all";
            case Best b -> "best";
            case TopK t -> "top_k (k " + t.k() + ")";
            case LearningZone l -> String.format(Locale.ROOT, "learning_zone (k %d%s%s)", l.k(), l.learningZoneOnly() ? ", zone only" : "",
                    l.includeMastered() ? ", mastered at " + l.masteredSampleRate() : "");
        };
    }
}

package dev.jomni.train.score;

/** How a predicted answer is compared with the right one. */
public enum Matching {
    /** The prediction must name exactly one choice, and that choice must be the answer ({@link Scorer#choiceOf}). */
    STRICT("strict"),
    /**
     * {@code rest/filter.py}'s {@code check_answer_match}, kept for comparing with the original's numbers:
     * after normalising, equality, or either text containing the other (over 2 characters), so that
     * {@code dog} counts as {@code dog barking}. Never the default.
     */
    LEGACY_SUBSTRING("legacy-substring");

    private final String id;

    Matching(String id) { this.id = id; }

    public String id() { return id; }

    public static Matching byId(String id) {
        for (Matching m : values()) if (m.id.equals(id)) return m;
        throw new IllegalArgumentException("unknown matching '" + id + "'; known: strict, legacy-substring");
    }

    @Override
    public String toString() { return id; }
}

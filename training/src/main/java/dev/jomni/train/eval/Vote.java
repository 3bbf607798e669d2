package dev.jomni.train.eval;

/** How N samples per item become one prediction. */
public enum Vote {
    /** The first sample's answer. */
    FIRST("first"),
    /**
     * Self-consistency: the choice most samples name ({@code Scorer.choiceOf}); a tie goes to the choice
     * named first. Samples that name no choice do not vote; when none does, the first sample stands.
     */
    MAJORITY("majority");

    private final String id;

    Vote(String id) { this.id = id; }

    public String id() { return id; }

    public static Vote byId(String id) {
        for (Vote v : values()) if (v.id.equals(id)) return v;
        throw new IllegalArgumentException("unknown vote '" + id + "'; known: first, majority");
    }

    @Override
    public String toString() { return id; }
}

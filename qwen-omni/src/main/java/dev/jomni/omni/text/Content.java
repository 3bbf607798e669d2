package dev.jomni.omni.text;

/** One part of a chat message: text, or an audio clip that the prompt holds as audio tokens. */
public sealed interface Content {
    /** Plain text, rendered as written. */
    record Text(String text) implements Content {
        public Text {
            if (text == null) throw new IllegalArgumentException("Content.Text: text is null");
        }
    }

    /**
     * An audio clip, known by its number of valid log-mel frames (n_b in the thinker spec, §3),
     * which fixes how many audio tokens stand for it.
     */
    record Audio(int validFrames) implements Content {
        public Audio {
            if (validFrames <= 0) throw new IllegalArgumentException("Content.Audio: validFrames=" + validFrames + " must be positive");
        }
    }

    static Content text(String text) {
        return new Text(text);
    }

    static Content audio(int validFrames) {
        return new Audio(validFrames);
    }
}

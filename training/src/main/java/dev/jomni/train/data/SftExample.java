package dev.jomni.train.data;

/**
 * One SFT training text, built by concatenation so that the assistant's {@code <think>…</think>} stays
 * (the chat template drops it after a multimodal user turn, {@code docs/THINKING_TAGS_BUG.md}):
 * {@code prompt.chatMl() + response + "<|im_end|>\n"}. The loss covers {@link #response()} and the
 * closing {@code <|im_end|>\n}; everything in {@link #promptText()} is masked.
 *
 * @param prompt   the prompt, from the same preset generation used
 * @param response the raw response, {@code <think>} through {@code ANSWER: …}, unchanged
 */
public record SftExample(ChatPrompt prompt, String response) {
    /** The record's own {@link AudioQa#response()} under {@code preset}. */
    public static SftExample of(AudioQa item, PromptPreset preset) {
        if (item.response().isEmpty())
            throw new IllegalArgumentException("record '" + item.id() + "': no 'response' to train on");
        return new SftExample(preset.build(item), item.response());
    }

    /** A response in the Thinking model's own layout: {@code <think>\n…\n</think>\n\nANSWER: choice}. */
    public static String response(String thinking, String answerChoice) {
        return "<think>\n" + thinking + "\n</think>\n\nANSWER: " + answerChoice;
    }

    public String promptText() { return prompt.chatMl(); }

    public String text() { return prompt.chatMl() + response + "<|im_end|>\n"; }
}

package dev.jomni.train.data;

/**
 * A built prompt: an optional system turn and a user turn of [audio, {@code userText}], then the
 * assistant's turn to speak. {@link #chatMl()} renders it in Qwen ChatML (thinker spec §11) for
 * callers that assemble token text themselves, such as the SFT target.
 *
 * @param preset   the preset that built it (recorded in output metadata)
 * @param system   the system turn's text; "" for no system turn
 * @param userText the text after the audio in the user turn
 */
public record ChatPrompt(PromptPreset preset, String system, String userText) {
    public static final String AUDIO = "<|audio_start|><|audio_pad|><|audio_end|>";

    /**
     * {@code <|im_start|>system\n…<|im_end|>\n<|im_start|>user\n<audio>text<|im_end|>\n<|im_start|>assistant\n}:
     * the prompt up to where the assistant's text begins (no {@code <think>} added: the Thinking model
     * writes it).
     */
    public String chatMl() {
        var sb = new StringBuilder();
        if (!system.isEmpty()) sb.append("<|im_start|>system\n").append(system).append("<|im_end|>\n");
        return sb.append("<|im_start|>user\n").append(AUDIO).append(userText).append("<|im_end|>\n")
                .append("<|im_start|>assistant\n").toString();
    }
}

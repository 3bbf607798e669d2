package dev.jomni.omni.text;

import java.util.List;

/**
 * One turn of a conversation: a role ({@code system}, {@code user}, {@code assistant}, {@code tool})
 * and its parts. An assistant turn's reasoning is written inline as {@code <think>…</think>}, as
 * the Qwen3 templates expect.
 */
public record ChatMessage(String role, List<Content> content) {
    public ChatMessage {
        if (role == null || role.isEmpty()) throw new IllegalArgumentException("ChatMessage: role is empty");
        content = List.copyOf(content);
    }

    public static ChatMessage of(String role, String text) {
        return new ChatMessage(role, List.of(new Content.Text(text)));
    }

    public static ChatMessage system(String text) {
        return of("system", text);
    }

    public static ChatMessage user(String text) {
        return of("user", text);
    }

    public static ChatMessage assistant(String text) {
        return of("assistant", text);
    }

    public static ChatMessage user(Content... parts) {
        return new ChatMessage("user", List.of(parts));
    }

    /** Whether every part is text; such a message reaches the template with string content. */
    public boolean isTextOnly() {
        return content.stream().allMatch(c -> c instanceof Content.Text);
    }
}

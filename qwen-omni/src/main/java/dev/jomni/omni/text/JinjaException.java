package dev.jomni.omni.text;

/** A chat template that does not parse or fails while rendering ({@code raise_exception} included). */
final class JinjaException extends RuntimeException {
    JinjaException(String message) {
        super(message);
    }
}

package dev.jomni.omni.text;

/** A tokenizer or chat-template file that cannot be used; the message names the file and what is wrong. */
public final class TokenizerException extends RuntimeException {
    TokenizerException(String message) {
        super(message);
    }

    TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}

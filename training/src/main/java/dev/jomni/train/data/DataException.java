package dev.jomni.train.data;

/** A data file or record that cannot be used: the message names the file, the record and the field. */
public final class DataException extends RuntimeException {
    DataException(String message) { super(message); }

    DataException(String message, Throwable cause) { super(message, cause); }
}

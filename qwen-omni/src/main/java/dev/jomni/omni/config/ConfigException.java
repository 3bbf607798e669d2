package dev.jomni.omni.config;

/** A configuration file that cannot be used: the message names the file, the field and what is wrong. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) { super(message); }
}

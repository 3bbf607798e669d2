package dev.jomni.omni.config;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A JSON object of a config file and its dotted path in it, so that every error names file and field.
 * A key holding JSON null counts as absent; keys nobody asks for are ignored.
 */
final class ConfigNode {
    private static final ObjectMapper JSON = new ObjectMapper();

    final Path file;
    final String path;      // "" at the root, else "thinker_config.text_config."
    final JsonNode node;

    private ConfigNode(Path file, String path, JsonNode node) {
        this.file = file;
        this.path = path;
        this.node = node;
    }

    static ConfigNode read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new ConfigException(file + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ConfigException(file + (Files.exists(file) ? ": cannot read: " + e : ": no such file"));
        }
        if (root == null || !root.isObject()) throw new ConfigException(file + ": not a JSON object");
        return new ConfigNode(file, "", root);
    }

    ConfigException error(String key, String what) {
        return new ConfigException(file + ": " + path + key + " " + what);
    }

    /** Prefixes an invariant violation reported by a record's constructor with the file and path. */
    ConfigException wrap(ConfigException e) {
        return new ConfigException(file + ": " + path + e.getMessage());
    }

    boolean has(String key) {
        JsonNode v = node.get(key);
        return v != null && !v.isNull();
    }

    private JsonNode required(String key) {
        if (!has(key)) throw error(key, "is missing");
        return node.get(key);
    }

    ConfigNode child(String key) {
        JsonNode v = required(key);
        if (!v.isObject()) throw error(key, "= " + v + " is not an object");
        return new ConfigNode(file, path + key + ".", v);
    }

    ConfigNode childOrNull(String key) {
        return has(key) ? child(key) : null;
    }

    int integer(String key) {
        JsonNode v = required(key);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw error(key, "= " + v + " is not an integer");
        return v.intValue();
    }

    int integer(String key, int absent) { return has(key) ? integer(key) : absent; }

    double number(String key) {
        JsonNode v = required(key);
        if (!v.isNumber()) throw error(key, "= " + v + " is not a number");
        return v.doubleValue();
    }

    double number(String key, double absent) { return has(key) ? number(key) : absent; }

    boolean bool(String key) {
        JsonNode v = required(key);
        if (!v.isBoolean()) throw error(key, "= " + v + " is not true or false");
        return v.booleanValue();
    }

    boolean bool(String key, boolean absent) { return has(key) ? bool(key) : absent; }

    String string(String key) {
        JsonNode v = required(key);
        if (!v.isTextual()) throw error(key, "= " + v + " is not a string");
        return v.textValue();
    }

    String string(String key, String absent) { return has(key) ? string(key) : absent; }

    List<Integer> integers(String key, List<Integer> absent) {
        if (!has(key)) return absent;
        JsonNode v = node.get(key);
        if (!v.isArray()) throw error(key, "= " + v + " is not a list of integers");
        var out = new ArrayList<Integer>();
        for (JsonNode x : v) {
            if (!x.isIntegralNumber() || !x.canConvertToInt()) throw error(key, "= " + v + " is not a list of integers");
            out.add(x.intValue());
        }
        return List.copyOf(out);
    }

    /** Rejects a value this implementation does not compute: {@code key} must equal {@code supported} when present. */
    void requireIfPresent(String key, Object supported, String why) {
        if (!has(key)) return;
        JsonNode v = node.get(key);
        boolean ok = switch (supported) {
            case String s -> v.isTextual() && v.textValue().equals(s);
            case Boolean b -> v.isBoolean() && v.booleanValue() == b;
            case Number n -> v.isNumber() && v.doubleValue() == n.doubleValue();
            default -> throw new IllegalArgumentException(String.valueOf(supported));
        };
        if (!ok) throw error(key, "= " + v + " is not supported; expected " + (supported instanceof String ? "\"" + supported + "\"" : supported)
                + " (" + why + ")");
    }
}

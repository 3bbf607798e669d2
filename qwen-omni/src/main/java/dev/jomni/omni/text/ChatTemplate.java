package dev.jomni.omni.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face chat template (Jinja), rendered to exactly the text transformers'
 * {@code apply_chat_template(..., tokenize=False)} gives. The template runs on jomni's own
 * interpreter of the Jinja subset chat templates use ({@link JinjaTemplate}): HubSpot Jinjava,
 * tried first, lacks {@code namespace()}, {@code [::-1]} slices, Python string methods and
 * Jinja2's whitespace control, so it renders Qwen's template wrongly.
 *
 * <p>A message reaches the template as {@code {"role": …, "content": …}}: content is a string when
 * every part is text (joined), otherwise a list of {@code {"type": "text", "text": …}} and
 * {@code {"type": "audio", "audio": validFrames}} items, as multimodal templates expect. A
 * template written for string content only (Qwen3's) fails on audio parts, as it would in Python.
 */
public final class ChatTemplate {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final JinjaTemplate template;
    private final Map<String, Object> specialTokens;
    private final Map<String, String> extraTokens;
    private final Clock clock;
    private final String origin;

    private ChatTemplate(String source, Map<String, Object> specialTokens, Map<String, String> extraTokens, String origin) {
        this.source = source;
        this.origin = origin;
        try {
            this.template = JinjaTemplate.compile(source);
        } catch (JinjaException e) {
            throw new TokenizerException(origin + ": chat template does not parse: " + e.getMessage(), e);
        }
        this.specialTokens = specialTokens;
        this.extraTokens = extraTokens;
        this.clock = Clock.systemDefaultZone();
    }

    private ChatTemplate(ChatTemplate base, Clock clock) {
        this.source = base.source;
        this.origin = base.origin;
        this.template = base.template;
        this.specialTokens = base.specialTokens;
        this.extraTokens = base.extraTokens;
        this.clock = clock;
    }

    /** This template with {@code strftime_now} reading the given clock (a fixed one renders reproducibly). */
    public ChatTemplate withClock(Clock clock) {
        return new ChatTemplate(this, clock);
    }

    /** A template from its source text, with no special-token variables. */
    public static ChatTemplate of(String source) {
        return new ChatTemplate(source, Map.of(), Map.of(), "chat template");
    }

    /**
     * The chat template of a model or tokenizer folder: {@code chat_template.jinja}, else
     * {@code chat_template.json} (the processor's), else {@code tokenizer_config.json}'s
     * {@code chat_template}, else (a checkpoint that carries none) Qwen3-Omni's official one,
     * {@link #qwen3Omni()}. The special tokens of {@code tokenizer_config.json} ({@code bos_token},
     * {@code eos_token}, …) become template variables, as transformers passes them.
     */
    public static ChatTemplate load(Path dir) {
        Path config = dir.resolve("tokenizer_config.json");
        JsonNode cfg = Files.exists(config) ? readJson(config) : JSON.createObjectNode();
        Path jinja = dir.resolve("chat_template.jinja"), json = dir.resolve("chat_template.json");
        String source;
        Path origin;
        if (Files.exists(jinja)) {
            origin = jinja;
            try {
                source = Files.readString(jinja);
            } catch (IOException e) {
                throw new TokenizerException(jinja + ": cannot read: " + e.getMessage(), e);
            }
        } else if (Files.exists(json)) {
            origin = json;
            source = templateText(json, readJson(json).get("chat_template"));
        } else if (cfg.has("chat_template")) {
            origin = config;
            source = templateText(config, cfg.get("chat_template"));
        } else {
            origin = null;   // the checkpoint carries none: the model's own
            source = QWEN3_OMNI_SOURCE;
        }
        var special = new LinkedHashMap<String, Object>();
        for (String key : List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")) {
            String token = tokenText(cfg.get(key));
            if (token != null) special.put(key, token);
        }
        if (cfg.get("additional_special_tokens") instanceof JsonNode list && list.isArray()) {
            var tokens = new ArrayList<Object>();
            for (var t : list) tokens.add(tokenText(t));
            special.put("additional_special_tokens", tokens);
        }
        var extra = new LinkedHashMap<String, String>();
        cfg.properties().forEach(e -> {
            String token = e.getKey().endsWith("_token") ? tokenText(e.getValue()) : null;
            if (token != null) extra.put(e.getKey(), token);
        });
        if (cfg.get("extra_special_tokens") instanceof JsonNode named && named.isObject()) {
            named.properties().forEach(e -> {
                String token = tokenText(e.getValue());
                if (token != null) extra.put(e.getKey(), token);
            });
        }
        return new ChatTemplate(source, special, extra, origin == null ? QWEN3_OMNI_ORIGIN : origin.toString());
    }

    /**
     * The official Qwen3-Omni-30B-A3B-Instruct template ({@code chat_template.json} of the release),
     * with no special-token variables.
     */
    public static ChatTemplate qwen3Omni() {
        return new ChatTemplate(QWEN3_OMNI_SOURCE, Map.of(), Map.of(), QWEN3_OMNI_ORIGIN);
    }

    private static final String QWEN3_OMNI_ORIGIN = "Qwen3-Omni's official chat template";
    private static final String QWEN3_OMNI_SOURCE = officialTemplate();

    private static String officialTemplate() {
        try (var in = ChatTemplate.class.getResourceAsStream("qwen3_omni_chat_template.jinja")) {
            if (in == null) throw new IllegalStateException("qwen3_omni_chat_template.jinja is missing from the qwen-omni jar");
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Where the template came from: its file, or Qwen3-Omni's official template when the folder carries none. */
    public String origin() {
        return origin;
    }

    /**
     * A template file: a {@code .json} file holds it under {@code "chat_template"} (as
     * {@code chat_template.json} and {@code tokenizer_config.json} do), any other file is the
     * Jinja source itself. No special-token variables come with it.
     */
    public static ChatTemplate file(Path file) {
        if (!Files.isRegularFile(file)) throw new TokenizerException(file + ": no such file");
        String source;
        if (file.getFileName().toString().endsWith(".json")) {
            source = templateText(file, readJson(file).get("chat_template"));
        } else {
            try {
                source = Files.readString(file);
            } catch (IOException e) {
                throw new TokenizerException(file + ": cannot read: " + e.getMessage(), e);
            }
        }
        return new ChatTemplate(source, Map.of(), Map.of(), file.toString());
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new TokenizerException(file + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    /** A template is a string, or a list of {@code {"name", "template"}} of which "default" is used. */
    private static String templateText(Path file, JsonNode node) {
        if (node != null && node.isTextual()) return node.asText();
        if (node != null && node.isArray()) {
            for (var t : node) if ("default".equals(t.path("name").asText())) return t.path("template").asText();
        }
        throw new TokenizerException(file + ": no \"chat_template\" (a string, or a list with a \"default\" entry)");
    }

    /** A token in tokenizer_config.json is a string or an AddedToken object with "content". */
    private static String tokenText(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.get("content").asText();
        return null;
    }

    /** The template source. */
    public String source() {
        return source;
    }

    /**
     * A token named in tokenizer_config.json (a top-level {@code *_token} key or an entry of
     * {@code extra_special_tokens}), such as {@code audio_token}; empty when it has none.
     */
    public java.util.Optional<String> namedToken(String key) {
        return java.util.Optional.ofNullable(extraTokens.get(key));
    }

    /** The conversation as text, ending with {@code <|im_start|>assistant\n} when asked. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * @param variables more template variables, such as {@code enable_thinking} or {@code tools}
     *                  (Java maps, lists, strings, numbers and booleans)
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> variables) {
        var list = new ArrayList<Object>();
        for (var m : messages) list.add(messageValue(m));
        return renderValues(list, addGenerationPrompt, variables);
    }

    /**
     * Renders messages given as plain maps, as a Python caller would pass them (for fields the
     * record does not carry: {@code reasoning_content}, {@code tool_calls}, …).
     */
    public String renderMaps(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt, Map<String, ?> variables) {
        return renderValues(templateValue(messages), addGenerationPrompt, variables);
    }

    private String renderValues(Object messages, boolean addGenerationPrompt, Map<String, ?> variables) {
        var vars = new LinkedHashMap<String, Object>(specialTokens);
        vars.put("tools", null);
        vars.put("documents", null);
        variables.forEach((k, v) -> vars.put(k, templateValue(v)));
        vars.put("messages", messages);
        vars.put("add_generation_prompt", addGenerationPrompt);
        try {
            return template.render(vars, clock);
        } catch (JinjaException e) {
            throw new TokenizerException("chat template: " + e.getMessage(), e);
        }
    }

    private static Map<String, Object> messageValue(ChatMessage m) {
        var map = new LinkedHashMap<String, Object>();
        map.put("role", m.role());
        if (m.isTextOnly()) {
            var sb = new StringBuilder();
            for (var c : m.content()) sb.append(((Content.Text) c).text());
            map.put("content", sb.toString());
        } else {
            var parts = new ArrayList<Object>();
            for (var c : m.content()) {
                var part = new LinkedHashMap<String, Object>();
                switch (c) {
                    case Content.Text t -> {
                        part.put("type", "text");
                        part.put("text", t.text());
                    }
                    case Content.Audio a -> {
                        part.put("type", "audio");
                        part.put("audio", (long) a.validFrames());
                    }
                }
                parts.add(part);
            }
            map.put("content", parts);
        }
        return map;
    }

    /** Java values as the interpreter's Python ones: integers as Long, floats as Double, copies of collections. */
    private static Object templateValue(Object v) {
        return switch (v) {
            case null -> null;
            case Integer i -> (long) i;
            case Short s -> (long) s;
            case Byte b -> (long) b;
            case Float f -> (double) f;
            case Map<?, ?> m -> {
                var out = new LinkedHashMap<Object, Object>();
                m.forEach((k, x) -> out.put(templateValue(k), templateValue(x)));
                yield out;
            }
            case List<?> l -> {
                var out = new ArrayList<Object>();
                for (var x : l) out.add(templateValue(x));
                yield out;
            }
            case Long l -> l;
            case Double d -> d;
            case String s -> s;
            case Boolean b -> b;
            default -> throw new IllegalArgumentException("chat template variable of type " + v.getClass().getName() + " is not supported");
        };
    }
}

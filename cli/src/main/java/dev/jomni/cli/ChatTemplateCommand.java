package dev.jomni.cli;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.omni.text.ChatTemplate;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code omni chat-template}: one conversation rendered by a chat template, exactly the text the
 * model sees (transformers' {@code apply_chat_template(..., tokenize=False)}), nothing added.
 */
@Command(name = "chat-template", mixinStandardHelpOptions = true,
        description = {"Print one conversation as a chat template renders it, exactly as the model sees it (no newline added).",
                "INPUT is one JSON object: \"messages\" (required), and optionally \"tools\", \"add_generation_prompt\" (default false), "
                        + "\"bos_token\", \"eos_token\" and \"extra_kwargs\" (further template variables, such as {\"enable_thinking\": false}). "
                        + "A template's raise_exception exits 1 with its message."})
final class ChatTemplateCommand implements Callable<Integer> {
    private static final Set<String> FIELDS = Set.of("messages", "tools", "add_generation_prompt", "bos_token", "eos_token", "extra_kwargs");

    @ArgGroup(multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--template", paramLabel = "FILE",
                description = "The template: a Jinja file, or a .json file with \"chat_template\" (chat_template.json, tokenizer_config.json).")
        Path template;

        @Option(names = "--model", paramLabel = "DIR",
                description = "A checkpoint or tokenizer folder: its own template (chat_template.jinja, chat_template.json or "
                        + "tokenizer_config.json, with its special tokens), else Qwen3-Omni's official one.")
        Path model;
    }

    @Option(names = "--input", required = true, paramLabel = "FILE", description = "The conversation (a JSON object, see above).")
    Path input;

    @Override
    @SuppressWarnings("unchecked")   // checked field by field below
    public Integer call() {
        Map<String, Object> in;
        try {
            in = new ObjectMapper().readValue(input.toFile(), new TypeReference<LinkedHashMap<String, Object>>() {});
        } catch (IOException e) {
            throw new IllegalArgumentException(input + ": not a JSON object: " + e.getMessage(), e);
        }
        for (String key : in.keySet()) {
            if (!FIELDS.contains(key)) throw new IllegalArgumentException(input + ": unknown field \"" + key + "\" (expected one of " + FIELDS + ")");
        }
        if (!(in.get("messages") instanceof List<?> messages)) throw new IllegalArgumentException(input + ": \"messages\" must be a list");
        for (int i = 0; i < messages.size(); i++) {
            if (!(messages.get(i) instanceof Map<?, ?>)) throw new IllegalArgumentException(input + ": messages[" + i + "] is not an object");
        }
        Object generationPrompt = in.getOrDefault("add_generation_prompt", false);
        if (!(generationPrompt instanceof Boolean addGenerationPrompt)) {
            throw new IllegalArgumentException(input + ": \"add_generation_prompt\" must be true or false");
        }
        var variables = new LinkedHashMap<String, Object>();
        variables.put("tools", in.get("tools"));
        for (String token : List.of("bos_token", "eos_token")) {
            Object v = in.get(token);
            if (v != null && !(v instanceof String)) throw new IllegalArgumentException(input + ": \"" + token + "\" must be a string or null");
            if (v != null) variables.put(token, v);   // null: not passed (undefined), as transformers does for an unset token
        }
        Object extra = in.getOrDefault("extra_kwargs", Map.of());
        if (!(extra instanceof Map<?, ?> kwargs)) throw new IllegalArgumentException(input + ": \"extra_kwargs\" must be an object");
        variables.putAll((Map<String, Object>) kwargs);

        ChatTemplate template = source.template != null ? ChatTemplate.file(source.template) : ChatTemplate.load(source.model);
        String text = template.renderMaps((List<Map<String, Object>>) messages, addGenerationPrompt, variables);
        var out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        out.print(text);
        out.flush();
        return 0;
    }
}

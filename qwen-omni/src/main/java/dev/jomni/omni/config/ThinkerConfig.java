package dev.jomni.omni.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The thinker (audio encoder + text decoder) of a Qwen3-Omni {@code config.json}: either the full
 * {@code Qwen3OmniMoeForConditionalGeneration} file ({@code model_type: qwen3_omni_moe}, read from its
 * {@code thinker_config}; talker, code2wav and vision settings ignored) or a thinker-only file
 * ({@code model_type: qwen3_omni_moe_thinker}). Every value comes from the file: transformers' class
 * defaults are partly Qwen2.5-Omni leftovers. Values this implementation does not compute (another
 * rope type or activation, attention bias or dropout, a shared expert) are a {@link ConfigException}
 * naming the file and the field; unknown keys are ignored.
 *
 * @param visionTokenIds the image/video/vision marker ids the file names: audio-only inputs must not contain them
 */
public record ThinkerConfig(int audioTokenId, int audioStartTokenId, int audioEndTokenId, Set<Integer> visionTokenIds,
                            boolean tieWordEmbeddings, TextConfig text, AudioConfig audio) {
    public ThinkerConfig {
        visionTokenIds = Set.copyOf(visionTokenIds);
    }

    /** Reads {@code config.json}, given the file or the model directory holding it. */
    public static ThinkerConfig load(Path fileOrDir) {
        Path file = Files.isDirectory(fileOrDir) ? fileOrDir.resolve("config.json") : fileOrDir;
        ConfigNode root = ConfigNode.read(file);
        String type = root.string("model_type", "");
        ConfigNode thinker = switch (type) {
            case "qwen3_omni_moe" -> root.child("thinker_config");
            case "qwen3_omni_moe_thinker" -> root;
            case "" -> root.has("thinker_config") ? root.child("thinker_config") : root;
            default -> throw root.error("model_type", "= \"" + type
                    + "\" is not a Qwen3-Omni config (expected qwen3_omni_moe or qwen3_omni_moe_thinker)");
        };
        return parse(thinker);
    }

    static ThinkerConfig parse(ConfigNode c) {
        var vision = new LinkedHashSet<Integer>();
        for (String key : new String[] {"image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"})
            if (c.has(key)) vision.add(c.integer(key));
        int audio = c.integer("audio_token_id"), start = c.integer("audio_start_token_id"), end = c.integer("audio_end_token_id");
        var text = TextConfig.parse(c.child("text_config"));
        for (int id : new int[] {audio, start, end})
            if (id < 0 || id >= text.vocabSize())
                throw new ConfigException(c.file + ": " + c.path + "audio token id " + id + " lies outside vocab_size="
                        + text.vocabSize());
        return new ThinkerConfig(audio, start, end, vision, c.bool("tie_word_embeddings", false),
                text, AudioConfig.parse(c.child("audio_config")));
    }
}

package dev.jomni.omni.text;

import dev.jomni.omni.model.AudioEncoder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Conversation to input ids, as Qwen3-Omni's processor does it for audio and text: the chat
 * template renders each audio part as {@code <|audio_start|><|audio_pad|><|audio_end|>}, then the
 * k-th audio pad becomes N_k pads, N_k = {@link AudioEncoder#outputLength} of that clip's valid frames, and
 * the text is tokenized with added tokens matched whole. The three token strings come from
 * tokenizer_config.json ({@code audio_bos_token}, {@code audio_token}, {@code audio_eos_token}) when
 * it names them, else Qwen3-Omni's; their ids always come from the tokenizer.
 */
public final class ChatEncoder {
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int nWindow;
    private final String audioToken;
    private final int audioStartId, audioTokenId, audioEndId;

    /**
     * @param nWindow the audio encoder's {@code n_window} (audio_config): a chunk of the mel
     *                spectrogram is 2·n_window frames
     */
    public ChatEncoder(Tokenizer tokenizer, ChatTemplate template, int nWindow) {
        if (nWindow <= 0) throw new IllegalArgumentException("n_window=" + nWindow + " must be positive");
        this.tokenizer = tokenizer;
        this.template = template;
        this.nWindow = nWindow;
        String start = template.namedToken("audio_bos_token").orElse("<|audio_start|>");
        audioToken = template.namedToken("audio_token").orElse("<|audio_pad|>");
        String end = template.namedToken("audio_eos_token").orElse("<|audio_end|>");
        audioStartId = addedTokenId(start);
        audioTokenId = addedTokenId(audioToken);
        audioEndId = addedTokenId(end);
    }

    /** Tokenizer and chat template from one folder (tokenizer.json[.gz] or vocab.json + merges.txt, tokenizer_config.json, …). */
    public static ChatEncoder load(Path dir, int nWindow) {
        return new ChatEncoder(Tokenizer.load(dir), ChatTemplate.load(dir), nWindow);
    }

    private int addedTokenId(String token) {
        int[] ids = tokenizer.encode(token);
        if (ids.length != 1 || !tokenizer.token(ids[0]).equals(token)) {
            throw new TokenizerException("tokenizer has no added token " + token + " (it encodes to " + ids.length
                    + " ids): audio needs Qwen3-Omni's tokenizer, not the text-only Qwen3 one");
        }
        return ids[0];
    }

    /** The rendered conversation with every audio pad expanded to its clip's token count. */
    public String prompt(List<ChatMessage> messages, boolean addGenerationPrompt) {
        var counts = new ArrayList<Integer>();
        for (var m : messages) {
            for (var c : m.content()) if (c instanceof Content.Audio a) counts.add(AudioEncoder.outputLength(a.validFrames(), nWindow));
        }
        return expandAudio(template.render(messages, addGenerationPrompt), counts);
    }

    /** The ids of {@link #prompt}. */
    public int[] encode(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return tokenizer.encode(prompt(messages, addGenerationPrompt));
    }

    private String expandAudio(String text, List<Integer> counts) {
        var sb = new StringBuilder();
        int from = 0, k = 0;
        for (int at = text.indexOf(audioToken); at >= 0; at = text.indexOf(audioToken, from)) {
            if (k == counts.size()) {
                throw new TokenizerException("the rendered prompt holds more " + audioToken + " than the " + counts.size()
                        + " audio parts (is one written in a text part?)");
            }
            sb.append(text, from, at).append(audioToken.repeat(counts.get(k++)));
            from = at + audioToken.length();
        }
        if (k != counts.size()) {
            throw new TokenizerException("chat template rendered " + k + " " + audioToken + " for " + counts.size()
                    + " audio parts: it does not render audio items (list content)");
        }
        return sb.append(text, from, text.length()).toString();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public ChatTemplate template() {
        return template;
    }

    public int audioStartId() {
        return audioStartId;
    }

    /** The id of the audio pad, the position the audio encoder's outputs are written to ({@code audio_token_id}). */
    public int audioTokenId() {
        return audioTokenId;
    }

    public int audioEndId() {
        return audioEndId;
    }
}

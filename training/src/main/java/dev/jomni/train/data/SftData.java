package dev.jomni.train.data;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * SFT samples from a {@link Dataset} and their batches, as the seed's {@code rest/train.py} builds them
 * (seed-pipeline.md §1.5, §3.1): the chat template over [system, user(audio, question)] with the generation
 * prompt, then the record's raw {@code response}, then {@code <|im_end|>\n}; labels −100 on every prompt token
 * and on padding, so the loss covers the response, {@code <|im_end|>} and {@code \n}.
 *
 * <p>Differences from the seed, on purpose: batches are padded (on the right) to their longest sample, not to a
 * fixed 4096; a sample longer than {@code maxLength} is cut at {@code maxLength} as the seed's truncation does,
 * but a prompt that does not fit (the response would vanish, the seed trains on nothing) is an error.
 * Audio is featurised when a batch is made, so memory holds one batch of log-mel, not the data set's.
 */
public final class SftData {
    private final Dataset dataset;
    private final List<AudioQa> items;
    private final PromptPreset preset;
    private final ChatEncoder encoder;
    private final LogMel logMel;
    private final int maxLength, padId;

    /**
     * Keeps the records that have a {@code response}; one without is an error naming the file, the record and the
     * field, or, with {@code skipBad}, a warning to {@code warnings} and left out (counted in {@link #skipped()}).
     */
    public SftData(Dataset dataset, PromptPreset preset, ChatEncoder encoder, LogMel logMel, int maxLength, boolean skipBad,
                   Consumer<String> warnings) {
        this.dataset = dataset;
        this.preset = preset;
        this.encoder = encoder;
        this.logMel = logMel;
        this.maxLength = maxLength;
        this.padId = encoder.tokenizer().findTokenId("<|endoftext|>").orElse(0);
        List<AudioQa> keep = new ArrayList<>();
        int bad = 0;
        for (AudioQa q : dataset.items()) {
            if (!q.response().isBlank()) {
                keep.add(q);
                continue;
            }
            String msg = dataset.file() + ": record '" + q.id() + "': field 'response': missing or empty (SFT trains on the response)";
            if (!skipBad) throw new DataException(msg);
            warnings.accept("warning: skipped: " + msg);
            bad++;
        }
        if (keep.isEmpty()) throw new DataException(dataset.file() + ": no record has a response to train on");
        if (bad > 0) warnings.accept("warning: " + dataset.file() + ": skipped " + bad + " record(s) without a response");
        items = List.copyOf(keep);
        skipped = bad;
        weighted = false;
    }

    private final int skipped;

    public int size() { return items.size(); }

    public int skipped() { return skipped; }

    public AudioQa item(int i) { return items.get(i); }

    /**
     * One batch: input_ids / attention_mask / labels [B, T] (I64, right-padded with {@code <|endoftext|>}), the
     * clips' log-mel [B, mel, frames] with each clip's valid frames, the sample ids, and the number of label tokens
     * the shifted loss counts (labels at positions 1…T−1 that are not −100).
     */
    public record Batch(Tensor inputIds, Tensor attentionMask, Tensor labels, Thinker.Audio audio, List<String> ids, long targetTokens, double weight) {
        public Batch(Tensor inputIds, Tensor attentionMask, Tensor labels, Thinker.Audio audio, List<String> ids, long targetTokens) {
            this(inputIds, attentionMask, labels, audio, ids, targetTokens, 1.0);
        }
    }

    /**
     * The same samples, with each record's {@code weight} field (ReST's learning_zone filter writes 1.5, 0.5, 0.1;
     * absent is 1) scaling its loss: a batch's loss is multiplied by the mean weight of its samples (exact per sample
     * at per_device_train_batch_size 1, the seed's setting). A weight that is not a non-negative number is an error
     * naming the record.
     */
    public SftData weighted() {
        for (AudioQa q : items) weightOf(q);
        return new SftData(this, true);
    }

    private SftData(SftData d, boolean weighted) {
        this.dataset = d.dataset;
        this.items = d.items;
        this.preset = d.preset;
        this.encoder = d.encoder;
        this.logMel = d.logMel;
        this.maxLength = d.maxLength;
        this.padId = d.padId;
        this.skipped = d.skipped;
        this.weighted = weighted;
    }

    private final boolean weighted;

    private double weightOf(AudioQa q) {
        String w = q.tag("weight");
        if (w == null) return 1.0;
        try {
            double v = Double.parseDouble(w);
            if (v >= 0 && Double.isFinite(v)) return v;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new DataException(dataset.file() + ": record '" + q.id() + "': field 'weight': " + w + " is not a non-negative number");
    }

    public Batch batch(int[] indices) {
        List<float[]> clips = new ArrayList<>();
        List<String> ids = new ArrayList<>();
        for (int i : indices) {
            AudioQa q = items.get(i);
            ids.add(q.id());
            try {
                clips.add(Resampler.to16k(Wav.read(q.audio())));
            } catch (RuntimeException e) {
                throw new DataException(dataset.file() + ": record '" + q.id() + "': field 'sound': cannot read audio " + q.audio() + ": " + e.getMessage(), e);
            }
        }
        LogMel.Batch mel = logMel.batch(clips);
        List<int[]> seqs = new ArrayList<>();
        List<Integer> promptLengths = new ArrayList<>();
        for (int k = 0; k < indices.length; k++) {
            AudioQa q = items.get(indices[k]);
            ChatPrompt p = preset.build(q);
            List<ChatMessage> messages = new ArrayList<>();
            if (!p.system().isEmpty()) messages.add(ChatMessage.system(p.system()));
            messages.add(ChatMessage.user(new Content.Audio(mel.validFrames()[k]), new Content.Text(p.userText())));
            int[] prompt = encoder.encode(messages, true);
            int[] answer = encoder.tokenizer().encode(q.response() + "<|im_end|>\n");
            if (prompt.length >= maxLength)
                throw new DataException(dataset.file() + ": record '" + q.id() + "': the prompt (audio and question) is " + prompt.length
                        + " tokens, max_length " + maxLength + " leaves none for the response");
            int n = Math.min(maxLength, prompt.length + answer.length);
            int[] seq = Arrays.copyOf(prompt, n);
            System.arraycopy(answer, 0, seq, prompt.length, n - prompt.length);
            seqs.add(seq);
            promptLengths.add(prompt.length);
        }
        int b = indices.length, t = seqs.stream().mapToInt(s -> s.length).max().orElse(0);
        long[] ids2 = new long[b * t], mask = new long[b * t], labels = new long[b * t];
        long targets = 0;
        for (int r = 0; r < b; r++) {
            int[] seq = seqs.get(r);
            for (int j = 0; j < t; j++) {
                boolean real = j < seq.length;
                ids2[r * t + j] = real ? seq[j] : padId;
                mask[r * t + j] = real ? 1 : 0;
                labels[r * t + j] = real && j >= promptLengths.get(r) ? seq[j] : -100;
                if (j >= 1 && labels[r * t + j] != -100) targets++;
            }
        }
        var audio = new Thinker.Audio(Tensor.of(mel.values(), mel.batch(), mel.melBins(), mel.frames()), mel.validFrames());
        double weight = 1;
        if (weighted) {
            weight = 0;
            for (int i : indices) weight += weightOf(items.get(i));
            weight /= indices.length;
        }
        return new Batch(Tensor.of(ids2, b, t), Tensor.of(mask, b, t), Tensor.of(labels, b, t), audio, List.copyOf(ids), targets, weight);
    }
}

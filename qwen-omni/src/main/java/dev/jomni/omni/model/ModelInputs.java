package dev.jomni.omni.model;

import dev.jomni.nn.io.Npy;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One batch for {@link Thinker#forward}, read from a folder as {@code omni forward} takes it:
 * {@code input_ids.npy} and {@code attention_mask.npy} (int64 [B, T]); the audio either as
 * {@code input_features.npy} + {@code feature_attention_mask.npy} (the processor's output) or as
 * {@code audio0.wav}, {@code audio1.wav}, … (one clip per batch row, featurised here); optional
 * {@code labels.npy} (int64 [B, T], −100 where ignored).
 */
public record ModelInputs(Tensor inputIds, Tensor attentionMask, Thinker.Audio audio, Tensor labels) {
    public static ModelInputs read(Path dir, Path modelDir, ThinkerConfig config) {
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException(dir + ": inputs folder does not exist");
        Tensor ids = ints(dir.resolve("input_ids.npy"), true), mask = ints(dir.resolve("attention_mask.npy"), true);
        if (ids.rank() != 2 || !java.util.Arrays.equals(ids.shape(), mask.shape()))
            throw new IllegalArgumentException(dir + ": input_ids.npy " + java.util.Arrays.toString(ids.shape())
                    + " and attention_mask.npy " + java.util.Arrays.toString(mask.shape()) + " must both be [B, T]");
        // Checked here too (the thinker checks again) so that the message names the file and the position,
        // which the thinker, given only a tensor, cannot.
        long[] flat = ids.toLongArray();
        int vocab = config.text().vocabSize(), cols = ids.size(1);
        for (int i = 0; i < flat.length; i++)
            if (flat[i] < 0 || flat[i] >= vocab)
                throw new IllegalArgumentException(dir.resolve("input_ids.npy") + ": token id " + flat[i] + " at (row " + i / cols
                        + ", column " + i % cols + ") is outside the vocabulary [0, " + vocab + ")");
        Tensor labels = ints(dir.resolve("labels.npy"), false);
        if (labels != null && !java.util.Arrays.equals(labels.shape(), ids.shape()))
            throw new IllegalArgumentException(dir.resolve("labels.npy") + ": shape " + java.util.Arrays.toString(labels.shape())
                    + " differs from input_ids " + java.util.Arrays.toString(ids.shape()));
        Thinker.Audio audio = null;
        Path features = dir.resolve("input_features.npy");
        if (Files.exists(features)) {
            Path fmask = dir.resolve("feature_attention_mask.npy");
            if (!Files.exists(fmask)) throw new IllegalArgumentException(fmask + ": missing (input_features.npy needs its mask)");
            audio = Thinker.Audio.of(Npy.read(features).toTensor().to(DType.F32).copy(), ints(fmask, true));
        } else {
            List<Path> wavs = new ArrayList<>();
            for (int i = 0; Files.exists(dir.resolve("audio" + i + ".wav")); i++) wavs.add(dir.resolve("audio" + i + ".wav"));
            if (!wavs.isEmpty()) {
                LogMel.Batch batch = LogMel.of(PreprocessorConfig.load(modelDir, config.audio())).batchOfWavs(wavs);
                audio = new Thinker.Audio(Tensor.of(batch.values(), batch.batch(), batch.melBins(), batch.frames()), batch.validFrames());
            }
        }
        return new ModelInputs(ids, mask, audio, labels);
    }

    private static Tensor ints(Path file, boolean required) {
        if (!Files.exists(file)) {
            if (required) throw new IllegalArgumentException(file + ": missing");
            return null;
        }
        Tensor t = Npy.read(file).toTensor();
        if (t.dtype().floating) throw new IllegalArgumentException(file + ": expected integers, found " + t.dtype().lower());
        return t.to(DType.I64).copy();
    }
}

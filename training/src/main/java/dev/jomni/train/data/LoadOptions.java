package dev.jomni.train.data;

import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * How {@link Dataset#load(Path, LoadOptions)} reads a file.
 *
 * @param audioDir       the audio root ({@code --audio_dir}); null: the data file's own folder
 * @param skipBadRecords warn about a bad record and leave it out, instead of failing the load
 * @param checkAudio     require every resolved audio file to exist and be readable
 * @param requireAnswers a record without a usable answer (none, or none of the choices) is bad; off, it
 *                       is kept without a ground truth ({@link AudioQa#scored()} false), with a warning,
 *                       so that a submission can still cover it (a hidden test set, MMAR's 5 such records)
 * @param warnings       where the warnings go (one line each)
 */
public record LoadOptions(Path audioDir, boolean skipBadRecords, boolean checkAudio, boolean requireAnswers,
                          Consumer<String> warnings) {
    public LoadOptions {
        Objects.requireNonNull(warnings, "warnings");
    }

    /** Audio root beside the data file, bad records fail the load, audio files checked, answers required, warnings on stderr. */
    public static LoadOptions defaults() {
        return new LoadOptions(null, false, true, true, System.err::println);
    }

    public LoadOptions withAudioDir(Path dir) { return new LoadOptions(dir, skipBadRecords, checkAudio, requireAnswers, warnings); }

    public LoadOptions withSkipBadRecords(boolean skip) { return new LoadOptions(audioDir, skip, checkAudio, requireAnswers, warnings); }

    public LoadOptions withCheckAudio(boolean check) { return new LoadOptions(audioDir, skipBadRecords, check, requireAnswers, warnings); }

    public LoadOptions withRequireAnswers(boolean require) {
        return new LoadOptions(audioDir, skipBadRecords, checkAudio, require, warnings);
    }

    public LoadOptions withWarnings(Consumer<String> sink) { return new LoadOptions(audioDir, skipBadRecords, checkAudio, requireAnswers, sink); }
}

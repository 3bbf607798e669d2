package dev.jomni.train;

import dev.jomni.omni.audio.Wav;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** Test data: the hand-written records in {@code src/test/resources/data}, with audio files to match. */
public final class Fixtures {
    private Fixtures() {}

    /** Copies resource {@code data/<name>} into {@code dir} and returns the copy. */
    public static Path copy(String name, Path dir) throws IOException {
        try (InputStream in = Fixtures.class.getResourceAsStream("/data/" + name)) {
            if (in == null) throw new IOException("no test resource data/" + name);
            Path out = dir.resolve(name);
            Files.copy(in, out);
            return out;
        }
    }

    /** A 0.1 s quiet WAV at {@code file} (parents created). */
    public static void wav(Path file) throws IOException {
        Wav.write(file, new float[1600], 16_000);
    }

    /** The MMAR fixture in {@code dir} with its four audio files under {@code dir/audio}. */
    public static Path mmar(Path dir) throws IOException {
        for (String id : new String[] {"f0VchKwpMAk_00-11-10_00-11-30", "BV1o64y1G7p2_00-00-12_00-00-31",
                "Txj3Qv1lJgs_00-00-00_00-00-16", "BV1j1ABeqEyp_00-06-02_00-06-16"})
            wav(dir.resolve("audio").resolve(id + ".wav"));
        return copy("mmar-meta.json", dir);
    }

    /** The AudioSkills-style fixture (JSON array or JSONL) in {@code dir} with its audio, laid out as the original's data folder. */
    public static Path audioSkills(Path dir, String name) throws IOException {
        wav(dir.resolve("countingqa_audioskills/counting_audios/concat_1024.wav"));
        wav(dir.resolve("musicbench_audioskills/audio/-0SdAVK79lg_30.wav"));
        wav(dir.resolve("audio/3Rz18q3p-zY_00-00-00_00-00-21.wav"));
        wav(dir.resolve("tacos_5.wav"));
        return copy(name, dir);
    }
}

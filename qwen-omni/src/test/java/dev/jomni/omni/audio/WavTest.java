package dev.jomni.omni.audio;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WavTest {
    @TempDir Path dir;

    private Path clip(int samples) throws Exception {
        var x = new float[samples];
        for (int i = 0; i < samples; i++) x[i] = (float) (0.5 * Math.sin(i * 0.1));
        Path file = dir.resolve("clip.wav");
        Wav.write(file, x, 16_000);
        return file;
    }

    @Test
    void aWholeFileReadsBack() throws Exception {
        var audio = Wav.read(clip(1600));
        assertEquals(1600, audio.samples().length);
        assertEquals(16_000, audio.sampleRate());
    }

    @Test
    void aFileCutOffInsideItsDataChunkIsRefusedNamingTheBytes() throws Exception {
        Path file = clip(1600);                                   // 44-byte header + 3200 data bytes
        byte[] whole = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(whole, whole.length - 1000));
        var e = assertThrows(Wav.WavException.class, () -> Wav.read(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("3200"), e.getMessage());
        assertTrue(e.getMessage().contains("2200"), e.getMessage());
    }

    @Test
    void aHeaderWithoutSamplesIsRefusedNamingTheFile() throws Exception {
        Path file = clip(0);
        var e = assertThrows(Wav.WavException.class, () -> Wav.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("no samples"), e.getMessage());
    }
}

package dev.jomni.omni.audio;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * RIFF/WAVE files: reads PCM 8/16/24/32-bit and IEEE float32/float64 (WAVE_FORMAT_EXTENSIBLE too),
 * mixing any channel count down to mono by averaging; writes mono 16-bit PCM.
 */
public final class Wav {
    private static final int FORMAT_PCM = 1, FORMAT_FLOAT = 3, FORMAT_EXTENSIBLE = 0xFFFE;

    private Wav() {}

    /** Mono samples in [-1, 1] and their rate. */
    public record Audio(float[] samples, int sampleRate) {
        public double seconds() { return samples.length / (double) sampleRate; }
    }

    public static Audio read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new WavException(file + ": no such audio file");
        } catch (IOException e) {
            throw new WavException(file + ": cannot read: " + e.getMessage());
        }
        return decode(bytes, file.toString());
    }

    /** Decodes a whole WAV file held in memory; {@code source} names it in errors. */
    public static Audio decode(byte[] bytes, String source) {
        var b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 12 || b.getInt(0) != 0x46464952 /* RIFF */ || b.getInt(8) != 0x45564157 /* WAVE */)
            throw new WavException(source + ": not a RIFF/WAVE file");
        int format = -1, channels = 0, rate = 0, bits = 0;
        int dataStart = -1, dataLength = 0;
        for (int p = 12; p + 8 <= bytes.length; ) {
            int id = b.getInt(p), size = b.getInt(p + 4);
            long present = bytes.length - p - 8L;
            // A data chunk shorter than its header says is a cut-off file (an interrupted copy or download):
            // decoding what is there would silently feed the model part of the clip, so refuse it. A size
            // of 0xFFFFFFFF (negative here) is the streaming writers' "length unknown": read to the end.
            if (id == 0x61746164 /* "data" */ && size >= 0 && size > present)
                throw new WavException(source + ": truncated: the data chunk's header promises " + size
                        + " bytes but only " + present + " are present");
            if (size < 0 || p + 8L + size > bytes.length) size = (int) present; // truncated non-data chunk
            if (id == 0x20746d66 /* "fmt " */) {
                if (size < 16) throw new WavException(source + ": fmt chunk of " + size + " bytes is too short");
                format = b.getShort(p + 8) & 0xFFFF;
                channels = b.getShort(p + 10) & 0xFFFF;
                rate = b.getInt(p + 12);
                bits = b.getShort(p + 22) & 0xFFFF;
                if (format == FORMAT_EXTENSIBLE && size >= 26) format = b.getShort(p + 32) & 0xFFFF;
            } else if (id == 0x61746164 /* "data" */) {
                dataStart = p + 8;
                dataLength = size;
            }
            p += 8 + size + (size & 1);
        }
        if (format < 0) throw new WavException(source + ": no fmt chunk");
        if (dataStart < 0) throw new WavException(source + ": no data chunk");
        if (channels <= 0 || rate <= 0) throw new WavException(source + ": channels=" + channels + ", sample rate=" + rate);
        boolean pcm = format == FORMAT_PCM && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
        boolean flt = format == FORMAT_FLOAT && (bits == 32 || bits == 64);
        if (!pcm && !flt)
            throw new WavException(source + ": unsupported WAV encoding (format tag " + format + ", " + bits
                    + " bits); supported: PCM 8/16/24/32-bit, float 32/64-bit");
        int width = bits / 8, frame = width * channels, frames = dataLength / frame;
        // An empty clip would only fail later inside the feature extractor, far from the file's name.
        if (frames == 0)
            throw new WavException(source + ": no samples (the data chunk holds " + dataLength + " bytes, less than one "
                    + frame + "-byte frame)");
        float[] mono = new float[frames];
        for (int i = 0; i < frames; i++) {
            double sum = 0;
            for (int c = 0; c < channels; c++) sum += sample(b, dataStart + i * frame + c * width, bits, flt);
            mono[i] = (float) (sum / channels);
        }
        return new Audio(mono, rate);
    }

    private static double sample(ByteBuffer b, int at, int bits, boolean flt) {
        if (flt) return bits == 32 ? b.getFloat(at) : b.getDouble(at);
        return switch (bits) {
            case 8 -> ((b.get(at) & 0xFF) - 128) / 128.0;                       // 8-bit WAV is unsigned
            case 16 -> b.getShort(at) / 32768.0;
            case 24 -> ((b.get(at) & 0xFF) | (b.get(at + 1) & 0xFF) << 8 | b.get(at + 2) << 16) / 8388608.0;
            default -> b.getInt(at) / 2147483648.0;
        };
    }

    /** Writes mono 16-bit PCM; samples are clipped to [-1, 1]. */
    public static void write(Path file, float[] samples, int sampleRate) throws IOException {
        var b = ByteBuffer.allocate(44 + 2 * samples.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0x46464952).putInt(36 + 2 * samples.length).putInt(0x45564157);
        b.putInt(0x20746d66).putInt(16).putShort((short) FORMAT_PCM).putShort((short) 1)
                .putInt(sampleRate).putInt(2 * sampleRate).putShort((short) 2).putShort((short) 16);
        b.putInt(0x61746164).putInt(2 * samples.length);
        for (float s : samples) b.putShort((short) Math.round(Math.max(-1f, Math.min(1f, s)) * 32767f));
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        Files.write(file, b.array());
    }

    /** A WAV file that cannot be read: the message names the file and what is wrong. */
    public static final class WavException extends RuntimeException {
        WavException(String message) { super(message); }
    }
}

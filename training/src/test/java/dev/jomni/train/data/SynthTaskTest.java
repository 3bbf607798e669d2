package dev.jomni.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.omni.audio.Wav;
import dev.jomni.train.score.AnswerExtractor;
import dev.jomni.train.score.Completion;
import dev.jomni.train.score.Matching;
import dev.jomni.train.score.Scorer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SynthTaskTest {
    static final int N = 48;
    @TempDir static Path dir;
    static Dataset data;

    @BeforeAll
    static void generate() throws IOException {
        data = Dataset.load(SynthTask.generate(dir.resolve("a"), N, 7));
    }

    @Test
    void loadsBackThroughTheDatasetReader() {
        assertEquals(N, data.size());
        assertEquals(0, data.skipped());
        AudioQa q = data.items().getFirst();
        assertEquals(dir.resolve("a/audio/synth-00000.wav").toAbsolutePath(), q.audio());
        assertTrue(q.choicesInQuestion());
        assertTrue(q.question().startsWith("<sound>\n") && q.question().contains("\n\nChoose the correct option:\n(A) "), q.question());
        assertEquals(4, q.choices().size());
    }

    @Test
    void everySkillHasItsCategoryAndEachLetterIsRightEquallyOften() {
        var perSkill = new TreeMap<String, int[]>();
        for (AudioQa q : data.items()) perSkill.computeIfAbsent(q.category(), k -> new int[4])[q.answerIndex()]++;
        assertEquals(List.of("Counting", "Duration", "Kind", "Loudness", "Order", "Pitch"), List.copyOf(perSkill.keySet()));
        for (var e : perSkill.entrySet()) assertArrayEquals(new int[] {2, 2, 2, 2}, e.getValue(), e.getKey());
    }

    @Test
    void clipsAre16kHzAndTwoSecondsLong() {
        for (AudioQa q : data.items()) {
            Wav.Audio a = Wav.read(q.audio());
            assertEquals(16_000, a.sampleRate());
            assertEquals(32_000, a.samples().length, q.id());
        }
    }

    /** The audio carries the answer: segment each clip by loudness and measure what the question asks. */
    @Test
    void eachClipsSignalAgreesWithItsAnswer() {
        for (AudioQa q : data.items()) {
            List<Segment> s = segments(Wav.read(q.audio()).samples());
            String why = q.id() + " " + q.category() + " answer " + q.answerChoice() + ": " + s;
            switch (q.category()) {
                case "Counting" -> assertEquals(Integer.parseInt(q.answerChoice()), s.size(), why);
                case "Pitch" -> assertEquals(q.answerIndex(), argmax(s, Segment::crossingsPerSecond), why);
                case "Duration" -> assertEquals(q.answerIndex(), argmax(s, Segment::seconds), why);
                case "Loudness" -> assertEquals(q.answerIndex(), argmax(s, Segment::rms), why);
                case "Order" -> assertEquals(q.answerChoice(), kind(s.getFirst()), why);
                case "Kind" -> { for (Segment one : s) assertEquals(q.answerChoice(), kind(one), why); }
                default -> throw new AssertionError("unexpected category " + q.category());
            }
            if (!q.category().equals("Counting")) assertEquals(4, s.size(), why);
        }
    }

    @Test
    void referenceResponseIsScoredRight() {
        for (AudioQa q : data.items()) {
            String answer = AnswerExtractor.extract(Completion.split(q.response()).answerText());
            assertTrue(Scorer.isCorrect(answer, q, Matching.STRICT), q.id() + ": " + q.response());
        }
    }

    @Test
    void sameSeedWritesTheSameFilesAndAnotherSeedDoesNot() throws IOException {
        Path again = SynthTask.generate(dir.resolve("b"), N, 7);
        assertEquals(Files.readString(data.file()), Files.readString(again));
        assertArrayEquals(Files.readAllBytes(dir.resolve("a/audio/synth-00013.wav")), Files.readAllBytes(dir.resolve("b/audio/synth-00013.wav")));
        Path other = SynthTask.generate(dir.resolve("c"), N, 8);
        assertNotEquals(Files.readString(data.file()), Files.readString(other));
        Path prefix = SynthTask.generate(dir.resolve("d"), 5, 7);
        assertEquals(Dataset.load(prefix).items().get(4).question(), data.items().get(4).question(), "a larger n extends a smaller one");
    }

    record Segment(int start, int frames, double rms, double crossingsPerSecond) {
        double seconds() { return frames / 100.0; }
    }

    /** Runs of 10 ms frames with RMS over 0.03. */
    static List<Segment> segments(float[] x) {
        int frame = 160, n = x.length / frame;
        var out = new ArrayList<Segment>();
        int start = -1;
        for (int f = 0; f <= n; f++) {
            boolean active = f < n && rms(x, f * frame, frame) > 0.03;
            if (active && start < 0) start = f;
            if (!active && start >= 0) {
                int from = start * frame, len = (f - start) * frame;
                int crossings = 0;
                for (int i = from + 1; i < from + len; i++) if ((x[i - 1] < 0) != (x[i] < 0)) crossings++;
                out.add(new Segment(start, f - start, rms(x, from, len), crossings * 16_000.0 / len));
                start = -1;
            }
        }
        return out;
    }

    static double rms(float[] x, int from, int len) {
        double s = 0;
        for (int i = from; i < from + len; i++) s += x[i] * x[i];
        return Math.sqrt(s / len);
    }

    static int argmax(List<Segment> s, java.util.function.ToDoubleFunction<Segment> f) {
        int best = 0;
        for (int i = 1; i < s.size(); i++) if (f.applyAsDouble(s.get(i)) > f.applyAsDouble(s.get(best))) best = i;
        return best;
    }

    /** Which of the Order sounds a segment is, by its zero-crossing rate. */
    static String kind(Segment s) {
        double z = s.crossingsPerSecond();
        return z < 600 ? "A low hum" : z < 3000 ? "A rising whistle" : z < 6000 ? "A high beep" : "A burst of noise";
    }

    @Test
    void orderSoundKindsAreTellableApartByTheirCrossingRate() {
        var seen = new TreeMap<String, Integer>();
        for (AudioQa q : data.items())
            if (q.category().equals("Order")) for (Segment s : segments(Wav.read(q.audio()).samples())) seen.merge(kind(s), 1, Integer::sum);
        assertEquals(Map.of("A low hum", 8, "A rising whistle", 8, "A high beep", 8, "A burst of noise", 8), seen,
                "each Order clip plays each of the four kinds once");
    }
}

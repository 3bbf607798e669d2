package dev.jomni.train.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.jomni.omni.audio.Wav;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * A synthetic audio reasoning task with known answers, small enough for a tiny model to learn on a CPU:
 * 2 s clips of clean tones (the sounds take 0.6–1.9 s of it), six skills as 4-way multiple choice, one {@code category} per skill.
 *
 * <ul>
 * <li>{@code Counting}: how many beeps (1–6);
 * <li>{@code Pitch}: which of four tones is the highest (it is 1.6–2× the next);
 * <li>{@code Duration}: which of four tones lasts longest (0.5 s against 0.15 s);
 * <li>{@code Loudness}: which of four tones is loudest (about 16 dB above the rest);
 * <li>{@code Order}: which of four distinct sounds (hum, beep, noise burst, rising whistle) comes first;
 * <li>{@code Kind}: which of those four sounds is heard (played four times), the choices always in the same order.
 * </ul>
 *
 * Kind and Counting can be answered from what the whole clip holds (its spectrum, its share of sound); the other
 * four ask where in the clip something happens.
 *
 * Record i has skill i mod 6 (the skills in the order above); within a skill, every four consecutive records put the right answer at
 * each of A–D once (in a seeded order), so answers are balanced. Everything derives from the seed and
 * the record's index: the same seed writes the same files, and a larger n extends a smaller one.
 *
 * <p>Output, in the seed record format ({@link Dataset} reads it back): {@code DIR/data.json}, a JSON
 * array of {@code {id, sound, audio_dir: "audio", question, answer, response, category,
 * duration, dataset: "synth"}}, the question {@code <sound>\n…\n\nChoose the correct option:\n(A) …};
 * and {@code DIR/audio/<id>.wav}, 16 kHz mono. {@code response} is a reference answer in the Thinking
 * model's layout, for supervised warm-up.
 */
public final class SynthTask {
    public static final int SAMPLE_RATE = 16_000;
    public static final String DATA_FILE = "data.json";
    /** Every clip's length: equal lengths batch without padding. */
    public static final double CLIP_SECONDS = 2.0;
    private static final String[] ORDINALS = {"first", "second", "third", "fourth"};
    private static final String[] SOUND_NAMES = {"A low hum", "A high beep", "A burst of noise", "A rising whistle"};

    /** The skills, with their {@code category}. */
    public enum Skill {
        COUNTING("Counting"), PITCH("Pitch"), DURATION("Duration"), LOUDNESS("Loudness"), ORDER("Order"), KIND("Kind");

        private final String category;

        Skill(String category) { this.category = category; }

        public String category() { return category; }
    }

    private SynthTask() {}

    /** One generated record before it is written. */
    record Item(String id, Skill skill, String question, List<String> choices, int answerIndex, String thinking, float[] audio) {}

    /**
     * Writes {@code n} records and their audio under {@code dir}.
     *
     * @return the data file, {@code dir/data.json}
     */
    public static Path generate(Path dir, int n, long seed) throws IOException {
        if (n < 1) throw new IllegalArgumentException("n = " + n + ", need at least 1 record");
        Path audioDir = dir.resolve("audio");
        Files.createDirectories(audioDir);
        var mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ArrayNode records = mapper.createArrayNode();
        for (int i = 0; i < n; i++) {
            Item item = item(i, seed);
            String sound = item.id() + ".wav";
            Wav.write(audioDir.resolve(sound), item.audio(), SAMPLE_RATE);
            String answer = item.choices().get(item.answerIndex());
            records.addObject()
                    .put("id", item.id())
                    .put("sound", sound)
                    .put("audio_dir", "audio")
                    .put("question", "<sound>\n" + item.question() + "\n\nChoose the correct option:\n" + Choices.lettered(item.choices()))
                    .put("answer", answer)
                    .put("response", SftExample.response(item.thinking(), answer))
                    .put("category", item.skill().category())
                    .put("duration", Math.round(item.audio().length * 1000.0 / SAMPLE_RATE) / 1000.0)
                    .put("dataset", "synth");
        }
        Path data = dir.resolve(DATA_FILE);
        Files.writeString(data, mapper.writeValueAsString(records) + "\n", StandardCharsets.UTF_8);
        return data;
    }

    /** Record {@code i} of the task for {@code seed}. */
    static Item item(int i, long seed) {
        Skill skill = Skill.values()[i % Skill.values().length];
        int j = i / Skill.values().length;
        int position = balancedPosition(seed, skill, j);
        var rng = new SplittableRandom(mix(seed, 1_000_003L * (i + 1)));
        String id = String.format(Locale.ROOT, "synth-%05d", i);
        var clip = new Clip(rng);
        return switch (skill) {
            case COUNTING -> {
                int start = 1 + rng.nextInt(3);             // choices start..start+3, within 1..6
                int count = start + position;
                double freq = 800 + 400 * rng.nextDouble();
                for (int b = 0; b < count; b++) clip.tone(freq, 0.07, 0.4).gap(0.13);
                var choices = new ArrayList<String>();
                for (int c = 0; c < 4; c++) choices.add(Integer.toString(start + c));
                var counted = new StringBuilder();
                for (int b = 1; b <= count; b++) counted.append(b == 1 ? "" : ", ").append(b);
                yield new Item(id, skill, "How many beeps do you hear?", choices, position,
                        "I count the beeps one by one: " + counted + ". There " + (count == 1 ? "is 1 beep." : "are " + count + " beeps."),
                        clip.finish());
            }
            case PITCH -> {
                double[] f = new double[4];
                double top = 0;
                for (int t = 0; t < 4; t++) if (t != position) { f[t] = 250 + 250 * rng.nextDouble(); top = Math.max(top, f[t]); }
                f[position] = top * (1.6 + 0.4 * rng.nextDouble());
                for (int t = 0; t < 4; t++) clip.tone(f[t], 0.25, 0.3).gap(0.10 + 0.05 * rng.nextDouble());
                yield new Item(id, skill, "Four tones play one after another. Which tone is the highest in pitch?",
                        ordinalChoices("tone"), position, "I compare the four tones. The " + ORDINALS[position]
                        + " tone is clearly higher in pitch than the other three.", clip.finish());
            }
            case DURATION -> {
                double freq = 400 + 400 * rng.nextDouble();
                for (int t = 0; t < 4; t++) clip.tone(freq, t == position ? 0.5 : 0.15, 0.3).gap(0.10 + 0.05 * rng.nextDouble());
                yield new Item(id, skill, "Four sounds play one after another. Which sound lasts the longest?",
                        ordinalChoices("sound"), position, "I compare how long each sound lasts. The " + ORDINALS[position]
                        + " sound lasts much longer than the other three.", clip.finish());
            }
            case LOUDNESS -> {
                double freq = 400 + 400 * rng.nextDouble();
                for (int t = 0; t < 4; t++)
                    clip.tone(freq, 0.25, t == position ? 0.5 : 0.07 + 0.02 * rng.nextDouble()).gap(0.10 + 0.05 * rng.nextDouble());
                yield new Item(id, skill, "Four tones play one after another. Which tone is the loudest?",
                        ordinalChoices("tone"), position, "I compare the loudness of the four tones. The " + ORDINALS[position]
                        + " tone is much louder than the other three.", clip.finish());
            }
            case KIND -> {
                for (int k = 0; k < 4; k++) clip.sound(position).gap(0.10 + 0.05 * rng.nextDouble());
                var choices = new ArrayList<String>();
                for (int c = 0; c < 4; c++) choices.add(SOUND_NAMES[c]);
                yield new Item(id, skill, "Which sound do you hear?", choices, position, "I hear " + SOUND_NAMES[position].toLowerCase(Locale.ROOT) + ".", clip.finish());
            }
            case ORDER -> {
                int[] played = permutation(rng);              // played[k]: the sound kind heard k-th
                for (int k = 0; k < 4; k++) clip.sound(played[k]).gap(0.10 + 0.05 * rng.nextDouble());
                // choices: the kinds in a random order, with the first-played kind at the balanced position
                var others = new ArrayList<Integer>();
                for (int k : permutation(rng)) if (k != played[0]) others.add(k);
                var choices = new ArrayList<String>();
                for (int c = 0, o = 0; c < 4; c++) choices.add(SOUND_NAMES[c == position ? played[0] : others.get(o++)]);
                var heard = new StringBuilder();
                for (int k = 0; k < 4; k++) heard.append(k == 0 ? "" : ", then ").append(SOUND_NAMES[played[k]].toLowerCase(Locale.ROOT));
                yield new Item(id, skill, "Four different sounds play one after another. Which sound comes first?", choices,
                        position, "In order I hear " + heard + ". The first sound is "
                        + SOUND_NAMES[played[0]].toLowerCase(Locale.ROOT) + ".", clip.finish());
            }
        };
    }

    private static List<String> ordinalChoices(String noun) {
        var out = new ArrayList<String>();
        for (String o : ORDINALS) out.add("The " + o + " " + noun);
        return out;
    }

    /** The answer's position for the j-th record of a skill: each block of four is a seeded permutation of 0–3. */
    static int balancedPosition(long seed, Skill skill, int j) {
        var rng = new SplittableRandom(mix(seed, 7_919L * (skill.ordinal() + 1) + 104_729L * (j / 4 + 1)));
        return permutation(rng)[j % 4];
    }

    private static int[] permutation(SplittableRandom rng) {
        int[] p = {0, 1, 2, 3};
        for (int k = 3; k > 0; k--) {
            int r = rng.nextInt(k + 1), t = p[k];
            p[k] = p[r];
            p[r] = t;
        }
        return p;
    }

    /** A well-mixed seed for stream {@code stream} of {@code seed} (splitmix64's finaliser). */
    private static long mix(long seed, long stream) {
        long z = seed + stream * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** A clip built left to right: random lead-in, sounds and gaps, a short tail, a faint noise floor. */
    private static final class Clip {
        private final SplittableRandom rng;
        private final List<float[]> parts = new ArrayList<>();

        Clip(SplittableRandom rng) {
            this.rng = rng;
            gap(0.05 + 0.2 * rng.nextDouble());
        }

        Clip gap(double seconds) {
            parts.add(new float[(int) Math.round(seconds * SAMPLE_RATE)]);
            return this;
        }

        Clip tone(double freq, double seconds, double amp) {
            return sweep(freq, freq, seconds, amp);
        }

        /** A sine gliding linearly from f0 to f1 Hz, with 10 ms raised-cosine edges so it does not click. */
        Clip sweep(double f0, double f1, double seconds, double amp) {
            int n = (int) Math.round(seconds * SAMPLE_RATE);
            float[] s = new float[n];
            double phase = 0;
            for (int t = 0; t < n; t++) {
                double f = f0 + (f1 - f0) * t / n;
                phase += 2 * Math.PI * f / SAMPLE_RATE;
                s[t] = (float) (amp * envelope(t, n) * Math.sin(phase));
            }
            parts.add(s);
            return this;
        }

        /** Sound kind k of {@link #SOUND_NAMES}, 0.22 s. */
        Clip sound(int kind) {
            double seconds = 0.22;
            return switch (kind) {
                case 0 -> {
                    int n = (int) Math.round(seconds * SAMPLE_RATE);
                    float[] s = new float[n];
                    for (int t = 0; t < n; t++) {
                        double x = 2 * Math.PI * 120 * t / SAMPLE_RATE;
                        s[t] = (float) (envelope(t, n) * (0.35 * Math.sin(x) + 0.15 * Math.sin(2 * x)));
                    }
                    parts.add(s);
                    yield this;
                }
                case 1 -> tone(2000, seconds, 0.3);
                case 2 -> {
                    int n = (int) Math.round(seconds * SAMPLE_RATE);
                    float[] s = new float[n];
                    for (int t = 0; t < n; t++) s[t] = (float) (0.3 * envelope(t, n) * (2 * rng.nextDouble() - 1));
                    parts.add(s);
                    yield this;
                }
                case 3 -> sweep(400, 1600, seconds, 0.3);
                default -> throw new IllegalArgumentException("sound kind " + kind);
            };
        }

        /** The clip padded with silence to {@link #CLIP_SECONDS}; the noise floor covers it all. */
        float[] finish() {
            int total = 0;
            for (float[] p : parts) total += p.length;
            int length = (int) Math.round(CLIP_SECONDS * SAMPLE_RATE);
            if (total > length - SAMPLE_RATE / 20)
                throw new IllegalStateException("synth clip of " + total + " samples leaves under 50 ms of tail in " + length);
            total = length;
            float[] out = new float[total];
            int at = 0;
            for (float[] p : parts) {
                System.arraycopy(p, 0, out, at, p.length);
                at += p.length;
            }
            for (int t = 0; t < total; t++) out[t] += (float) (0.003 * (2 * rng.nextDouble() - 1));
            return out;
        }

        private static double envelope(int t, int n) {
            int ramp = Math.min(SAMPLE_RATE / 100, n / 2);
            if (t < ramp) return 0.5 - 0.5 * Math.cos(Math.PI * t / ramp);
            if (t >= n - ramp) return 0.5 - 0.5 * Math.cos(Math.PI * (n - 1 - t) / ramp);
            return 1;
        }
    }
}

package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class GenerateCommandTest {
    private static String run(String... args) {
        var out = new ByteArrayOutputStream();
        PrintStream old = System.out;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            assertEquals(0, Main.run(args));
        } finally {
            System.setOut(old);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void greedyGenerationIsRepeatableAndSamplingFollowsTheSeed() {
        Path tiny = ForwardCommandTest.TINY;
        String[] base = {"generate", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--audio", tiny.resolve("audio1.wav").toString(), "--prompt", "Which sound is longest?", "--max-new-tokens", "8"};
        String greedy = run(base);
        assertTrue(greedy.strip().length() > 0, "the random model still writes something");
        assertEquals(greedy, run(base));
        String[] sampled = java.util.Arrays.copyOf(base, base.length + 4);
        sampled[base.length] = "--temperature";
        sampled[base.length + 1] = "1.0";
        sampled[base.length + 2] = "--seed";
        sampled[base.length + 3] = "7";
        assertEquals(run(sampled), run(sampled));
    }

    @Test
    void anAdapterChangesTheAnswer() {
        Path tiny = ForwardCommandTest.TINY;
        // Sampled with one seed: the random tiny model's greedy answer repeats one token with or without the adapter.
        String[] base = {"generate", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--audio", tiny.resolve("audio1.wav").toString(), "--prompt", "Which sound is longest?", "--max-new-tokens", "8",
                "--temperature", "1.0", "--seed", "7"};
        String[] adapted = java.util.Arrays.copyOf(base, base.length + 2);
        adapted[base.length] = "--adapter";
        adapted[base.length + 1] = tiny.resolve("lora/adapter").toString();
        String with = run(adapted);
        assertTrue(with.strip().length() > 0, "the adapted model writes something");
        assertTrue(!with.equals(run(base)), "the adapter (it moves the logits by about 50%) changes the sampled answer: " + with);
    }
}

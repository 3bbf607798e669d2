package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ForwardCommandTest {
    /** The tiny fixture of the qwen-omni module's test resources (tests run in the module folder). */
    static final Path TINY = Path.of("../qwen-omni/src/test/resources/tiny");

    @Test
    void forwardOnTheFixtureReproducesTransformersLogitsAndLoss(@TempDir Path tmp) {
        Path out = tmp.resolve("logits.npy");
        PrintStream stdout = System.out;
        var captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured));
        int code;
        try {
            code = Main.run("forward", "--model", TINY.resolve("model").toString(), "--inputs", TINY.toString(), "--out", out.toString());
        } finally {
            System.setOut(stdout);
        }
        assertEquals(0, code);
        float[] got = Npy.read(out).toFloats(), want = Npy.read(TINY.resolve("logits.npy")).toFloats();
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            num = Math.max(num, Math.abs(got[i] - want[i]));
            den = Math.max(den, Math.abs(want[i]));
        }
        assertTrue(num / den < 1e-4, "relative error " + num / den);
        String json = captured.toString().trim();
        assertTrue(json.startsWith("{\"loss\": 7.5900"), json);
    }

    @Test
    void forwardWithTheFixtureAdapterReproducesPeftLogitsAndLoss(@TempDir Path tmp) {
        Path out = tmp.resolve("logits.npy");
        PrintStream stdout = System.out;
        var captured = new ByteArrayOutputStream();
        System.setOut(new PrintStream(captured));
        int code;
        try {
            code = Main.run("forward", "--model", TINY.resolve("model").toString(), "--inputs", TINY.toString(), "--out", out.toString(),
                    "--adapter", TINY.resolve("lora/adapter").toString());
        } finally {
            System.setOut(stdout);
        }
        assertEquals(0, code);
        float[] got = Npy.read(out).toFloats(), want = Npy.read(TINY.resolve("lora/logits_lora.npy")).toFloats();
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            num = Math.max(num, Math.abs(got[i] - want[i]));
            den = Math.max(den, Math.abs(want[i]));
        }
        assertTrue(num / den < 1e-4, "relative error " + num / den);
        String json = captured.toString().trim();
        double loss = Double.parseDouble(json.substring(json.indexOf(':') + 1, json.indexOf('}')).trim());
        assertEquals(7.413536071777344, loss, 1e-5, "lora_reference.json's loss");          // transformers + PEFT 0.21
    }

    @Test
    void aMissingInputNamesTheFile(@TempDir Path tmp) {
        var err = new ByteArrayOutputStream();
        PrintStream stderr = System.err;
        System.setErr(new PrintStream(err));
        int code;
        try {
            code = Main.run("forward", "--model", TINY.resolve("model").toString(), "--inputs", tmp.toString(), "--out", tmp.resolve("x.npy").toString());
        } finally {
            System.setErr(stderr);
        }
        assertEquals(1, code);
        assertTrue(err.toString().contains("input_ids.npy: missing"), err.toString());
    }

    @Test
    void anOutOfVocabularyTokenNamesTheFileAndPosition(@TempDir Path tmp) throws Exception {
        Path in = tmp.resolve("in");
        java.nio.file.Files.createDirectories(in);
        // [2, 3]: row 1, column 2 holds an id far beyond the tiny model's vocabulary
        var ids = dev.jomni.tensor.Tensor.of(new long[] {1, 2, 3, 4, 5, 1_000_000}, 2, 3);
        var mask = dev.jomni.tensor.Tensor.of(new long[] {1, 1, 1, 1, 1, 1}, 2, 3);
        dev.jomni.nn.io.Npy.write(in.resolve("input_ids.npy"), dev.jomni.nn.io.TensorData.of(ids));
        dev.jomni.nn.io.Npy.write(in.resolve("attention_mask.npy"), dev.jomni.nn.io.TensorData.of(mask));
        var err = new ByteArrayOutputStream();
        PrintStream stderr = System.err;
        System.setErr(new PrintStream(err));
        int code;
        try {
            code = Main.run("forward", "--model", TINY.resolve("model").toString(), "--inputs", in.toString(), "--out", tmp.resolve("x.npy").toString());
        } finally {
            System.setErr(stderr);
        }
        assertEquals(1, code);
        assertTrue(err.toString().contains(in.resolve("input_ids.npy") + ": token id 1000000 at (row 1, column 2)"), err.toString());
    }
}

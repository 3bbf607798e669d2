package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizeCommandTest {
    static final Path TINY = ForwardCommandTest.TINY;

    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        PrintStream stdout = System.out, stderr = System.err;
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out));
        System.setErr(new PrintStream(err));
        try {
            return new Run(Main.run(args), out.toString(), err.toString());
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
    }

    /**
     * omni quantize's checkpoint gives omni forward the logits of quantize-on-load (--use_4bit) exactly; the tiny
     * model's experts (K = 32) stay dense and are named, its 8 attention Linears are NF4.
     */
    @Test
    void quantizedCheckpointForwardsAsQuantizeOnLoad(@TempDir Path tmp) throws Exception {
        Path q = tmp.resolve("q");
        Run quantize = run("quantize", "--model", TINY.resolve("model").toString(), "--out", q.toString());
        assertEquals(0, quantize.code(), quantize.err());
        assertTrue(quantize.out().startsWith("quantize: 8 NF4 weights"), quantize.out());
        assertTrue(quantize.err().contains("kept dense: thinker.model.layers.1.mlp.experts.down_proj [8, 64, 32]: K = 32"), quantize.err());
        assertTrue(Files.readString(q.resolve("config.json")).contains("\"quant_method\" : \"bitsandbytes\""));
        assertTrue(Files.isRegularFile(q.resolve("preprocessor_config.json")), "the other files are copied");

        Run stored = run("forward", "--model", q.toString(), "--inputs", TINY.toString(), "--out", tmp.resolve("stored.npy").toString());
        Run onLoad = run("forward", "--model", TINY.resolve("model").toString(), "--use-4bit", "--inputs", TINY.toString(),
                "--out", tmp.resolve("onload.npy").toString());
        Run dense = run("forward", "--model", TINY.resolve("model").toString(), "--use_4bit=false", "--inputs", TINY.toString(),
                "--out", tmp.resolve("dense.npy").toString());
        assertEquals(0, stored.code(), stored.err());
        assertEquals(0, onLoad.code(), onLoad.err());
        assertEquals(0, dense.code(), dense.err());
        for (Run r : new Run[] {stored, onLoad}) assertTrue(r.err().matches("(?s)weights:\\n  attention .* f32 \\+ nf4\\n.*  total .*"), r.err());
        assertTrue(dense.err().matches("(?s)weights:\\n  attention .* bytes  f32\\n.*"), dense.err());
        float[] a = Npy.read(tmp.resolve("stored.npy")).toFloats(), b = Npy.read(tmp.resolve("onload.npy")).toFloats();
        float[] d = Npy.read(tmp.resolve("dense.npy")).toFloats();
        assertArrayEquals(b, a, "the same NF4 bytes give the same logits");
        double e = 0, n = 0;
        for (int i = 0; i < d.length; i++) { e += (a[i] - d[i]) * (double) (a[i] - d[i]); n += (double) d[i] * d[i]; }
        double rel = Math.sqrt(e / n);
        assertTrue(rel > 1e-3 && rel < 0.345, "NF4 attention moves the logits by its error: " + rel);
    }
}

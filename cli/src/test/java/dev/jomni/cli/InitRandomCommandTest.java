package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.Npy;
import dev.jomni.nn.io.SafeTensors;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitRandomCommandTest {
    static final Path TINY = ForwardCommandTest.TINY;

    private static String[] run(String... args) {
        PrintStream out = System.out, err = System.err;
        var o = new ByteArrayOutputStream();
        var e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o));
        System.setErr(new PrintStream(e));
        int code;
        try {
            code = Main.run(args);
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
        return new String[] {String.valueOf(code), o.toString(), e.toString()};
    }

    /** A random checkpoint of the tiny config is what omni forward loads: every tensor the fixture has, finite logits. */
    @Test
    void writesACheckpointThatOmniForwardRuns(@TempDir Path tmp) {
        Path ckpt = tmp.resolve("random");
        String[] r = run("init-random", "--config", TINY.resolve("model/config.json").toString(), "--out", ckpt.toString(), "--seed", "5");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[2].contains("141 thinker tensors, 563,648 parameters"), r[2]);
        try (var file = SafeTensors.open(ckpt)) {
            try (var fixture = SafeTensors.open(TINY.resolve("model"))) {
                assertEquals(new java.util.TreeSet<>(fixture.names()), new java.util.TreeSet<>(file.names()));
            }
        }
        Path logits = tmp.resolve("logits.npy");
        r = run("forward", "--model", ckpt.toString(), "--inputs", TINY.toString(), "--out", logits.toString());
        assertEquals("0", r[0], r[2]);
        float[] v = Npy.read(logits).toFloats();
        for (float x : v) assertTrue(Float.isFinite(x));
        assertTrue(v.length > 1000);
    }

    @Test
    void dryRunListsAndWritesNothing(@TempDir Path tmp) {
        Path ckpt = tmp.resolve("none");
        String[] r = run("init-random", "--config", TINY.resolve("model/config.json").toString(), "--out", ckpt.toString(), "--dry-run", "--dtype", "nf4");
        assertEquals("0", r[0], r[2]);
        var lines = r[1].lines().toList();
        assertEquals(141, lines.size());
        assertTrue(lines.contains("thinker.model.layers.1.mlp.experts.7.gate_proj.weight\tNF4\t[32, 64]\tmodel-00001-of-00001.safetensors"), lines.toString());
        assertTrue(lines.contains("thinker.model.layers.1.mlp.gate.weight\tBF16\t[8, 64]\tmodel-00001-of-00001.safetensors"), lines.toString());
        assertFalse(Files.exists(ckpt));
    }

    @Test
    void anUnknownDtypeIsRefused() {
        String[] r = run("init-random", "--config", TINY.resolve("model/config.json").toString(), "--dry-run", "--dtype", "fp8");
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("omni init-random: --dtype fp8: bf16 or nf4"), r[2]);
    }
}

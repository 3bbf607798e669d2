package dev.jomni.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressTest {
    @Test
    void withoutATerminalPrintsAPlainLineEachTenthAndAtTheEnd() {
        var buf = new ByteArrayOutputStream();
        try (var p = Progress.start("gen", 20, new PrintStream(buf, true, StandardCharsets.UTF_8), false)) {
            for (int i = 0; i < 20; i++) p.advance(1);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertFalse(out.contains("\r"));
        String[] lines = out.split("\n");
        assertEquals(10, lines.length, out);
        assertTrue(lines[0].startsWith("gen [###---") && lines[0].contains(" 2/20 "), lines[0]);
        assertTrue(lines[9].contains("20/20 100%"), lines[9]);
    }

    @Test
    void onATerminalRedrawsOneLineInPlace() {
        var buf = new ByteArrayOutputStream();
        try (var p = Progress.start("gen", 3, new PrintStream(buf, true, StandardCharsets.UTF_8), true)) {
            p.advance(3);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertTrue(out.startsWith("\rgen ["), out);
        assertEquals(1, out.chars().filter(c -> c == '\n').count(), "one line, ended at close");
        assertTrue(out.strip().endsWith("3.00/s") || out.contains("3/3 100%"), out);
    }
}

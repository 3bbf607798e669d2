package dev.jomni.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress bar for long loops, on stderr. On a terminal it redraws one line in place (carriage
 * return), at most ten times a second; otherwise (a log file, CI) it prints a plain line at every 10 %
 * and at the end, so logs stay readable.
 *
 * <pre>{@code
 * try (var p = Progress.start("eval", items.size())) {
 *     for (var batch : batches) { run(batch); p.advance(batch.size()); }
 * }
 * }</pre>
 */
public final class Progress implements AutoCloseable {
    private static final long REDRAW_NANOS = 100_000_000L;
    private static final int WIDTH = 30;

    private final String label;
    private final long total;
    private final PrintStream out;
    private final boolean tty;
    private final long startNanos;
    private long done, lastDrawNanos;
    private int lastDecile = 0;
    private boolean closed;
    private String status = "";

    Progress(String label, long total, PrintStream out, boolean tty, long startNanos) {
        if (total < 0) throw new IllegalArgumentException("progress '" + label + "': total " + total + " < 0");
        this.label = label;
        this.total = total;
        this.out = out;
        this.tty = tty;
        this.startNanos = startNanos;
        this.lastDrawNanos = startNanos - REDRAW_NANOS;
    }

    /** A bar on stderr, redrawn in place when stderr's console is a terminal. */
    public static Progress start(String label, long total) {
        var console = System.console();
        return new Progress(label, total, System.err, console != null && console.isTerminal(), System.nanoTime());
    }

    /** A bar on {@code out}; {@code tty} picks in-place redraws over plain lines. */
    public static Progress start(String label, long total, PrintStream out, boolean tty) {
        return new Progress(label, total, out, tty, System.nanoTime());
    }

    public void advance(long n) {
        done = Math.min(total, done + n);
        long now = System.nanoTime();
        if (tty) {
            if (now - lastDrawNanos >= REDRAW_NANOS || done == total) {
                out.print("\r" + line(now));
                out.flush();
                lastDrawNanos = now;
            }
        } else {
            int decile = total == 0 ? 10 : (int) (done * 10 / total);
            if (decile > lastDecile && done < total) {
                out.println(line(now));
                lastDecile = decile;
            }
        }
    }

    public long done() { return done; }

    /** Text shown after the counts from the next redraw on (a trainer's loss and learning rate). */
    public void status(String text) { status = text == null || text.isEmpty() ? "" : ", " + text; }

    /** Draws the final state and ends the line. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        long now = System.nanoTime();
        out.print(tty ? "\r" + line(now) + "\n" : line(now) + "\n");
        out.flush();
    }

    String line(long now) {
        double seconds = (now - startNanos) / 1e9;
        double frac = total == 0 ? 1 : done / (double) total;
        int filled = (int) Math.round(frac * WIDTH);
        String bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
        double rate = seconds > 0 ? done / seconds : 0;
        String eta = rate > 0 && done < total ? String.format(Locale.ROOT, ", eta %s", clock((total - done) / rate)) : "";
        return String.format(Locale.ROOT, "%s [%s] %d/%d %3.0f%% %s, %.2f/s%s", label, bar, done, total, frac * 100,
                clock(seconds), rate, eta) + status;
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}

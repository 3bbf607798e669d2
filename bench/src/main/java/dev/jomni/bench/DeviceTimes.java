package dev.jomni.bench;

import dev.jomni.cuda.CudaContext;
import dev.jomni.cuda.Event;
import dev.jomni.cuda.Stream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Device-side timings for the GPU benchmarks: CUDA events around each measured invocation, the median
 * of the measurement iterations reported at the end as one line {@code JOMNI-RESULT name value unit},
 * on stdout and appended to {@code $JOMNI_BENCH_OUT/results.txt} (scripts/gpu gathers them).
 */
final class DeviceTimes implements AutoCloseable {
    private final Event start, end;
    private final List<Double> millis = new ArrayList<>();
    boolean measuring;

    DeviceTimes(CudaContext ctx) {
        start = ctx.createEvent();
        end = ctx.createEvent();
    }

    void begin(Stream s) {
        start.record(s);
    }

    /** Records the end, waits for it, and keeps the elapsed device time if this is a measurement iteration. */
    void end(Stream s) {
        end.record(s);
        end.synchronize();
        if (measuring) millis.add((double) Event.elapsedMillis(start, end));
    }

    void add(double value) {
        if (measuring) millis.add(value);
    }

    /**
     * peers.py's protocol, for a side-by-side ratio: {@code warm} runs, a synchronize, then {@code reps} runs each
     * between two events and synchronized; the median in milliseconds. Short bursts like this one run at the
     * GPU's boost clock, where JMH's seconds of back-to-back work meet the power limit.
     */
    double burst(Runnable op, Stream s, int warm, int reps) {
        for (int i = 0; i < warm; i++) op.run();
        s.synchronize();
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            start.record(s);
            op.run();
            end.record(s);
            end.synchronize();
            t[i] = Event.elapsedMillis(start, end);
        }
        java.util.Arrays.sort(t);
        return t[reps / 2];
    }

    double median() {
        if (millis.isEmpty()) return Double.NaN;
        List<Double> sorted = new ArrayList<>(millis);
        Collections.sort(sorted);
        return sorted.get(sorted.size() / 2);
    }

    int samples() {
        return millis.size();
    }

    static void report(String name, double value, String unit, String note) {
        String line = String.format(Locale.ROOT, "JOMNI-RESULT %s %.4f %s %s", name, value, unit, note);
        System.out.println(line);
        String dir = System.getenv("JOMNI_BENCH_OUT");
        if (dir == null) return;
        try {
            Files.writeString(Path.of(dir, "results.txt"), line + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.err.println("could not append to " + dir + "/results.txt: " + e);
        }
    }

    @Override
    public void close() {
        start.close();
        end.close();
    }
}

package dev.jomni.tensor.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * The CPU backend's threads. Work is split into tasks whose boundaries depend only on the problem,
 * never on the thread count, and no reduction crosses a task: results are bit-identical on 1 or N
 * threads. Thread count: {@code -Djomni.threads=N}, default all available processors.
 */
public final class Parallel {
    public static final int THREADS = Integer.getInteger("jomni.threads", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = THREADS > 1 ? new ForkJoinPool(THREADS) : null;
    /** A pool this thread uses instead of POOL: lets tests show results do not depend on the thread count. */
    private static final ThreadLocal<ForkJoinPool> OVERRIDE = new ThreadLocal<>();

    private Parallel() {}

    /** Runs task(0) … task(count − 1), in parallel where it pays; returns when all are done. */
    public static void forEach(int count, IntConsumer task) {
        if (count <= 0) return;
        ForkJoinPool pool = OVERRIDE.get() != null ? OVERRIDE.get() : POOL;
        if (pool == null || count == 1 || ForkJoinTask.inForkJoinPool()) {
            for (int i = 0; i < count; i++) task.accept(i);
            return;
        }
        pool.invoke(new Range(0, count, task));
    }

    /** Runs {@code body} with this thread's CPU work spread over {@code threads} threads (1: sequential). */
    public static void withThreads(int threads, Runnable body) {
        if (threads < 1) throw new IllegalArgumentException("threads " + threads + " < 1");
        ForkJoinPool pool = new ForkJoinPool(threads);
        OVERRIDE.set(pool);
        try {
            body.run();
        } finally {
            OVERRIDE.remove();
            pool.shutdown();
        }
    }

    /**
     * Runs body over [0, n) in chunks of at least {@code grain} items: body.accept(start, end).
     * Chunk boundaries depend on n and grain only.
     */
    public static void forRange(long n, long grain, RangeBody body) {
        if (n <= 0) return;
        long g = Math.max(1, grain);
        long chunks = (n + g - 1) / g;
        if (chunks > Integer.MAX_VALUE) throw new IllegalArgumentException("forRange: " + n + " items in chunks of " + g);
        forEach((int) chunks, c -> body.accept(c * g, Math.min(n, (c + 1) * g)));
    }

    @FunctionalInterface
    public interface RangeBody { void accept(long start, long end); }

    private static final class Range extends RecursiveAction {
        private final int lo, hi;
        private final IntConsumer task;
        Range(int lo, int hi, IntConsumer task) { this.lo = lo; this.hi = hi; this.task = task; }
        @Override protected void compute() {
            if (hi - lo == 1) { task.accept(lo); return; }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Range(lo, mid, task), new Range(mid, hi, task));
        }
    }
}

package dev.jomni.bench;

import dev.jomni.tensor.cpu.CpuMatmul;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * f32 matmul C = A·B, all size×size, row-major, on all cores (CpuMatmul.sgemm). GFLOP/s = 2·size³ / median
 * time; scripts/bench-matmul-cpu runs this beside numpy (OpenBLAS) and prints the ratio.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class CpuMatmulBench {
    @Param({"1024", "4096"})
    int size;

    private Arena arena;
    private MemorySegment a, b, c;

    @Setup(Level.Trial)
    public void setup() {
        arena = Arena.ofShared();
        long elements = (long) size * size;
        a = arena.allocate(elements * Float.BYTES, 64);
        b = arena.allocate(elements * Float.BYTES, 64);
        c = arena.allocate(elements * Float.BYTES, 64);
        var rnd = new SplittableRandom(42);
        for (long i = 0; i < elements; i++) {
            a.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
            b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() { arena.close(); }

    @Benchmark
    public MemorySegment sgemm() {
        int n = size;
        CpuMatmul.sgemm(1, n, n, n, a, 0, 0, n, 1, b, 0, 0, n, 1, c, 0, 0, n);
        return c;
    }
}

package dev.jomni.bench;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * use_4bit's host quantizer (Nf4Weight.Builder over bf16 rows, all cores): "q_proj" [4096, 2048], "expert" one
 * expert's gate + up rows [1536, 2048] as Thinker.load adds them to a stack. Weights per second = rows·cols / time;
 * the 30B thinker's text weights are about 29·10⁹ of them, so load time from quantizing ≈ 29·10⁹ / that rate.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class Nf4QuantizeBench {
    @Param({"q_proj", "expert"})
    public String shape;

    private Tensor w;

    @Setup(Level.Trial)
    public void setUp() {
        w = Tensor.randn(new Generator(1), DType.BF16, shape.equals("q_proj") ? 4096 : 1536, 2048).mul(0.02);
    }

    @Benchmark
    public long quantize() {
        try (Nf4Weight q = new Nf4Weight.Builder(shape, w.size(0), w.size(1)).add(w).build(DType.BF16)) {
            return q.bytes();
        }
    }
}

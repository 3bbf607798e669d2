package dev.jomni.cli;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.train.AdamW;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The embedded default job: runs on the CPU with nothing to download. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run the embedded default job on the CPU: a two-layer MLP learns a generated regression task.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--steps", defaultValue = "300", description = "optimizer steps (default ${DEFAULT-VALUE})")
    int steps;

    @Option(names = "--seed", defaultValue = "0", description = "seed for data and weights (default ${DEFAULT-VALUE})")
    long seed;

    @Override
    public Integer call() {
        Generator gen = new Generator(seed);
        int n = 512, in = 8, hidden = 64;
        // Data: y = sin(x·a) + 0.1·noise, a fixed random projection.
        Tensor x = Tensor.randn(gen, DType.F32, n, in);
        Tensor a = Tensor.randn(gen, DType.F32, in, 1).mul(0.5);
        Tensor y = x.matmul(a).mul(3).tanh().add(Tensor.randn(gen, DType.F32, n, 1).mul(0.05));
        // Model: y ≈ silu(x W1 + b1) W2 + b2
        Tensor w1 = Tensor.randn(gen, DType.F32, in, hidden).mul(1 / Math.sqrt(in)).requiresGrad(true);
        Tensor b1 = Tensor.zeros(DType.F32, hidden).requiresGrad(true);
        Tensor w2 = Tensor.randn(gen, DType.F32, hidden, 1).mul(1 / Math.sqrt(hidden)).requiresGrad(true);
        Tensor b2 = Tensor.zeros(DType.F32, 1).requiresGrad(true);
        var opt = new AdamW(List.of(w1, b1, w2, b2), new AdamW.Config(1e-2, 0.9, 0.999, 1e-8, 0.0));
        System.out.printf("jomni demo: a two-layer MLP (%d → %d → 1) on %d generated points, AdamW, CPU%n", in, hidden, n);
        long start = System.nanoTime();
        double first = Double.NaN, last = Double.NaN;
        for (int step = 1; step <= steps; step++) {
            try (var scope = Scope.open()) {                 // frees every activation and intermediate gradient
                Tensor loss = x.matmul(w1).add(b1).silu().matmul(w2).add(b2).sub(y).square().mean();
                loss.backward();
                opt.step();
                opt.zeroGrad();
                last = loss.item();
                if (step == 1) first = last;
                if (step == 1 || step % 25 == 0 || step == steps) System.out.printf("step %4d  loss %.5f%n", step, last);
            }
        }
        System.out.printf("loss %.5f → %.5f in %d steps, %.1f s%n", first, last, steps, (System.nanoTime() - start) / 1e9);
        return last < first ? 0 : 1;
    }
}

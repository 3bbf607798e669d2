package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The CUDA-vs-CPU harness: the same fresh random inputs (never zeros) on both devices, one function of
 * them run on each, outputs compared, then the same random output gradient back-propagated on each
 * and every input gradient compared. Error bound per element: |got − ref| ≤ eps·(|ref| + max|ref|),
 * llm.c's tol + |ref|·eps with the tolerance scaled by the tensor's magnitude.
 */
final class BackendParity {
    private BackendParity() {}

    static final DType[] FLOATS = {DType.F32, DType.BF16, DType.F16};

    static Device gpu() {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        return Device.cuda(0);
    }

    static double eps(DType t) {
        return switch (t) {
            case F64 -> 1e-9;
            case F32 -> 2e-4;
            case F16 -> 1.5e-2;
            case BF16 -> 5e-2;
            default -> 0;
        };
    }

    /** An input: shape, how values are drawn, and whether it is differentiable (floating inputs are). */
    record In(int[] shape, Kind kind, double lo, double hi, DType type) {
        enum Kind { NORMAL, UNIFORM, INDEX, BOOL }
    }

    static In normal(int... shape) { return new In(shape, In.Kind.NORMAL, 0, 0, null); }

    /** Uniform in [lo, hi), never 0. */
    static In uniform(double lo, double hi, int... shape) { return new In(shape, In.Kind.UNIFORM, lo, hi, null); }

    /** I64 indices in [0, bound). */
    static In index(int bound, int... shape) { return new In(shape, In.Kind.INDEX, 0, bound, DType.I64); }

    static In mask(int... shape) { return new In(shape, In.Kind.BOOL, 0, 0, DType.BOOL); }

    /** An input of a fixed dtype (not the case's floating type). */
    static In typed(DType t, In in) { return new In(in.shape, in.kind, in.lo, in.hi, t); }

    static double[] draw(SplittableRandom r, In in) {
        double[] v = new double[Math.toIntExact(Tensor.numel(in.shape))];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (in.kind) {
                case NORMAL -> {
                    double g;
                    do g = r.nextGaussian(); while (g == 0);
                    yield g;
                }
                case UNIFORM -> {
                    double u;
                    do u = in.lo + (in.hi - in.lo) * r.nextDouble(); while (u == 0);
                    yield u;
                }
                case INDEX -> r.nextInt((int) in.hi);
                case BOOL -> r.nextBoolean() ? 1 : 0;
            };
        }
        return v;
    }

    /** Runs f on CPU and CUDA inputs of floating type t and compares outputs and input gradients. */
    static void check(String name, DType t, Function<Tensor[], Tensor> f, In... inputs) {
        Device gpu = gpu();
        long seed = System.nanoTime();
        SplittableRandom r = new SplittableRandom(seed);
        String what = name + " " + t.lower() + " (seed " + seed + ")";
        Tensor[] cpu = new Tensor[inputs.length], cuda = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            DType type = inputs[i].type != null ? inputs[i].type : t;
            double[] v = draw(r, inputs[i]);
            Tensor base = Tensor.fromDoubles(type, v, inputs[i].shape);
            cpu[i] = base;
            try (var g = Autograd.noGrad()) {
                cuda[i] = base.to(gpu);
            }
            if (type.floating) {
                cpu[i].requiresGrad(true);
                cuda[i].requiresGrad(true);
            }
        }
        Tensor want = f.apply(cpu), got = f.apply(cuda);
        assertEquals(gpu, got.device(), what + ": result device");
        assertEquals(want.dtype(), got.dtype(), what + ": result dtype");
        assertEquals(Arrays.toString(want.shape()), Arrays.toString(got.shape()), what + ": result shape");
        compare(what + " output", want.dtype(), got.toDoubleArray(), want.toDoubleArray());
        if (!want.dtype().floating || want.isLeaf()) return;
        double[] w = draw(r, normal(want.shape()));
        Tensor dyCpu = Tensor.fromDoubles(want.dtype(), w, want.shape());
        Tensor dyGpu;
        try (var g = Autograd.noGrad()) {
            dyGpu = dyCpu.to(gpu);
        }
        want.backward(dyCpu);
        got.backward(dyGpu);
        for (int i = 0; i < inputs.length; i++) {
            if (!cpu[i].requiresGrad()) continue;
            Tensor gw = cpu[i].grad(), gg = cuda[i].grad();
            if (gw == null && gg == null) continue;
            if (gw == null || gg == null) fail(what + ": input " + i + " gradient is " + (gw == null ? "missing on the CPU" : "missing on CUDA"));
            assertEquals(gpu, gg.device(), what + ": gradient device");
            compare(what + " gradient of input " + i, t, gg.toDoubleArray(), gw.toDoubleArray());
        }
    }

    /** Element-wise bound eps·(|ref| + max|ref|); NaN must meet NaN; integers and bools must be equal. */
    static void compare(String what, DType t, double[] got, double[] ref) {
        assertEquals(ref.length, got.length, what + ": element count");
        double eps = t.floating ? eps(t) : 0, scale = 0;
        for (double v : ref) if (Double.isFinite(v)) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < ref.length; i++) {
            double a = got[i], b = ref[i];
            if (Double.isNaN(b) || Double.isNaN(a)) {
                if (Double.isNaN(a) != Double.isNaN(b)) fail(what + ": element " + i + " is " + a + ", the CPU gives " + b);
                continue;
            }
            if (Double.isInfinite(b) || Double.isInfinite(a)) {
                if (a != b) fail(what + ": element " + i + " is " + a + ", the CPU gives " + b);
                continue;
            }
            if (Math.abs(a - b) > eps * (Math.abs(b) + scale))
                fail(what + ": element " + i + " of " + ref.length + " is " + a + ", the CPU gives " + b + " (bound "
                        + eps * (Math.abs(b) + scale) + ")");
        }
    }
}

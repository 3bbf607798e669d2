package dev.jomni.tensor.ops;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.util.function.Function;

/** Checks the coarse ops' tests share: f64 finite differences, bit equality, scaled closeness. */
final class OpAsserts {
    private OpAsserts() {}

    /**
     * f64 central finite differences (as PyTorch's gradcheck advises): for L = Σ f(x)·R with a random R
     * and a random direction v per f64 input, the analytic Σ ∂L/∂x·v must match (L(x+εv) − L(x−εv)) / 2ε.
     */
    static void gradcheck(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        Generator gen = new Generator(name.hashCode());
        Tensor[] leaves = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) leaves[i] = inputs[i].detach().requiresGrad(inputs[i].dtype() == DType.F64);
        Tensor out = f.apply(leaves);
        Tensor r = Tensor.randn(gen, DType.F64, out.shape());
        out.mul(r).sum().backward();
        for (int i = 0; i < leaves.length; i++) {
            if (leaves[i].dtype() != DType.F64) continue;
            Tensor v = Tensor.randn(gen, DType.F64, leaves[i].shape());
            if (leaves[i].grad() == null) fail(name + ": input " + i + " received no gradient");
            double analytic = leaves[i].grad().mul(v).sum().item();
            double eps = 1e-6;
            double numeric = (project(f, leaves, i, v, eps, r) - project(f, leaves, i, v, -eps, r)) / (2 * eps);
            double err = Math.abs(analytic - numeric), tol = 1e-7 + 1e-6 * Math.abs(numeric);
            assertTrue(err <= tol, String.format("%s: input %d: analytic %.12g vs numeric %.12g (error %.3g > %.3g)",
                    name, i, analytic, numeric, err, tol));
        }
    }

    private static double project(Function<Tensor[], Tensor> f, Tensor[] inputs, int which, Tensor v, double eps, Tensor r) {
        try (var g = Autograd.noGrad()) {
            Tensor[] moved = inputs.clone();
            moved[which] = inputs[which].detach().add(v.mul(eps));
            return f.apply(moved).mul(r).sum().item();
        }
    }

    /** Same dtype, shape and bits (NaN equal to NaN). */
    static void assertBitEqual(String what, Tensor expected, Tensor actual) {
        assertTrue(expected.dtype() == actual.dtype(), what + ": dtype " + actual.dtype() + ", expected " + expected.dtype());
        assertTrue(java.util.Arrays.equals(expected.shape(), actual.shape()), what + ": shape differs");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++)
            if (Double.doubleToLongBits(e[i]) != Double.doubleToLongBits(a[i]))
                fail(String.format("%s: element %d is %s, expected %s (bit-identical)", what, i, a[i], e[i]));
    }

    /** |actual − expected| ≤ tol · max(1, max|expected|) element-wise: a bound scaled by the tensor's magnitude. */
    static void assertClose(String what, Tensor expected, Tensor actual, double tol) {
        assertTrue(java.util.Arrays.equals(expected.shape(), actual.shape()), what + ": shape differs");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        double scale = 1;
        for (double v : e) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < e.length; i++)
            if (!(Math.abs(a[i] - e[i]) <= tol * scale))
                fail(String.format("%s: element %d is %s, expected %s (bound %.3g·%.3g)", what, i, a[i], e[i], tol, scale));
    }
}

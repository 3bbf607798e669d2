package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.Function;

/**
 * Finite-difference gradient check in float64 (as PyTorch's gradcheck advises): for a random
 * projection L = Σ f(x)·R and a random direction v per input, the analytic Σ ∂L/∂x·v must match the
 * central difference (L(x+εv) − L(x−εv)) / 2ε.
 */
final class GradCheck {
    private GradCheck() {}

    static void check(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        Generator gen = new Generator(name.hashCode());
        for (Tensor x : inputs) if (x.dtype() == DType.F64) x.requiresGrad(true);
        Tensor out = f.apply(inputs);
        Tensor r = Tensor.randn(gen, DType.F64, out.shape());
        out.mul(r).sum().backward();
        for (int i = 0; i < inputs.length; i++) {
            Tensor x = inputs[i];
            if (x.dtype() != DType.F64) continue;
            Tensor v = Tensor.randn(gen, DType.F64, x.shape());
            double analytic = x.grad() == null ? 0 : x.grad().mul(v).sum().item();
            double eps = 1e-6;
            double plus = project(f, inputs, i, v, eps, r), minus = project(f, inputs, i, v, -eps, r);
            double numeric = (plus - minus) / (2 * eps);
            double err = Math.abs(analytic - numeric), tol = 1e-6 + 1e-5 * Math.abs(numeric);
            assertTrue(err <= tol, String.format("%s: input %d %s: analytic %.10g vs numeric %.10g (error %.3g > %.3g)",
                    name, i, Check.str(x.shape()), analytic, numeric, err, tol));
        }
    }

    private static double project(Function<Tensor[], Tensor> f, Tensor[] inputs, int which, Tensor v, double eps, Tensor r) {
        try (var g = Autograd.noGrad()) {
            Tensor[] moved = inputs.clone();
            moved[which] = inputs[which].detach().add(v.mul(eps));
            return f.apply(moved).mul(r).sum().item();
        }
    }
}

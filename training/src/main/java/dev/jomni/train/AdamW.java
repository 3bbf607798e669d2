package dev.jomni.train;

import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW (Loshchilov & Hutter, arXiv:1711.05101) with decoupled weight decay, state in f32 on the parameters'
 * device, as torch's single-tensor AdamW computes it: p ← p·(1 − lr·λ), m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
 * p ← p − lr·m̂/(√v̂ + ε) ({@link AdamWStep#torch} has the exact order of operations).
 */
public final class AdamW implements Optimizer {
    public record Config(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public Config {
            if (!(lr >= 0)) throw new IllegalArgumentException("AdamW: lr=" + lr + " must be non-negative");
            if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1)
                throw new IllegalArgumentException("AdamW: betas (" + beta1 + ", " + beta2 + ") must be in [0, 1)");
        }

        public static Config defaults(double lr) { return new Config(lr, 0.9, 0.999, 1e-8, 0.01); }
    }

    private final List<Tensor> params;
    private final Tensor[] m, v;
    private Config config;
    private long step;

    public AdamW(List<Tensor> params, Config config) {
        this.params = List.copyOf(params);
        this.config = config;
        m = new Tensor[params.size()];
        v = new Tensor[params.size()];
        for (int i = 0; i < m.length; i++) {
            int[] shape = params.get(i).shape();
            m[i] = Scope.unscoped(Tensor.zeros(params.get(i).device(), DType.F32, shape));
            v[i] = Scope.unscoped(Tensor.zeros(params.get(i).device(), DType.F32, shape));
        }
    }

    @Override public String name() { return "adamw_torch"; }

    @Override
    public void learningRate(double lr) { config = new Config(lr, config.beta1(), config.beta2(), config.eps(), config.weightDecay()); }

    @Override public long steps() { return step; }

    @Override
    public long stateBytes() {
        long n = 0;
        for (Tensor t : m) n += 2 * t.numel() * 4;
        return n;
    }

    /** {@code step} (I64 [1]) and {@code state.<i>.exp_avg} / {@code exp_avg_sq} (f32, the parameter's shape), as torch names them. */
    @Override
    public Map<String, TensorData> state() {
        Map<String, TensorData> out = new LinkedHashMap<>();
        out.put("step", TensorData.ofLongs(new long[] {step}, 1));
        for (int i = 0; i < m.length; i++) {
            out.put("state." + i + ".exp_avg", TensorData.of(m[i]));
            out.put("state." + i + ".exp_avg_sq", TensorData.of(v[i]));
        }
        return out;
    }

    @Override
    public void loadState(Map<String, TensorData> state, String origin) {
        if (!state.containsKey("step")) throw new IllegalArgumentException(origin + ": no optimizer 'step' (not an adamw_torch state)");
        long restored = state.get("step").toLongs()[0];
        try (var g = Autograd.noGrad()) {
            for (int i = 0; i < m.length; i++)
                for (String k : new String[] {"exp_avg", "exp_avg_sq"}) {
                    TensorData d = state.get("state." + i + "." + k);
                    Tensor into = k.equals("exp_avg") ? m[i] : v[i];
                    if (d == null || d.numel() != into.numel())
                        throw new IllegalArgumentException(origin + ": state." + i + "." + k + (d == null ? " missing" : " " + Arrays.toString(d.shape())
                                + " does not fit parameter " + i + " " + Arrays.toString(into.shape())));
                    into.assign(d.toTensor().reshape(into.shape()).to(into.device()));
                }
        }
        step = restored;
    }

    /** One fused kernel launch per parameter ({@link AdamWStep#torch}); nothing is read back from the device. */
    @Override
    public void step() {
        step++;
        double c1 = 1 - Math.pow(config.beta1(), step), c2 = 1 - Math.pow(config.beta2(), step);
        // torch: step_size = lr / bias_correction1, denom = sqrt(v) / sqrt(bias_correction2) + eps, as f32 scalars
        var h = new AdamWStep.Hyper((float) config.beta1(), (float) config.beta2(), (float) config.eps(), (float) config.lr(),
                (float) config.weightDecay(), (float) (config.lr() / c1), (float) Math.sqrt(c2));
        try (var g = Autograd.noGrad(); var scope = Scope.open()) {
            for (int i = 0; i < m.length; i++) {
                Tensor p = params.get(i), grad = p.grad();
                if (grad == null) continue;
                AdamWStep.torch(p, grad.contiguous(), m[i], v[i], h);
            }
        }
    }

    @Override
    public void close() {
        for (Tensor t : m) t.close();
        for (Tensor t : v) t.close();
    }

    @Override
    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }
}

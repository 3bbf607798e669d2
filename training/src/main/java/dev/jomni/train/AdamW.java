package dev.jomni.train;

import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW (Loshchilov & Hutter, arXiv:1711.05101) with decoupled weight decay, state in f32:
 * m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr·(m̂/(√v̂ + ε) + λp).
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
            m[i] = Tensor.zeros(params.get(i).device(), DType.F32, shape);
            v[i] = Tensor.zeros(params.get(i).device(), DType.F32, shape);
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
                    into.assign(d.toTensor().reshape(into.shape()));
                }
        }
        step = restored;
    }

    @Override
    public void step() {
        step++;
        double c1 = 1 - Math.pow(config.beta1(), step), c2 = 1 - Math.pow(config.beta2(), step);
        try (var g = Autograd.noGrad()) {
            for (int i = 0; i < m.length; i++) {
                Tensor p = params.get(i), grad = p.grad();
                if (grad == null) continue;
                Tensor g32 = grad.to(DType.F32);
                m[i].assign(m[i].mul(config.beta1()).add(g32.mul(1 - config.beta1())));
                v[i].assign(v[i].mul(config.beta2()).add(g32.square().mul(1 - config.beta2())));
                Tensor update = m[i].div(c1).div(v[i].div(c2).sqrt().add(config.eps()));
                Tensor p32 = p.to(DType.F32);
                p.assign(p32.sub(update.add(p32.mul(config.weightDecay())).mul(config.lr())));
            }
        }
    }

    @Override
    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }
}

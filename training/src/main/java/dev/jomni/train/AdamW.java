package dev.jomni.train;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.List;

/**
 * AdamW (Loshchilov & Hutter, arXiv:1711.05101) with decoupled weight decay, state in f32:
 * m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr·(m̂/(√v̂ + ε) + λp).
 */
public final class AdamW {
    public record Config(double lr, double beta1, double beta2, double eps, double weightDecay) {
        public Config {
            if (!(lr > 0)) throw new IllegalArgumentException("AdamW: lr=" + lr + " must be positive");
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

    /** Sets the learning rate for the next steps (schedules call this). */
    public void learningRate(double lr) { config = new Config(lr, config.beta1(), config.beta2(), config.eps(), config.weightDecay()); }

    public long steps() { return step; }

    /** One update from the parameters' current gradients; parameters without a gradient are left alone. */
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

    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }
}

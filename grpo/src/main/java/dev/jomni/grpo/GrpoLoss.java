package dev.jomni.grpo;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import java.util.Locale;

/**
 * GRPO's objective on per-token log-probabilities, as TRL's {@code GRPOTrainer._compute_loss} computes it
 * (trl/trainer/grpo_trainer.py, HEAD f2cd577; the variants as grpo_config.py documents them).
 *
 * <p>With π the policy's log-probs [B, T] (carrying autograd), π_old the sampling policy's (null: π detached, so
 * the ratio is 1 but the gradient flows, as TRL does when num_iterations = 1), A the advantages [B] and m the
 * completion mask [B, T]:
 * <ul>
 * <li>log w = π − π_old per token, or (importance_sampling_level = sequence, GSPO) Σ_t m·(π − π_old) / max(Σ_t m, 1)
 *     per sequence [B, 1]; r = exp(log w);
 * <li>KL (β ≠ 0): k3 = exp(ref − π) − (ref − π) − 1 per token;
 * <li>per-token loss ℓ: grpo/bnpo/dr_grpo/dapo −min(r·A, clip(r, 1 − ε, 1 + ε_high)·A) (r first capped at δ when
 *     given); cispo −sg(min(r, ε_high))·A·π; sapo −σ(τ(r − 1))·4/τ · A with τ = τ_pos when A &gt; 0 else τ_neg;
 *     then times the sampling-correction weight when given, then + β·k3;
 * <li>aggregation: grpo, sapo mean_i(Σ_t mℓ / max(Σ_t m, 1)) / G; bnpo Σ mℓ / max(Σ m, 1) / G; dr_grpo
 *     Σ mℓ / (B · max_completion_length) / G; dapo, cispo Σ mℓ / max(N, 1), with G the gradient-accumulation steps
 *     and N the completion tokens of the whole optimizer step (TRL's num_items_in_batch).
 * </ul>
 */
public final class GrpoLoss {
    /** TRL's loss_type values (vespo and luspo are not ported). */
    public enum LossType {
        GRPO, BNPO, DR_GRPO, DAPO, CISPO, SAPO;

        public static LossType parse(String s) {
            try {
                return valueOf(s.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--loss_type " + s + ": known are " + Arrays.stream(values()).map(v -> v.name().toLowerCase(Locale.ROOT)).toList());
            }
        }

        public String flag() { return name().toLowerCase(Locale.ROOT); }
    }

    /**
     * The loss's settings under TRL's names: epsilon (ε, low), epsilon_high (TRL: defaults to epsilon), beta,
     * importance_sampling_level sequence, sapo_temperature_pos/neg, max_completion_length (dr_grpo's constant), delta
     * (NaN: none).
     */
    public record Config(LossType lossType, double epsilon, double epsilonHigh, double beta, boolean sequenceLevel,
                         double sapoTemperaturePos, double sapoTemperatureNeg, int maxCompletionLength, double delta) {
        public Config {
            if (!(epsilon >= 0) || !(epsilonHigh >= 0)) throw new IllegalArgumentException("epsilon " + epsilon + " / epsilon_high " + epsilonHigh + " must be >= 0");
            if (!(beta >= 0)) throw new IllegalArgumentException("beta " + beta + " must be >= 0");
            if (maxCompletionLength < 1) throw new IllegalArgumentException("max_completion_length " + maxCompletionLength + " < 1");
        }

        /** TRL's defaults for everything but the loss type. */
        public static Config of(LossType type) { return new Config(type, 0.2, 0.2, 0.0, false, 1.0, 1.05, 512, Double.NaN); }

        public Config withBeta(double b) { return new Config(lossType, epsilon, epsilonHigh, b, sequenceLevel, sapoTemperaturePos, sapoTemperatureNeg, maxCompletionLength, delta); }

        public Config withEpsilons(double lo, double hi) { return new Config(lossType, lo, hi, beta, sequenceLevel, sapoTemperaturePos, sapoTemperatureNeg, maxCompletionLength, delta); }

        public Config withSequenceLevel(boolean on) { return new Config(lossType, epsilon, epsilonHigh, beta, on, sapoTemperaturePos, sapoTemperatureNeg, maxCompletionLength, delta); }

        public Config withMaxCompletionLength(int n) { return new Config(lossType, epsilon, epsilonHigh, beta, sequenceLevel, sapoTemperaturePos, sapoTemperatureNeg, n, delta); }

        public Config withDelta(double d) { return new Config(lossType, epsilon, epsilonHigh, beta, sequenceLevel, sapoTemperaturePos, sapoTemperatureNeg, maxCompletionLength, d); }
    }

    /**
     * One micro-batch.
     *
     * @param logps      [B, T] the policy's log-probs of the completion tokens (autograd)
     * @param oldLogps   [B, T] the sampling policy's, or null (π detached)
     * @param refLogps   [B, T] the reference's (needed when β ≠ 0, else ignored)
     * @param advantages [B]
     * @param mask       [B, T] 1 on completion tokens that count, 0 on padding (and masked truncated completions)
     * @param isWeight   [B, 1] or [B, T] sampling-correction weight (TRL's importance_sampling_ratio), or null
     */
    public record Inputs(Tensor logps, Tensor oldLogps, Tensor refLogps, Tensor advantages, Tensor mask, Tensor isWeight) {}

    /**
     * The loss and what TRL logs of it, as sums and counts so micro-batches combine: kl and entropy-free ratios over
     * the masked tokens (over sequences at the sequence level, as TRL's global_masked_mean).
     */
    public record Output(Tensor loss, double klSum, double tokens, double clipLowSum, double clipHighSum, double clipRegionSum,
                         double cispoClipSum, double clipCount) {}

    private GrpoLoss() {}

    /**
     * @param gradientAccumulationSteps G: grpo, bnpo, dr_grpo and sapo divide by it
     * @param numItemsInBatch           N: dapo and cispo divide by it (the step's completion tokens)
     */
    public static Output loss(Config c, Inputs in, int gradientAccumulationSteps, double numItemsInBatch) {
        Tensor logp = in.logps();
        if (logp.rank() != 2) throw new IllegalArgumentException("grpo loss: logps must be [B, T], got " + Arrays.toString(logp.shape()));
        int b = logp.size(0), t = logp.size(1);
        DType dt = logp.dtype();
        check("mask", in.mask(), b, t);
        if (in.oldLogps() != null) check("old_logps", in.oldLogps(), b, t);
        if (c.beta() != 0) {
            if (in.refLogps() == null) throw new IllegalArgumentException("grpo loss: beta " + c.beta() + " needs the reference log-probs");
            check("ref_logps", in.refLogps(), b, t);
        }
        if (in.advantages().rank() != 1 || in.advantages().size(0) != b)
            throw new IllegalArgumentException("grpo loss: advantages must be [" + b + "], got " + Arrays.toString(in.advantages().shape()));
        Tensor mask = in.mask().to(dt).detach();
        Tensor adv = in.advantages().to(dt).detach().reshape(b, 1);                        // [B, 1]
        Tensor old = in.oldLogps() == null ? logp.detach() : in.oldLogps().to(dt).detach();
        Tensor logRatio = logp.sub(old);                                                    // [B, T]
        Tensor logW = c.sequenceLevel()
                ? logRatio.mul(mask).sum(1, true).div(mask.sum(1, true).clamp(1, Double.MAX_VALUE))   // [B, 1]
                : logRatio;
        Tensor coef1 = logW.exp();
        Tensor kl = null;
        if (c.beta() != 0) {
            Tensor d = in.refLogps().to(dt).detach().sub(logp);                              // ref − π
            kl = d.exp().sub(d).sub(1);
        }
        Tensor perToken;
        switch (c.lossType()) {
            case CISPO -> perToken = coef1.clamp(-Double.MAX_VALUE, c.epsilonHigh()).detach().mul(adv).mul(logp).neg();
            case SAPO -> {
                Tensor tau = Tensor.where(adv.gt(0), Tensor.full(adv.device(), dt, c.sapoTemperaturePos()),
                        Tensor.full(adv.device(), dt, c.sapoTemperatureNeg()));
                perToken = tau.mul(coef1.sub(1)).sigmoid().mul(4).div(tau).mul(adv).neg();
            }
            default -> {
                Tensor coef2 = coef1.clamp(1 - c.epsilon(), 1 + c.epsilonHigh());
                Tensor r1 = Double.isNaN(c.delta()) ? coef1 : coef1.clamp(-Double.MAX_VALUE, c.delta());
                perToken = r1.mul(adv).minimum(coef2.mul(adv)).neg();
            }
        }
        if (perToken.size(1) != t) perToken = perToken.expand(b, t);                      // sequence level: [B, 1] → [B, T]
        if (in.isWeight() != null) perToken = perToken.mul(in.isWeight().to(dt).detach());
        if (kl != null) perToken = perToken.add(kl.mul(c.beta()));
        Tensor masked = perToken.mul(mask);
        Tensor loss = switch (c.lossType()) {
            case GRPO, SAPO -> masked.sum(1, false).div(mask.sum(1, false).clamp(1, Double.MAX_VALUE)).mean().div(gradientAccumulationSteps);
            case BNPO -> masked.sum().div(Math.max(1, maskSum(mask))).div(gradientAccumulationSteps);
            case DR_GRPO -> masked.sum().div((double) b * c.maxCompletionLength()).div(gradientAccumulationSteps);
            case DAPO, CISPO -> masked.sum().div(Math.max(1, numItemsInBatch));
        };

        // What TRL logs (host values: the trainer runs this once per micro-batch).
        double[] m = mask.toDoubleArray(), r = coef1.detach().toDoubleArray(), a = adv.toDoubleArray();
        double tokens = 0, klSum = 0;
        double[] k = kl == null ? null : kl.detach().toDoubleArray();
        for (int i = 0; i < m.length; i++) {
            tokens += m[i];
            if (k != null) klSum += m[i] * k[i];
        }
        double low = 0, high = 0, region = 0, cispo = 0, count = 0;
        boolean seq = r.length == b;
        for (int i = 0; i < b; i++)
            for (int j = 0; j < (seq ? 1 : t); j++) {
                double w = seq ? 1 : m[i * t + j], ri = r[seq ? i : i * t + j];
                boolean lo = ri < 1 - c.epsilon() && a[i] < 0, hi = ri > 1 + c.epsilonHigh() && a[i] > 0;
                if (lo) low += w;
                if (hi) high += w;
                if (lo || hi) region += w;
                if (ri > c.epsilonHigh() && a[i] > 0) cispo += w;
                count += w;
            }
        return new Output(loss, klSum, tokens, low, high, region, cispo, count);
    }

    private static double maskSum(Tensor mask) { return mask.sum().item(); }

    private static void check(String name, Tensor x, int b, int t) {
        if (x.rank() != 2 || x.size(0) != b || x.size(1) != t)
            throw new IllegalArgumentException("grpo loss: " + name + " must be [" + b + ", " + t + "] like logps, got " + Arrays.toString(x.shape()));
    }
}

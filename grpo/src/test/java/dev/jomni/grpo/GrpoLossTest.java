package dev.jomni.grpo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jomni.grpo.GrpoLoss.Config;
import dev.jomni.grpo.GrpoLoss.LossType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * GrpoLoss against values worked out from TRL's _compute_loss (grpo_trainer.py, HEAD f2cd577) on a fixed batch of
 * two completions (the second one token shorter), and its gradient by f64 central differences on a toy policy.
 */
class GrpoLossTest {
    static final int B = 2, T = 3;
    static final double[] LOGP = {-1.0, -0.5, -2.0, -0.3, -1.2, -0.7};
    static final double[] OLD = {-1.1, -0.2, -2.0, -0.3, -1.0, -0.1};
    static final double[] REF = {-0.9, -0.6, -1.5, -0.5, -1.2, -0.2};
    static final double[] MASK = {1, 1, 1, 1, 1, 0};
    static final double[] ADV = {1.5, -0.8};

    static GrpoLoss.Inputs inputs(Tensor logp, boolean old, boolean ref) {
        return new GrpoLoss.Inputs(logp, old ? Tensor.of(OLD, B, T) : null, ref ? Tensor.of(REF, B, T) : null, Tensor.of(ADV, B),
                Tensor.of(MASK, B, T), null);
    }

    /** TRL's formulas written out per token, for the fixed batch (old log-probs given). */
    static double expected(Config c, int accumulation, double numItems) {
        double[] per = new double[B * T];
        double[] seqLogW = new double[B];
        for (int i = 0; i < B; i++) {
            double s = 0, n = 0;
            for (int j = 0; j < T; j++) {
                s += MASK[i * T + j] * (LOGP[i * T + j] - OLD[i * T + j]);
                n += MASK[i * T + j];
            }
            seqLogW[i] = s / Math.max(n, 1);
        }
        for (int i = 0; i < B; i++)
            for (int j = 0; j < T; j++) {
                int k = i * T + j;
                double r = Math.exp(c.sequenceLevel() ? seqLogW[i] : LOGP[k] - OLD[k]), a = ADV[i], l;
                switch (c.lossType()) {
                    case CISPO -> l = -Math.min(r, c.epsilonHigh()) * a * LOGP[k];
                    case SAPO -> {
                        double tau = a > 0 ? c.sapoTemperaturePos() : c.sapoTemperatureNeg();
                        l = -(1 / (1 + Math.exp(-tau * (r - 1)))) * 4 / tau * a;
                    }
                    default -> {
                        double clipped = Math.max(1 - c.epsilon(), Math.min(1 + c.epsilonHigh(), r));
                        double r1 = Double.isNaN(c.delta()) ? r : Math.min(r, c.delta());
                        l = -Math.min(r1 * a, clipped * a);
                    }
                }
                if (c.beta() != 0) {
                    double d = REF[k] - LOGP[k];
                    l += c.beta() * (Math.exp(d) - d - 1);
                }
                per[k] = l * MASK[k];
            }
        double total = 0, tokens = 0, seqMean = 0;
        for (int i = 0; i < B; i++) {
            double s = 0, n = 0;
            for (int j = 0; j < T; j++) {
                s += per[i * T + j];
                n += MASK[i * T + j];
            }
            total += s;
            tokens += n;
            seqMean += s / Math.max(n, 1) / B;
        }
        return switch (c.lossType()) {
            case GRPO, SAPO -> seqMean / accumulation;
            case BNPO -> total / tokens / accumulation;
            case DR_GRPO -> total / (B * c.maxCompletionLength()) / accumulation;
            case DAPO, CISPO -> total / numItems;
        };
    }

    @Test
    void everyLossTypeMatchesTrlsFormulas() {
        for (LossType type : LossType.values())
            for (boolean seq : new boolean[] {false, true})
                for (double beta : new double[] {0, 0.1}) {
                    Config c = Config.of(type).withBeta(beta).withEpsilons(0.2, type == LossType.CISPO ? 1.1 : 0.28).withSequenceLevel(seq)
                            .withMaxCompletionLength(4);
                    double got = GrpoLoss.loss(c, inputs(Tensor.of(LOGP, B, T), true, beta != 0), 2, 7).loss().item();
                    assertEquals(expected(c, 2, 7), got, 1e-12, type + " sequence " + seq + " beta " + beta);
                }
    }

    @Test
    void handWorkedValues() {
        // On-policy (old = π detached): every ratio is 1, so grpo's loss is −mean_i A_i = −(1.5 − 0.8)/2.
        Config grpo = Config.of(LossType.GRPO);
        assertEquals(-0.35, GrpoLoss.loss(grpo, inputs(Tensor.of(LOGP, B, T), false, false), 1, 5).loss().item(), 1e-15);
        // dapo: Σ_tokens −A / N = −(3·1.5 − 2·0.8)/5; dr_grpo the same sum over B·max_completion_length = 2·4.
        assertEquals(-(4.5 - 1.6) / 5, GrpoLoss.loss(Config.of(LossType.DAPO), inputs(Tensor.of(LOGP, B, T), false, false), 1, 5).loss().item(), 1e-15);
        assertEquals(-(4.5 - 1.6) / 8, GrpoLoss.loss(Config.of(LossType.DR_GRPO).withMaxCompletionLength(4),
                inputs(Tensor.of(LOGP, B, T), false, false), 1, 5).loss().item(), 1e-15);
        // The k3 KL of token (0, 0): ref − π = 0.1, exp(0.1) − 0.1 − 1; its mean over the 5 tokens is logged.
        var out = GrpoLoss.loss(Config.of(LossType.DAPO).withBeta(0.1), inputs(Tensor.of(LOGP, B, T), false, true), 1, 5);
        double kl = 0;
        for (int k = 0; k < 6; k++) kl += MASK[k] * (Math.exp(REF[k] - LOGP[k]) - (REF[k] - LOGP[k]) - 1);
        assertEquals(kl, out.klSum(), 1e-12);
        assertEquals(Math.exp(0.1) - 0.1 - 1, 0.005170918075647624, 1e-15);
        assertEquals(5, out.tokens());
        // Clip ratios with old log-probs, ε = 0.2: token (0,1) has r = e^−0.3 = 0.74 (A > 0: not counted low), token (1,1)
        // r = e^−0.2 = 0.82 (A < 0, inside), token (1,2) r = e^−0.6 but masked. Token (0,0) r = e^0.1 = 1.105 inside.
        var clipped = GrpoLoss.loss(Config.of(LossType.DAPO).withEpsilons(0.1, 0.05), inputs(Tensor.of(LOGP, B, T), true, false), 1, 5);
        // ε = 0.1, ε_high = 0.05: (0,0) r = 1.105 > 1.05 with A > 0 is high-clipped; (1,1) r = 0.819 < 0.9 with A < 0 is low-clipped.
        assertEquals(1, clipped.clipHighSum());
        assertEquals(1, clipped.clipLowSum());
        assertEquals(2, clipped.clipRegionSum());
        assertEquals(5, clipped.clipCount());
    }

    @Test
    void refusesWhatCannotBeRight() {
        var e = assertThrows(IllegalArgumentException.class, () -> GrpoLoss.loss(Config.of(LossType.DAPO).withBeta(0.1),
                inputs(Tensor.of(LOGP, B, T), false, false), 1, 5));
        assertEquals("grpo loss: beta 0.1 needs the reference log-probs", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LossType.parse("ppo"));
    }

    /** A toy policy: logits θ [B, T, V], π = log_softmax(θ) at fixed completion tokens. */
    static Tensor policyLogps(Tensor theta, long[] ids) {
        return theta.logSoftmax(-1).gather(-1, Tensor.of(ids, B, T, 1)).reshape(B, T);
    }

    @Test
    void gradientMatchesFiniteDifferences() {
        int v = 5;
        var gen = new Generator(17);
        double[] th = new double[B * T * v], dir = new double[th.length];
        for (int i = 0; i < th.length; i++) {
            th[i] = gen.nextGaussian();
            dir[i] = gen.nextGaussian();
        }
        long[] ids = {1, 4, 0, 2, 2, 3};
        for (LossType type : LossType.values())
            for (boolean seq : new boolean[] {false, true}) {
                Config c = Config.of(type).withBeta(0.1).withEpsilons(0.2, type == LossType.CISPO ? 1.1 : 0.28).withSequenceLevel(seq)
                        .withMaxCompletionLength(4);
                Tensor theta = Tensor.of(th, B, T, v).requiresGrad(true);
                Tensor loss = GrpoLoss.loss(c, inputs(policyLogps(theta, ids), true, true), 2, 7).loss();
                loss.backward();
                double[] g = theta.grad().toDoubleArray();
                double analytic = 0;
                for (int i = 0; i < g.length; i++) analytic += g[i] * dir[i];
                double h = 1e-6;
                double[] plus = th.clone(), minus = th.clone();
                for (int i = 0; i < th.length; i++) {
                    plus[i] += h * dir[i];
                    minus[i] -= h * dir[i];
                }
                double lp = GrpoLoss.loss(c, inputs(policyLogps(Tensor.of(plus, B, T, v), ids), true, true), 2, 7).loss().item();
                double lm = GrpoLoss.loss(c, inputs(policyLogps(Tensor.of(minus, B, T, v), ids), true, true), 2, 7).loss().item();
                // cispo's weight sg(min(r, ε_high)) is outside the gradient by definition: differences see it move
                if (type == LossType.CISPO) continue;
                assertEquals((lp - lm) / (2 * h), analytic, 1e-7 * Math.max(1, Math.abs(analytic)), type + " sequence " + seq);
            }
    }

    @Test
    void cispoGradientTreatsTheWeightAsConstant() {
        // d/dπ of −sg(min(r, ε_high))·A·π is −min(r, ε_high)·A per token (/N for the dapo-like normaliser).
        Tensor logp = Tensor.of(LOGP, B, T).requiresGrad(true);
        Config c = Config.of(LossType.CISPO).withEpsilons(0.2, 1.1);
        GrpoLoss.loss(c, inputs(logp, true, false), 1, 5).loss().backward();
        double[] g = logp.grad().toDoubleArray();
        for (int k = 0; k < 6; k++)
            assertEquals(-Math.min(Math.exp(LOGP[k] - OLD[k]), 1.1) * ADV[k / T] * MASK[k] / 5, g[k], 1e-14, "token " + k);
    }
}

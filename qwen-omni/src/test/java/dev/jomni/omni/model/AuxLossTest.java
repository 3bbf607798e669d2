package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jomni.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class AuxLossTest {
    @Test
    void loadBalancingLossMatchesTheSwitchFormulaByHand() {
        // 3 tokens (the last one masked out), 3 experts, top-1, one layer.
        double[] logits = {2, 0, 0, 0, 1, 0, 0, 0, 5};
        Tensor r = Tensor.of(logits, 3, 3);
        Tensor mask = Tensor.of(new long[] {1, 1, 0}, 1, 3);
        double[][] p = new double[3][3];
        for (int t = 0; t < 3; t++) {
            double z = 0;
            for (int e = 0; e < 3; e++) z += Math.exp(logits[t * 3 + e]);
            for (int e = 0; e < 3; e++) p[t][e] = Math.exp(logits[t * 3 + e]) / z;
        }
        // valid tokens 0 and 1 choose experts 0 and 1; N = 2
        double[] cnt = {1, 1, 0}, pe = {p[0][0] + p[1][0], p[0][1] + p[1][1], p[0][2] + p[1][2]};
        double want = 0;
        for (int e = 0; e < 3; e++) want += (cnt[e] / 2) * (pe[e] / 2);
        want *= 3;
        assertEquals(want, Thinker.auxLoss(List.of(r), mask, 3, 1).item(), 1e-12);
    }
}

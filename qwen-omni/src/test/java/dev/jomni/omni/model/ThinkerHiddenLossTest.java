package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.npy;
import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.Parameter;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The training loss through the fused linear cross-entropy equals the logits path on the tiny fixture model. */
class ThinkerHiddenLossTest {
    private record Run(double loss, Map<String, Parameter> params) {}

    private static Run run(boolean fused) {
        Thinker thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        for (Parameter p : thinker.parameters().values()) p.value().requiresGrad(true);
        Tensor ids = npy("input_ids.npy"), mask = npy("attention_mask.npy"), labels = npy("labels.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        Thinker.Output out = fused ? thinker.forwardHidden(ids, mask, audio, null) : thinker.forward(ids, mask, audio, null);
        if (fused) assertNull(out.logits(), "forwardHidden builds no logits");
        Tensor loss = thinker.loss(out, labels, mask);
        loss.backward();
        return new Run(loss.item(), thinker.parameters());
    }

    @Test
    void fusedLossAndGradientsEqualTheLogitsPath() {
        Run plain = run(false), fused = run(true);
        assertEquals(7.590020656585693, fused.loss(), 7.590020656585693 * 1e-5, "transformers' loss on the fixture");
        assertEquals(plain.loss(), fused.loss(), plain.loss() * 1e-6, "f32 rounding of one mean over the same logits");
        int compared = 0;
        for (var e : plain.params().entrySet()) {
            Tensor want = e.getValue().value().grad(), got = fused.params().get(e.getKey()).value().grad();
            if (want == null) {
                assertNull(got, e.getKey());
                continue;
            }
            // Relative to the largest element: both sides sum the same products in another order (f32).
            float[] w = want.toFloatArray(), g = got.toFloatArray();
            double err = 0, scale = 0;
            for (int i = 0; i < w.length; i++) {
                err = Math.max(err, Math.abs(w[i] - g[i]));
                scale = Math.max(scale, Math.abs(w[i]));
            }
            assertTrue(err <= 1e-5 * scale + 1e-10, e.getKey() + ": gradient differs by " + err + " (largest element " + scale + ")");
            compared++;
        }
        assertTrue(compared > 30, "compared " + compared + " gradients");
    }
}

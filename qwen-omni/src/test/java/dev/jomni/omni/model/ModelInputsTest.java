package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelInputsTest {
    @Test
    void logitsFromTheWavsEqualLogitsFromTheFeatures(@TempDir Path wavDir) throws Exception {
        Path fixture = ThinkerParityTest.tiny("");
        for (String f : new String[] {"input_ids.npy", "attention_mask.npy", "audio0.wav", "audio1.wav"})
            Files.copy(fixture.resolve(f), wavDir.resolve(f));
        Thinker thinker = ThinkerParityTest.thinker != null ? ThinkerParityTest.thinker
                : Thinker.load(ThinkerParityTest.tiny("model"), dev.jomni.tensor.DType.F32, dev.jomni.tensor.Device.cpu());
        Path model = ThinkerParityTest.tiny("model");
        try (var g = Autograd.noGrad()) {
            var fromFeatures = ModelInputs.read(fixture, model, thinker.config);
            var fromWavs = ModelInputs.read(wavDir, model, thinker.config);
            assertArrayEquals(fromFeatures.audio().frames(), fromWavs.audio().frames());
            float[] a = thinker.forward(fromFeatures.inputIds(), fromFeatures.attentionMask(), fromFeatures.audio(), null).logits().toFloatArray();
            float[] b = thinker.forward(fromWavs.inputIds(), fromWavs.attentionMask(), fromWavs.audio(), null).logits().toFloatArray();
            double e = ThinkerParityTest.relError(b, a);
            assertTrue(e < 1e-4, "logits from WAVs vs from features: relative error " + e);
        }
    }
}

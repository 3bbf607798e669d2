package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.npy;
import static dev.jomni.omni.model.ThinkerParityTest.relError;
import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jomni.cuda.Cuda;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The tiny random Qwen3-Omni on CUDA against transformers' f32 fixtures (the same ones
 * ThinkerParityTest checks on the CPU): logits and loss, in bf16 and f32; greedy tokens equal to the
 * CPU backend's in the same dtype.
 */
@Tag("gpu")
class ThinkerCudaParityTest {
    static final double LOSS = 7.590020656585693;
    /** Greedy tokens of item 0's prompt in f32: transformers' and the CPU backend's (ThinkerParityTest). */
    static final long[] GREEDY_F32 = {244, 532, 0, 532, 345, 0, 532, 936};

    @ParameterizedTest
    @CsvSource({"BF16, 2e-2, 5e-4", "F32, 1e-4, 1e-5"})
    void logitsLossAndGreedyTokensMatchTheReference(DType dtype, double logitsBound, double lossBound) {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        Device gpu = Device.cuda(0);
        Thinker thinker = Thinker.load(tiny("model"), dtype, gpu);
        assertEquals(gpu, thinker.device());
        Tensor inputIds = npy("input_ids.npy"), attentionMask = npy("attention_mask.npy"), labels = npy("labels.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        try (var g = Autograd.noGrad()) {
            Thinker.Output out = thinker.forward(inputIds, attentionMask, audio, null);
            assertEquals(gpu, out.logits().device());
            double e = relError(out.logits().toFloatArray(), npy("logits.npy").toFloatArray());
            assertTrue(e < logitsBound, dtype + " logits relative error " + e + " (bound " + logitsBound + ")");
            double loss = Thinker.loss(out.logits(), labels.to(gpu)).item();
            assertEquals(LOSS, loss, LOSS * lossBound, dtype + " loss");
        }
        long[] ids = inputIds.toLongArray();
        long[] prompt = new long[32];
        System.arraycopy(ids, 0, prompt, 0, prompt.length);                  // item 0's prompt, unpadded
        Thinker.Audio first = new Thinker.Audio(audio.features().narrow(0, 0, 1), new int[] {audio.frames()[0]});
        // the CPU backend's greedy tokens with weights of the same dtype (bf16 rounding changes near-ties)
        long[] cpu = Generation.greedy(Thinker.load(tiny("model"), dtype, Device.cpu()), prompt, first, GREEDY_F32.length);
        if (dtype == DType.F32) assertArrayEquals(GREEDY_F32, cpu, "CPU f32 greedy tokens");
        assertArrayEquals(cpu, Generation.greedy(thinker, prompt, first, cpu.length), dtype + " greedy tokens on CUDA vs the CPU");
    }
}

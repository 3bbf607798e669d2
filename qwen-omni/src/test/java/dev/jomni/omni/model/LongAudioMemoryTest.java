package dev.jomni.omni.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Memory grows linearly with the audio. A generation prefill (audio encoder, decoder, KV cache,
 * next-token logits) over twice the audio peaks at no more than about twice the tensor memory; for
 * the tiny model that peak is the conv stem's group of 8 chunks (about 33 MB, the same for any
 * length), so the decoder is also measured alone, on a long prompt, where a quadratic term (a [T, S]
 * mask or score matrix) would dominate its peak.
 */
class LongAudioMemoryTest {
    static final Thinker THINKER = Thinker.load(ThinkerParityTest.tiny("model"), DType.F32, Device.cpu());

    @Test
    void aPrefillOverTwiceTheAudioPeaksAtAboutTwiceTheMemory() {
        long once = prefillPeak(1600, 0), twice = prefillPeak(3200, 0);                        // 16 s and 32 s
        System.out.printf("prefill peak tensor memory: %d bytes for 1600 frames, %d for 3200%n", once, twice);
        assertTrue(twice <= 2.2 * once, "2x the audio peaks at " + twice + " bytes, " + (double) twice / once + " times the " + once + " of 1x");
    }

    @Test
    void theDecoderOverTwiceThePromptPeaksAtAboutTwiceTheMemory() {
        long once = prefillPeak(0, 1024), twice = prefillPeak(0, 2048);
        System.out.printf("decoder prefill peak tensor memory: %d bytes for 1024 tokens, %d for 2048%n", once, twice);
        assertTrue(twice <= 2.2 * once, "2x the tokens peak at " + twice + " bytes, " + (double) twice / once + " times the " + once + " of 1x");
    }

    /** Peak bytes of tensors allocated by one prefill over a clip of {@code frames} mel frames (none: 0) and {@code text} tokens. */
    static long prefillPeak(int frames, int text) {
        Thinker thinker = THINKER;
        int audioTokens = frames == 0 ? 0 : AudioEncoder.outputLength(frames, thinker.config.audio().nWindow());
        long[] prompt = new long[8 + audioTokens + 8 + text];
        for (int i = 0; i < prompt.length; i++) prompt[i] = 100 + 7 * (i % 64);
        Arrays.fill(prompt, 8, 8 + audioTokens, thinker.config.audioTokenId());
        long[] ones = new long[prompt.length];
        Arrays.fill(ones, 1);
        try (var noGrad = Autograd.noGrad(); var scope = Scope.open(); var cache = new KvCache(thinker.config.text().numHiddenLayers(), prompt.length + 1)) {
            Tensor ids = Tensor.of(prompt, 1, prompt.length), mask = Tensor.of(ones, 1, prompt.length);
            var audio = frames == 0 ? null : new Thinker.Audio(Tensor.randn(new Generator(frames), DType.F32, 1, 128, frames), new int[] {frames});
            long before = Memory.resetPeak();
            thinker.nextTokenLogits(ids, mask, audio, cache).toFloatArray();
            return Memory.peakBytes() - before;
        }
    }
}

package dev.jomni.omni.model;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.Arrays;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Autoregressive decoding of one sequence with a KV cache: the prefill runs the prompt (and the audio
 * tower) once, then one token per step at the next position. Greedy when temperature is 0, else
 * sampling with temperature, top-k and top-p from a seeded generator.
 */
public final class Generation {
    private Generation() {}

    /** How to pick tokens and when to stop. topK 0 and topP 1 disable those filters. */
    public record Settings(int maxNewTokens, double temperature, int topK, double topP, long seed, Set<Long> stopTokens) {
        public Settings {
            if (maxNewTokens < 0) throw new IllegalArgumentException("max new tokens " + maxNewTokens + " is negative");
            if (temperature < 0) throw new IllegalArgumentException("temperature " + temperature + " is negative");
            if (topK < 0) throw new IllegalArgumentException("top-k " + topK + " is negative");
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p " + topP + " must be in (0, 1]");
            stopTokens = Set.copyOf(stopTokens);
        }

        public static Settings greedy(int maxNewTokens) { return new Settings(maxNewTokens, 0, 0, 1, 0, Set.of()); }
    }

    /** Greedy continuation of {@code prompt}, no stop token. */
    public static long[] greedy(Thinker thinker, long[] prompt, Thinker.Audio audio, int maxNewTokens) {
        return generate(thinker, prompt, audio, Settings.greedy(maxNewTokens), t -> {});
    }

    /** Generates up to maxNewTokens after prompt; each new token is passed to {@code onToken} as it comes (stop token included). */
    public static long[] generate(Thinker thinker, long[] prompt, Thinker.Audio audio, Settings s, LongConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("generate: empty prompt");
        Generator gen = new Generator(s.seed());
        long[] out = new long[s.maxNewTokens()];
        int produced = 0;
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(thinker.config.text().numHiddenLayers())) {
            long[] input = prompt;
            Thinker.Audio pending = audio;
            int seen = 0;
            while (produced < s.maxNewTokens()) {
                long next;
                try (var scope = Scope.open()) {
                    seen += input.length;
                    long[] ones = new long[seen];
                    Arrays.fill(ones, 1);
                    Tensor logits = thinker.forward(Tensor.of(input, 1, input.length), Tensor.of(ones, 1, seen), pending, cache).logits();
                    double[] last = logits.narrow(1, input.length - 1, 1).reshape(-1).toDoubleArray();
                    next = pick(last, s, gen);
                }
                pending = null;
                out[produced++] = next;
                onToken.accept(next);
                if (s.stopTokens().contains(next)) break;
                input = new long[] {next};
            }
        }
        return Arrays.copyOf(out, produced);
    }

    /** The next token from last-position logits: argmax (first on ties), or a sample after temperature, top-k and top-p. */
    static long pick(double[] logits, Settings s, Generator gen) {
        if (s.temperature() == 0) {
            int best = 0;
            for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> Double.compare(logits[b], logits[a]));
        int keep = s.topK() > 0 ? Math.min(s.topK(), order.length) : order.length;
        double max = logits[order[0]];
        double[] p = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) total += p[i] = Math.exp((logits[order[i]] - max) / s.temperature());
        // top-p: the smallest prefix whose probability reaches topP (at least one token).
        double cumulative = 0;
        int nucleus = 0;
        while (nucleus < keep) {
            cumulative += p[nucleus++] / total;
            if (cumulative >= s.topP()) break;
        }
        double mass = 0;
        for (int i = 0; i < nucleus; i++) mass += p[i];
        double u = gen.nextDouble() * mass;
        for (int i = 0; i < nucleus; i++) {
            u -= p[i];
            if (u < 0) return order[i];
        }
        return order[nucleus - 1];
    }
}

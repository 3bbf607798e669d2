package dev.jomni.omni.model;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Autoregressive decoding of one sequence with a KV cache: the prefill runs the prompt (and the audio
 * tower) once, then one token per step at the next position. Greedy when temperature is 0, else
 * sampling with temperature, top-k and top-p from a seeded generator.
 */
public final class Generation {
    private Generation() {}

    /**
     * How to pick tokens and when to stop. topK 0, topP 1, minP 0 and repetitionPenalty 1 disable those. As transformers
     * orders them: the repetition penalty on the raw logits (a logit of a token already in the prompt or the output is
     * divided by the penalty when positive, multiplied when negative), then temperature, top-k, top-p, and min-p (drop
     * tokens whose probability is below minP times the most likely one's).
     */
    public record Settings(int maxNewTokens, double temperature, int topK, double topP, long seed, Set<Long> stopTokens,
                           double minP, double repetitionPenalty) {
        public Settings {
            if (maxNewTokens < 0) throw new IllegalArgumentException("max new tokens " + maxNewTokens + " is negative");
            if (temperature < 0) throw new IllegalArgumentException("temperature " + temperature + " is negative");
            if (topK < 0) throw new IllegalArgumentException("top-k " + topK + " is negative");
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p " + topP + " must be in (0, 1]");
            if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min-p " + minP + " must be in [0, 1]");
            if (!(repetitionPenalty > 0)) throw new IllegalArgumentException("repetition penalty " + repetitionPenalty + " must be positive");
            stopTokens = Set.copyOf(stopTokens);
        }

        public Settings(int maxNewTokens, double temperature, int topK, double topP, long seed, Set<Long> stopTokens) {
            this(maxNewTokens, temperature, topK, topP, seed, stopTokens, 0, 1);
        }

        /** The same settings with another seed (the i-th of n samples draws from seed + i). */
        public Settings withSeed(long seed) {
            return new Settings(maxNewTokens, temperature, topK, topP, seed, stopTokens, minP, repetitionPenalty);
        }

        public static Settings greedy(int maxNewTokens) { return new Settings(maxNewTokens, 0, 0, 1, 0, Set.of()); }
    }

    /** Greedy continuation of {@code prompt}, no stop token. */
    public static long[] greedy(Thinker thinker, long[] prompt, Thinker.Audio audio, int maxNewTokens) {
        return generate(thinker, prompt, audio, Settings.greedy(maxNewTokens), t -> {});
    }

    /** Generates up to maxNewTokens after prompt; each new token is passed to {@code onToken} as it comes (stop token included). */
    public static long[] generate(Thinker thinker, long[] prompt, Thinker.Audio audio, Settings s, LongConsumer onToken) {
        return generateBatch(thinker, List.of(prompt), Collections.singletonList(audio), s, (row, token) -> onToken.accept(token)).get(0);
    }

    /** Receives each new token of each row as it is generated. */
    @FunctionalInterface
    public interface TokenSink { void accept(int row, long token); }

    /**
     * Decodes several prompts together: they are left-padded to one length (padding masked out, so
     * positions start at 0 in every row), the audio of all rows goes through the encoder in one
     * prefill, and each step appends one token per row until every row has met a stop token or
     * maxNewTokens. Row b samples from its own generator seeded with {@code s.seed()}, so a row's
     * tokens do not depend on what it is batched with.
     *
     * @param audio one entry per row: its clip ([1, mel, T] features and its valid frames), or null
     */
    public static List<long[]> generateBatch(Thinker thinker, List<long[]> prompts, List<Thinker.Audio> audio, Settings s, TokenSink onToken) {
        int rows = prompts.size();
        if (rows == 0 || audio.size() != rows)
            throw new IllegalArgumentException("generate: " + rows + " prompts and " + audio.size() + " audio entries");
        int longest = 0;
        for (long[] p : prompts) {
            if (p.length == 0) throw new IllegalArgumentException("generate: empty prompt");
            longest = Math.max(longest, p.length);
        }
        long[] ids = new long[rows * longest], mask = new long[rows * longest];
        for (int r = 0; r < rows; r++) {
            long[] p = prompts.get(r);
            System.arraycopy(p, 0, ids, r * longest + longest - p.length, p.length);        // left padding with id 0
            Arrays.fill(mask, r * longest + longest - p.length, (r + 1) * longest, 1);
        }
        Generator[] gens = new Generator[rows];
        long[][] out = new long[rows][s.maxNewTokens()];
        int[] produced = new int[rows];
        boolean[] done = new boolean[rows];
        try (var noGrad = Autograd.noGrad(); var cache = new KvCache(thinker.config.text().numHiddenLayers(), Math.max(1, longest + s.maxNewTokens()))) {
            for (int r = 0; r < rows; r++) gens[r] = new Generator(s.seed());
            Thinker.Audio pending = batchAudio(audio);
            long[] input = ids;
            int width = longest;
            for (int step = 0; step < s.maxNewTokens(); step++) {
                long[] next = new long[rows];
                try (var scope = Scope.open()) {
                    Tensor last = thinker.nextTokenLogits(Tensor.of(input, rows, width), Tensor.of(mask, rows, mask.length / rows), pending, cache);
                    for (int r = 0; r < rows; r++)
                        if (!done[r]) {
                            double[] l = last.narrow(0, r, 1).reshape(-1).toDoubleArray();
                            if (s.repetitionPenalty() != 1) penalize(l, prompts.get(r), out[r], produced[r], s.repetitionPenalty());
                            next[r] = pick(l, s, gens[r]);
                        }
                }
                pending = null;
                boolean all = true;
                for (int r = 0; r < rows; r++) {
                    if (done[r]) continue;
                    out[r][produced[r]++] = next[r];
                    onToken.accept(r, next[r]);
                    done[r] = s.stopTokens().contains(next[r]);
                    all &= done[r];
                }
                if (all) break;
                input = next;                                          // finished rows decode a masked-in 0 and are ignored
                width = 1;
                long[] grown = new long[mask.length + rows];
                int old = mask.length / rows;
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(mask, r * old, grown, r * (old + 1), old);
                    grown[r * (old + 1) + old] = 1;
                }
                mask = grown;
            }
        }
        List<long[]> result = new ArrayList<>();
        for (int r = 0; r < rows; r++) result.add(Arrays.copyOf(out[r], produced[r]));
        return result;
    }

    /** The rows' clips as one encoder input: features zero-padded to the longest (only valid frames are read). */
    private static Thinker.Audio batchAudio(List<Thinker.Audio> audio) {
        List<Thinker.Audio> clips = new ArrayList<>();
        for (Thinker.Audio a : audio) if (a != null) clips.add(a);
        if (clips.isEmpty()) return null;
        if (clips.size() == 1) return clips.get(0);
        int longest = 0;
        for (Thinker.Audio a : clips) longest = Math.max(longest, a.features().size(-1));
        List<Tensor> features = new ArrayList<>();
        List<Integer> frames = new ArrayList<>();
        for (Thinker.Audio a : clips) {
            features.add(a.features().pad(0, longest - a.features().size(-1)));
            for (int f : a.frames()) frames.add(f);
        }
        return new Thinker.Audio(Tensor.cat(features, 0), frames.stream().mapToInt(Integer::intValue).toArray());
    }

    /**
     * transformers' RepetitionPenaltyLogitsProcessor, in place: each token id seen in {@code prompt} or the first
     * {@code produced} of {@code out} (once, however often it occurs) has its logit divided by penalty if positive,
     * multiplied if negative.
     */
    static void penalize(double[] logits, long[] prompt, long[] out, int produced, double penalty) {
        java.util.BitSet seen = new java.util.BitSet(logits.length);
        for (long t : prompt) seen.set((int) t);
        for (int i = 0; i < produced; i++) seen.set((int) out[i]);
        for (int t = seen.nextSetBit(0); t >= 0; t = seen.nextSetBit(t + 1))
            logits[t] = logits[t] < 0 ? logits[t] * penalty : logits[t] / penalty;
    }

    /** The next token from last-position logits: argmax (first on ties), or a sample after temperature, top-k, top-p and min-p. */
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
        double[] sorted = new double[keep];
        long[] ids = new long[keep];
        for (int i = 0; i < keep; i++) {
            sorted[i] = logits[order[i]];
            ids[i] = order[i];
        }
        return sample(sorted, ids, s, gen);
    }

    /**
     * A sample among candidates already cut to top-k: {@code sorted} their logits in descending order (ties by
     * increasing id), {@code ids} their token ids; temperature, then top-p, then one draw from {@code gen}.
     */
    static long sample(double[] sorted, long[] ids, Settings s, Generator gen) {
        int keep = sorted.length;
        double max = sorted[0];
        double[] p = new double[keep];
        double total = 0;
        for (int i = 0; i < keep; i++) total += p[i] = Math.exp((sorted[i] - max) / s.temperature());
        // top-p: the smallest prefix whose probability reaches topP (at least one token).
        double cumulative = 0;
        int nucleus = 0;
        while (nucleus < keep) {
            cumulative += p[nucleus++] / total;
            if (cumulative >= s.topP()) break;
        }
        // min-p: p[0] is the largest; the ratio is the same before and after renormalisation.
        if (s.minP() > 0) while (nucleus > 1 && p[nucleus - 1] < s.minP() * p[0]) nucleus--;
        double mass = 0;
        for (int i = 0; i < nucleus; i++) mass += p[i];
        double u = gen.nextDouble() * mass;
        for (int i = 0; i < nucleus; i++) {
            u -= p[i];
            if (u < 0) return ids[i];
        }
        return ids[nucleus - 1];
    }
}

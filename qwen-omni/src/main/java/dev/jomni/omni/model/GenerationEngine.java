package dev.jomni.omni.model;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Generation for many requests at once over one thinker: continuous batching on a paged KV cache
 * ({@link KvBlockPool}), with LoRA adapters resident beside the base weights and chosen per request.
 *
 * <p>Each {@link #step} first admits waiting requests while the running batch has room and the pool
 * can promise them every block they may need (prompt + max new tokens, so decoding never runs out
 * and nothing is preempted): each admitted request is prefilled alone (its audio through the encoder,
 * its prompt into its own blocks, shared copy-on-write by its n samples) and yields its first token. Then every running sequence decodes one
 * token; sequences with the same adapter decode as one batch of rows of different lengths: each layer writes the
 * step's keys and values into the rows' slots of the pool in place and attends over the pool's blocks through the
 * rows' block tables (ScaledDotProductAttention.decode, one call per layer; see {@link KvCache}), and the only
 * host synchronisation of the step is reading the picked tokens. A sequence leaves as soon as it meets a stop token or its max new tokens, or is cancelled,
 * and its blocks go back to the pool at once.
 *
 * <p>Tokens are picked as {@link Generation} picks them, from a generator per request seeded with its
 * seed, so a request's tokens do not depend on what it is batched with (bit-exact per row up to the
 * reduction order of the batched matmuls; on the tiny fixture greedy output equals
 * {@link Generation#greedy}). On the device: greedy takes one argmax per batch; top-k sampling takes
 * one topk per batch and draws on the host among the k candidates; sampling without top-k, and any row
 * with a repetition penalty, copies the row's logits to the host.
 *
 * <p>LoRA is applied live, never merged: an adapter's updates are attached to the base Linears only
 * while its rows run ({@link LoraAdapter#attach}/{@link LoraAdapter#detach}), so a trainer's adapter
 * generates with its current weights, and adapters load and unload without touching the base.
 * Batches with different adapters run one after another within a step.
 *
 * <p>Threads: {@link #submit} and {@link Handle#cancel} from any thread; {@link #step} runs all tensor
 * work on the calling thread (one at a time), either in the engine's own loop ({@link #start}) or in
 * the caller's ({@link #runUntilIdle}). Listeners are called on that thread.
 */
public final class GenerationEngine implements AutoCloseable {
    /**
     * @param blockSize  tokens per KV block
     * @param blocks     KV blocks in the pool (one is the reserved zero block)
     * @param maxRunning sequences decoded together at most
     * @param maxQueued  requests waiting at most; beyond, {@link #submit} refuses (back-pressure)
     */
    public record Options(int blockSize, int blocks, int maxRunning, int maxQueued) {
        public Options {
            if (blockSize <= 0 || blocks < 2 || maxRunning <= 0 || maxQueued < 0)
                throw new IllegalArgumentException("engine options: block size " + blockSize + ", blocks " + blocks
                        + ", max running " + maxRunning + ", max queued " + maxQueued);
        }

        public static Options defaults() { return new Options(16, 4096, 16, 256); }
    }

    /** Why a sequence ended: a stop token, max new tokens, a cancel, or an error (the request was refused mid-way). */
    public enum Finish { STOP, LENGTH, CANCELLED, ERROR }

    /**
     * What a request produced: its new tokens (a stop token included, as {@link Generation} returns it) and, when
     * asked, each one's log-probability under the model (softmax of the raw logits: no temperature, no filter).
     */
    public record Result(long[] tokens, double[] logprobs, Finish finish, String error) {}

    /**
     * A prompt, its audio (the clips of its audio placeholders, in order, or null), how to sample, the adapter
     * name (null: the base model), and whether to report log-probabilities of the chosen tokens.
     */
    public record Request(long[] prompt, Thinker.Audio audio, Generation.Settings settings, String adapter, boolean logprobs) {
        public Request {
            Objects.requireNonNull(prompt, "prompt");
            Objects.requireNonNull(settings, "settings");
        }

        public Request(long[] prompt, Thinker.Audio audio, Generation.Settings settings, String adapter) {
            this(prompt, audio, settings, adapter, false);
        }
    }

    /** Receives a request's tokens as they come, then its end; called on the engine's thread. */
    public interface Listener {
        void token(long token);

        /** A token with its log-probability (NaN unless the request asked for them); by default {@link #token(long)}. */
        default void token(long token, double logprob) { token(token); }

        default void finished(Result result) {}
    }

    /** A submitted request: cancel it, or wait for its result. */
    public static final class Handle {
        private final CompletableFuture<Result> result = new CompletableFuture<>();
        private volatile boolean cancelled;

        /** Ends the request at the next step (its blocks are freed then); a finished request is unaffected. */
        public void cancel() { cancelled = true; }

        public CompletableFuture<Result> result() { return result; }
    }

    /** The queue is full: try again later (HTTP 429). */
    public static final class QueueFullException extends RuntimeException {
        QueueFullException(String message) { super(message); }
    }

    private final Thinker thinker;
    private final KvBlockPool pool;
    private final Options options;
    private final int vocab;
    private final Map<String, LoraAdapter> adapters = new LinkedHashMap<>();   // guarded by lock
    private final ArrayDeque<Active> waiting = new ArrayDeque<>();             // guarded by lock
    private final List<Active> running = new ArrayList<>();                   // the stepping thread's
    private final ReentrantLock lock = new ReentrantLock();              // the queue and the adapter map: held briefly
    private final Condition work = lock.newCondition();
    private final ReentrantLock stepLock = new ReentrantLock();          // one step (or adapter change) at a time
    private volatile int runningCount;
    private volatile long generatedTokens;
    private volatile int freeBlocks;
    private Thread loop;
    private volatile boolean closed;

    /** One admitted or waiting request. */
    private static final class Active {
        final Request request;
        final Listener listener;
        final Handle handle;
        KvCache.Sequence seq;
        Generator gen;
        long[] out = new long[16];
        double[] logprobs = new double[16];
        int produced, promise;
        List<Active> group;                                     // the samples of one request, this one first when queued
        long last;

        Active(Request request, Listener listener, Handle handle) {
            this.request = request;
            this.listener = listener;
            this.handle = handle;
        }

        Generation.Settings settings() { return request.settings(); }
    }

    public GenerationEngine(Thinker thinker, Options options) {
        this.thinker = thinker;
        this.options = options;
        this.vocab = thinker.config.text().vocabSize();
        this.pool = KvBlockPool.of(thinker, options.blockSize(), options.blocks());
        this.freeBlocks = pool.freeBlocks();
    }

    // ------------------------------------------------------------------ adapters

    /** Makes {@code adapter} (already applied to this engine's thinker) available under {@code name}; it is detached until its rows run. */
    public void addAdapter(String name, LoraAdapter adapter) {
        stepLock.lock();
        try {
            if (adapters().contains(name)) throw new IllegalArgumentException("adapter " + name + " is already loaded");
            adapter.detach();
            putAdapter(name, adapter);
        } finally {
            stepLock.unlock();
        }
    }

    private void putAdapter(String name, LoraAdapter adapter) {
        lock.lock();
        try {
            adapters.put(name, adapter);
        } finally {
            lock.unlock();
        }
    }

    /** Reads a PEFT adapter folder and makes it available under {@code name}; the base weights are not touched. */
    public void loadAdapter(String name, Path dir) {
        stepLock.lock();
        try {
            if (adapters().contains(name)) throw new IllegalArgumentException("adapter " + name + " is already loaded");
            LoraAdapter a;
            try (var g = Autograd.noGrad()) {
                a = LoraAdapter.apply(dir, thinker);
            }
            a.detach();
            putAdapter(name, a);
        } finally {
            stepLock.unlock();
        }
    }

    /** Unloads an adapter; refused while a request that names it waits or runs. */
    public void removeAdapter(String name) {
        stepLock.lock();
        lock.lock();
        try {
            if (!adapters.containsKey(name)) throw new IllegalArgumentException("no adapter " + name);
            for (Active a : waiting) if (name.equals(a.request.adapter())) throw new IllegalStateException("adapter " + name + " has waiting requests");
            for (Active a : running) if (name.equals(a.request.adapter())) throw new IllegalStateException("adapter " + name + " has running requests");
            adapters.remove(name).detach();
        } finally {
            lock.unlock();
            stepLock.unlock();
        }
    }

    /** Names of the loaded adapters. */
    public Set<String> adapters() {
        lock.lock();
        try {
            return new TreeSet<>(adapters.keySet());
        } finally {
            lock.unlock();
        }
    }

    // ------------------------------------------------------------------ requests

    /**
     * Queues a request. Refuses at once (IllegalArgumentException naming the field) what could never run: an
     * empty prompt, a token outside the vocabulary, an unknown adapter, more tokens than the whole pool holds.
     *
     * @throws QueueFullException when {@code maxQueued} requests already wait
     */
    public Handle submit(Request request, Listener listener) { return submit(request, 1, i -> listener).getFirst(); }

    /**
     * Queues {@code n} samples of one request (OpenAI's {@code n}): sample i draws from seed + i, so sample 0 equals the
     * request alone. The prompt is prefilled once and its KV blocks are shared by the samples (copy-on-write).
     *
     * @param listeners the listener of sample i
     */
    public List<Handle> submit(Request request, int n, java.util.function.IntFunction<Listener> listeners) {
        if (n <= 0) throw new IllegalArgumentException("n: " + n + " must be positive");
        long[] p = request.prompt();
        if (p.length == 0) throw new IllegalArgumentException("prompt: empty");
        for (long id : p)
            if (id < 0 || id >= vocab) throw new IllegalArgumentException("prompt: token id " + id + " is outside the vocabulary [0, " + vocab + ")");
        // The blocks a sample may take: alone, its prompt and new tokens; forked, the prompt once, then per sample its
        // new tokens and one copy of the shared last prompt block.
        int maxNew = request.settings().maxNewTokens();
        int each = n == 1 ? 0 : pool.blocksFor(maxNew) + 1, first = n == 1 ? pool.blocksFor((long) p.length + maxNew) : pool.blocksFor(p.length) + each;
        long need = first + (long) each * (n - 1);
        if (need > pool.capacity())
            throw new IllegalArgumentException("max_tokens: a prompt of " + p.length + " tokens plus " + maxNew + " new tokens"
                    + (n > 1 ? " in " + n + " samples" : "") + " needs " + need + " KV blocks of " + pool.blockSize() + ", the pool has " + pool.capacity());
        List<Active> group = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            var r = i == 0 ? request : new Request(p, request.audio(), request.settings().withSeed(request.settings().seed() + i), request.adapter(), request.logprobs());
            var a = new Active(r, listeners.apply(i), new Handle());
            a.promise = i == 0 ? first : each;
            a.group = group;
            group.add(a);
        }
        Active active = group.getFirst();
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("engine: closed");
            if (request.adapter() != null && !adapters.containsKey(request.adapter()))
                throw new IllegalArgumentException("model: no adapter named " + request.adapter() + " (loaded: " + adapters.keySet() + ")");
            if (waiting.size() >= options.maxQueued())
                throw new QueueFullException("engine: " + waiting.size() + " requests are waiting already (max " + options.maxQueued() + ")");
            waiting.add(active);
            work.signalAll();
        } finally {
            lock.unlock();
        }
        return group.stream().map(a -> a.handle).toList();
    }

    /** Runs one request to its end on the calling thread (with whatever else is queued) and returns its tokens. */
    public Result generate(Request request) {
        Handle h = submit(request, t -> {});
        runUntilIdle();
        return h.result().join();
    }

    /** Steps until nothing waits or runs. */
    public void runUntilIdle() {
        while (step()) { /* continue */ }
    }

    /** Runs {@link #step} on a thread of its own until {@link #close}. */
    public synchronized void start() {
        if (loop != null) return;
        loop = Thread.ofPlatform().name("jomni-engine").daemon(true).start(() -> {
            while (!closed) {
                boolean more;
                try {
                    more = step();
                } catch (RuntimeException e) {
                    more = false;                                  // step already failed its requests
                }
                if (!more) {
                    lock.lock();
                    try {
                        if (!closed && waiting.isEmpty()) work.awaitNanos(50_000_000L);
                    } catch (InterruptedException e) {
                        return;
                    } finally {
                        lock.unlock();
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------ stepping

    /** Admits what fits, prefills it, decodes one token for every running sequence; returns whether work remains. */
    public boolean step() {
        stepLock.lock();
        try (var noGrad = Autograd.noGrad()) {
            if (closed) return false;
            for (Active a : List.copyOf(running)) if (a.handle.cancelled) finish(a, Finish.CANCELLED, null);
            admit();
            Map<String, List<Active>> groups = new LinkedHashMap<>();
            for (Active a : running) groups.computeIfAbsent(a.request.adapter() == null ? "" : a.request.adapter(), k -> new ArrayList<>()).add(a);
            for (var g : groups.entrySet()) decode(g.getKey().isEmpty() ? null : g.getKey(), g.getValue());
            runningCount = running.size();
            freeBlocks = pool.freeBlocks();
            return !running.isEmpty() || queued() > 0;
        } finally {
            stepLock.unlock();
        }
    }

    private int queued() {
        lock.lock();
        try {
            return waiting.size();
        } finally {
            lock.unlock();
        }
    }

    /** The head of the queue if it may be admitted now (removed from the queue), else null. */
    private Active nextAdmissible() {
        // Each running sequence takes at most its promise, shared blocks are counted once in the pool, so
        // blocks promised but not yet taken are at most Σ promise − used: the pool can keep any promise within capacity.
        int promised = 0;
        for (Active a : running) promised += a.promise;
        lock.lock();
        try {
            while (!waiting.isEmpty()) {
                Active a = waiting.peek();
                if (a.group.stream().allMatch(m -> m.handle.cancelled)) {
                    waiting.poll();
                    for (Active m : a.group) finish(m, Finish.CANCELLED, null);
                    continue;
                }
                int need = 0;
                for (Active m : a.group) need += m.promise;
                // first come, first served: the head waits until the pool can promise it every block it may need
                return promised + need <= pool.capacity() ? waiting.poll() : null;
            }
            return null;
        } finally {
            lock.unlock();
        }
    }

    private void admit() {
        while (running.size() < options.maxRunning()) {
            Active head = nextAdmissible();
            if (head == null) break;
            List<Active> group = new ArrayList<>();
            for (Active m : head.group) {
                if (m.handle.cancelled) finish(m, Finish.CANCELLED, null);
                else group.add(m);
            }
            for (Active m : group) {
                m.gen = new Generator(m.settings().seed());
                running.add(m);
            }
            if (head.settings().maxNewTokens() == 0) {
                for (Active m : group) finish(m, Finish.LENGTH, null);
                continue;
            }
            prefill(group);
        }
    }

    /** The prompt into the first sample's blocks (the others fork them), then each sample's first token from its own generator. */
    private void prefill(List<Active> group) {
        Active a = group.getFirst();
        long[] p = a.request.prompt();
        long[] ones = new long[p.length];
        Arrays.fill(ones, 1);
        long[] token = new long[group.size()];
        double[] logprob = new double[group.size()];
        a.seq = new KvCache.Sequence(pool);
        try (var scope = Scope.open(); var on = withAdapter(a.request.adapter()); var cache = new KvCache(pool, List.of(a.seq))) {
            Tensor last = thinker.nextTokenLogits(Tensor.of(p, 1, p.length), Tensor.of(ones, 1, p.length), a.request.audio(), cache);
            for (int i = 0; i < group.size(); i++) {
                Active m = group.get(i);
                if (i > 0) m.seq = a.seq.fork();
                long[] next = pick(last, List.of(m));
                token[i] = next[0];
                logprob[i] = logprobs(last, next, List.of(m))[0];
            }
        } catch (RuntimeException e) {
            for (Active m : group) {
                if (m.seq == null) m.seq = new KvCache.Sequence(pool);      // so that finish takes it out of the batch
                finish(m, Finish.ERROR, e.getMessage());
            }
            return;
        }
        for (int i = 0; i < group.size(); i++) emit(group.get(i), token[i], logprob[i]);
    }

    private void decode(String adapter, List<Active> rows) {
        int b = rows.size(), past = 0;
        for (Active a : rows) past = Math.max(past, a.seq.length());
        long[] ids = new long[b], mask = new long[b * (past + 1)];
        List<KvCache.Sequence> seqs = new ArrayList<>();
        for (int r = 0; r < b; r++) {
            Active a = rows.get(r);
            ids[r] = a.last;
            Arrays.fill(mask, r * (past + 1), r * (past + 1) + a.seq.length(), 1);   // its tokens, then the gap (positions only: paged decode needs no mask)
            mask[r * (past + 1) + past] = 1;
            seqs.add(a.seq);
        }
        long[] next;
        double[] lp;
        try (var scope = Scope.open(); var on = withAdapter(adapter); var cache = new KvCache(pool, seqs)) {
            Tensor last = thinker.nextTokenLogits(Tensor.of(ids, b, 1), Tensor.of(mask, b, past + 1), null, cache);
            next = pick(last, rows);
            lp = logprobs(last, next, rows);
        } catch (RuntimeException e) {
            for (Active a : rows) finish(a, Finish.ERROR, e.getMessage());
            return;
        }
        for (int r = 0; r < b; r++) emit(rows.get(r), next[r], lp[r]);
    }

    /** Attaches the named adapter for a try-with-resources block (none for the base model). */
    private Attached withAdapter(String name) {
        if (name == null) return () -> {};
        LoraAdapter a = adapters.get(name);
        if (a == null) throw new IllegalStateException("adapter " + name + " was removed while in use");
        a.attach();
        return a::detach;
    }

    private interface Attached extends AutoCloseable {
        @Override
        void close();
    }

    private void emit(Active a, long token, double logprob) {
        if (a.produced == a.out.length) {
            a.out = Arrays.copyOf(a.out, a.out.length * 2);
            a.logprobs = Arrays.copyOf(a.logprobs, a.out.length);
        }
        a.logprobs[a.produced] = logprob;
        a.out[a.produced++] = token;
        a.last = token;
        generatedTokens++;
        try {
            a.listener.token(token, logprob);
        } catch (RuntimeException e) {                             // a broken listener (a closed stream) ends its request only
            finish(a, Finish.CANCELLED, "listener: " + e.getMessage());
            return;
        }
        if (a.settings().stopTokens().contains(token)) finish(a, Finish.STOP, null);
        else if (a.produced >= a.settings().maxNewTokens()) finish(a, Finish.LENGTH, null);
    }

    private void finish(Active a, Finish finish, String error) {
        if (a.seq != null) {
            a.seq.free();
            a.seq = null;
        }
        running.remove(a);
        var result = new Result(Arrays.copyOf(a.out, a.produced), a.request.logprobs() ? Arrays.copyOf(a.logprobs, a.produced) : null, finish, error);
        try {
            a.listener.finished(result);
        } catch (RuntimeException ignored) {
            // the request is over either way
        }
        a.handle.result.complete(result);
    }

    /** The next token of each row from its last logits [B, V], as {@link Generation#pick} picks it. */
    private long[] pick(Tensor last, List<Active> rows) {
        int b = rows.size();
        long[] next = new long[b];
        boolean greedy = false;
        int topK = 0;
        for (Active a : rows) {
            if (onHost(a.settings())) continue;
            if (a.settings().temperature() == 0) greedy = true;
            else if (a.settings().topK() > 0) topK = Math.max(topK, Math.min(a.settings().topK(), vocab));
        }
        long[] argmax = greedy ? last.argmax(-1, false).toLongArray() : null;
        double[] topValues = null;
        long[] topIds = null;
        if (topK > 0) {
            var top = last.topk(topK, -1, true);                   // sorted descending, ties by increasing id (stable)
            topValues = top.values().toDoubleArray();
            topIds = top.indices().toLongArray();
        }
        for (int r = 0; r < b; r++) {
            Active a = rows.get(r);
            var s = a.settings();
            if (onHost(s)) {
                double[] l = last.narrow(0, r, 1).reshape(-1).toDoubleArray();
                if (s.repetitionPenalty() != 1) Generation.penalize(l, a.request.prompt(), a.out, a.produced, s.repetitionPenalty());
                next[r] = Generation.pick(l, s, a.gen);
            } else if (s.temperature() == 0) next[r] = argmax[r];
            else if (s.topK() > 0) {
                int k = Math.min(s.topK(), vocab);
                next[r] = Generation.sample(Arrays.copyOfRange(topValues, r * topK, r * topK + k), Arrays.copyOfRange(topIds, r * topK, r * topK + k), s, rows.get(r).gen);
            }
        }
        return next;
    }

    /** Rows the device cannot narrow down: sampling over the whole vocabulary, or a repetition penalty to apply first. */
    private static boolean onHost(Generation.Settings s) {
        return s.repetitionPenalty() != 1 || s.temperature() > 0 && s.topK() == 0;
    }

    /**
     * log softmax(last)[chosen] per row, in f32 or wider, on the device (one [B] copy to the host), for the rows that
     * asked; NaN for the others.
     */
    private static double[] logprobs(Tensor last, long[] chosen, List<Active> rows) {
        double[] out = new double[rows.size()];
        Arrays.fill(out, Double.NaN);
        if (rows.stream().noneMatch(a -> a.request.logprobs())) return out;
        Tensor x = last.to(last.dtype().atLeastF32());
        Tensor at = Tensor.of(chosen, chosen.length, 1).to(x.device());
        double[] lp = x.gather(1, at).sub(x.logsumexp(-1, true)).toDoubleArray();
        for (int r = 0; r < out.length; r++) if (rows.get(r).request.logprobs()) out[r] = lp[r];
        return out;
    }

    // ------------------------------------------------------------------ state

    /** A snapshot for /metrics and tests. */
    public record Stats(int waiting, int running, int blocksUsed, int blocksTotal, long generatedTokens) {}

    public Stats stats() {
        return new Stats(queued(), runningCount, pool.capacity() - freeBlocks, pool.capacity(), generatedTokens);
    }

    /** Stops the loop, cancels every request and frees the pool. */
    @Override
    public void close() {
        Thread t;
        synchronized (this) {
            t = loop;
        }
        lock.lock();
        try {
            closed = true;
            work.signalAll();
        } finally {
            lock.unlock();
        }
        if (t != null) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        stepLock.lock();
        lock.lock();
        try {
            for (Active a : List.copyOf(running)) finish(a, Finish.CANCELLED, "engine closed");
            while (!waiting.isEmpty()) for (Active m : waiting.poll().group) finish(m, Finish.CANCELLED, "engine closed");
            pool.close();
        } finally {
            lock.unlock();
            stepLock.unlock();
        }
    }
}

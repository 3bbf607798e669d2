package dev.jomni.tensor;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * Deterministic release of tensor memory. Tensors created on a thread while a scope is open belong
 * to the innermost one and are closed when it closes, except those passed to {@link #keep}, which
 * move to the enclosing scope (or, outside every scope, to the garbage collector):
 * <pre>{@code
 * try (var scope = Scope.open()) {
 *     Tensor loss = model.forward(x).crossEntropy(y, -100);
 *     loss.backward();                      // leaf gradients belong to their leaves, not to the scope
 *     return scope.keep(loss.detach());
 * }                                         // every activation and intermediate gradient freed here
 * }</pre>
 */
public final class Scope implements AutoCloseable {
    private static final ThreadLocal<Scope> CURRENT = new ThreadLocal<>();
    private static final Cleaner CLEANER = Cleaner.create();

    private final Scope parent;
    private final Thread thread = Thread.currentThread();
    private final Set<Tensor> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    private Scope(Scope parent) { this.parent = parent; }

    public static Scope open() {
        var s = new Scope(CURRENT.get());
        CURRENT.set(s);
        return s;
    }

    /** Moves {@code t} out of this scope into the enclosing one (or to the garbage collector) and returns it. */
    public Tensor keep(Tensor t) {
        if (owned.remove(t)) adopt(t, parent);
        return t;
    }

    /**
     * Takes {@code t} out of whichever scope owns it, for state that outlives the scopes it is made in
     * (a KV cache, optimiser state); it is freed by {@link Tensor#close()} or the garbage collector.
     */
    public static Tensor unscoped(Tensor t) {
        adopt(t, null);
        return t;
    }

    /** Number of tensors this scope will close. */
    public int size() { return owned.size(); }

    @Override
    public void close() {
        if (closed) return;
        if (Thread.currentThread() != thread)
            throw new IllegalStateException("a Scope must be closed on the thread that opened it (" + thread.getName() + ")");
        if (CURRENT.get() != this)
            throw new IllegalStateException("scopes must close innermost first: an inner Scope is still open");
        closed = true;
        CURRENT.set(parent);
        for (Tensor t : new ArrayList<>(owned)) t.closeNow();
        owned.clear();
    }

    /** Registers a new tensor with the current thread's scope, or with the garbage collector. */
    static void register(Tensor t) {
        adopt(t, CURRENT.get());
    }

    /** Gives {@code t} to {@code owner}, or to the garbage collector when owner is null. */
    static void adopt(Tensor t, Scope owner) {
        if (t.owner != null) t.owner.owned.remove(t);
        t.owner = owner;
        if (owner != null) owner.owned.add(t);
        else if (t.cleanup == null) t.cleanup = CLEANER.register(t, t.releaseAction());
    }

    void forget(Tensor t) { owned.remove(t); }
}

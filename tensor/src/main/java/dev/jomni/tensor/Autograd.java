package dev.jomni.tensor;

import dev.jomni.tensor.spi.Storage;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Reverse-mode automatic differentiation. Each differentiable op records a {@link Node}: its inputs
 * and a {@link Backward} that maps the output's gradient to one gradient per input (PyTorch's
 * {@code autograd.Function} contract, typed). {@link #backward} walks the graph once in reverse
 * topological order and frees it.
 */
public final class Autograd {
    private static final ThreadLocal<int[]> NO_GRAD_DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private Autograd() {}

    /** Maps the gradient of an op's output to the gradients of its inputs, in input order. */
    @FunctionalInterface
    public interface Backward {
        /** @param needs which inputs need a gradient; return null in the other slots */
        Tensor[] apply(Tensor gradOutput, boolean[] needs);
    }

    /**
     * One recorded op: what produced a tensor, and where each input's gradient goes. The graph's
     * edges point at the inputs' nodes (or at the leaves themselves), never at non-leaf input
     * tensors: the tape keeps an intermediate alive only if a {@link Backward} declares it.
     */
    static final class Node {
        final String op;
        Backward backward;
        /** Per input: the Node that made it, the leaf tensor itself, or null when it needs no gradient. */
        Object[] next;
        final int[][] inputShapes;
        final boolean[] needs;

        Node(String op, Backward backward, Tensor[] inputs) {
            this.op = op;
            this.backward = backward;
            this.next = new Object[inputs.length];
            this.inputShapes = new int[inputs.length][];
            this.needs = new boolean[inputs.length];
            for (int i = 0; i < inputs.length; i++) {
                Tensor in = inputs[i];
                needs[i] = in != null && in.requiresGrad();
                if (in != null) inputShapes[i] = in.shape();
                if (needs[i]) next[i] = in.gradFn != null ? in.gradFn : in;
            }
        }

        boolean freed() { return backward == null; }
    }

    public static boolean enabled() { return NO_GRAD_DEPTH.get()[0] == 0; }

    /** A region in which ops record nothing: {@code try (var g = Autograd.noGrad()) { … }}. */
    public static NoGrad noGrad() {
        int[] depth = NO_GRAD_DEPTH.get();
        return new NoGrad(depth[0]++);
    }

    /** Restores the recording state that was in force when it was opened. */
    public static final class NoGrad implements AutoCloseable {
        private final int restore;
        private boolean closed;
        private NoGrad(int restore) { this.restore = restore; }
        @Override public void close() {
            if (!closed) { closed = true; NO_GRAD_DEPTH.get()[0] = restore; }
        }
    }

    /** Records {@code out} as produced by {@code op} from {@code inputs}, if any of them needs a gradient. */
    public static Tensor record(String op, Tensor out, Backward backward, Tensor... inputs) {
        if (!enabled()) return out;
        for (Tensor in : inputs)
            if (in != null && in.requiresGrad()) {
                out.gradFn = new Node(op, backward, inputs.clone());
                out.requiresGrad = true;
                return out;
            }
        return out;
    }

    /**
     * Activation checkpointing: runs {@code f} without recording, keeping only its inputs; during
     * backward it runs {@code f} again with recording on and back-propagates through that. Parameters
     * that {@code f} reads (leaves needing gradients) receive their gradients then.
     */
    public static Tensor checkpoint(Function<Tensor[], Tensor> f, Tensor... inputs) {
        Tensor out;
        try (var g = noGrad()) {
            out = f.apply(inputs);
        }
        if (!enabled()) return out;
        // The recorded node must exist even when no input needs a gradient: parameters inside f may.
        out.gradFn = new Node("checkpoint", new CheckpointBackward(f, inputs.clone()), inputs.clone());
        out.requiresGrad = true;
        return out;
    }

    /**
     * Recomputes {@code f(inputs)} with recording on and back-propagates through it. Keeps the inputs
     * (and whatever f itself refers to, typically parameters, which it does not declare).
     */
    record CheckpointBackward(Function<Tensor[], Tensor> f, Tensor[] inputs) implements Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor[] detached = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) detached[i] = inputs[i].detach().requiresGrad(needs[i]);
            Tensor again;
            try (var on = enableGrad()) {
                again = f.apply(detached);
            }
            if (again.requiresGrad()) run(again, dy);
            Tensor[] grads = new Tensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) grads[i] = needs[i] ? detached[i].grad() : null;
            return grads;
        }
    }

    /**
     * Bytes the saved state of {@code root}'s graph keeps alive: the sum of the sizes of the distinct
     * storages (by identity, whole storages, so a saved view counts its base) that the graph's
     * {@link Backward} records hold, counting parameters too. Same as {@code savedBytes(root, true)}.
     */
    public static long savedBytes(Tensor root) { return savedBytes(root, true); }

    /**
     * Bytes the saved state of {@code root}'s graph keeps alive, as {@link #savedBytes(Tensor)}; with
     * {@code countParameters} false, storages of leaves that require a gradient (parameters, which
     * live anyway) are left out, whether saved directly or through a view.
     *
     * <p>What a node saves is read from its {@link Backward}, which must be a record: components of
     * type Tensor, arrays and collections of them, and nested records are followed; other components
     * (shapes, scalars, dtypes, functions) hold no tensor memory by this count. Released tensors count
     * nothing. The graph's edges to leaves are not counted: they are not saved state. A backward that is
     * not a record does not declare its state, and this method throws naming its op.
     *
     * @return 0 when root has no graph (a leaf, or a graph already freed by backward)
     */
    public static long savedBytes(Tensor root, boolean countParameters) {
        if (root.gradFn == null) return 0;
        List<Object> vertices = topologicalOrder(root.gradFn);
        Set<Storage> parameters = Collections.newSetFromMap(new IdentityHashMap<>());
        if (!countParameters)
            for (Object v : vertices) if (v instanceof Tensor leaf && leaf.requiresGrad() && !leaf.isReleased()) parameters.add(leaf.storage());
        Set<Storage> saved = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Object v : vertices) {
            if (!(v instanceof Node node) || node.freed()) continue;
            if (!(node.backward instanceof Record r))
                throw new IllegalStateException("savedBytes: the backward of '" + node.op + "' (" + node.backward.getClass().getName()
                        + ") is not a record, so its saved state is undeclared: write it as a record implementing Autograd.Backward");
            collectSaved(node.op, r, saved, countParameters);
        }
        long bytes = 0;
        for (Storage st : saved) if (!parameters.contains(st)) bytes += st.bytes;
        return bytes;
    }

    private static void collectSaved(String op, Object value, Set<Storage> into, boolean countParameters) {
        switch (value) {
            case null -> {}
            case Tensor t -> {
                if (t.isReleased()) return;
                if (!countParameters && t.gradFn == null && t.requiresGrad()) return;   // a parameter itself
                into.add(t.storage());
            }
            case Record r -> {
                for (RecordComponent c : r.getClass().getRecordComponents()) {
                    Object v;
                    try {
                        Method get = c.getAccessor();
                        get.setAccessible(true);                     // ops' records are package-private
                        v = get.invoke(r);
                    } catch (ReflectiveOperationException | RuntimeException e) {
                        throw new IllegalStateException("savedBytes: cannot read " + r.getClass().getName() + "." + c.getName() + " of '" + op + "'", e);
                    }
                    collectSaved(op, v, into, countParameters);
                }
            }
            case Object[] array -> { for (Object o : array) collectSaved(op, o, into, countParameters); }
            case Iterable<?> items -> { for (Object o : items) collectSaved(op, o, into, countParameters); }
            default -> {}
        }
    }

    /** Turns recording back on inside a no-grad region (used to recompute a checkpointed forward). */
    static NoGrad enableGrad() {
        int[] depth = NO_GRAD_DEPTH.get();
        var restore = new NoGrad(depth[0]);
        depth[0] = 0;
        return restore;
    }

    /** Back-propagates {@code grad} (shaped like root) from {@code root}, accumulating into leaves' {@code grad}. */
    static void run(Tensor root, Tensor grad) {
        if (!root.requiresGrad())
            throw new IllegalStateException("backward: the tensor does not require grad (no input of its graph does)");
        if (root.gradFn != null && root.gradFn.freed())
            throw new IllegalStateException("backward: the graph of this tensor was freed by an earlier backward()");
        Object start = root.gradFn != null ? root.gradFn : root;
        List<Object> order = topologicalOrder(start);
        Map<Object, Tensor> grads = new IdentityHashMap<>();   // by vertex: a Node or a leaf Tensor
        // Gradients are released as soon as nothing needs them, so backward's peak memory is the
        // frontier of the graph, not all of it. One gradient object may stand for several inputs
        // (add passes dy to both): `holds` counts the map entries that refer to each.
        Map<Tensor, Integer> holds = new IdentityHashMap<>();
        grads.put(start, grad);
        holds.put(grad, 1);
        try (var g = noGrad()) {
            for (int i = order.size() - 1; i >= 0; i--) {
                Object v = order.get(i);
                Tensor dy = grads.remove(v);
                if (dy == null) continue;
                List<Tensor> released = new ArrayList<>();
                release(dy, holds, released);
                if (v instanceof Tensor leaf) {
                    leaf.accumulateGrad(dy);
                    closeUnheld(released, holds, grad);
                    continue;
                }
                Node node = (Node) v;
                if (node.freed())
                    throw new IllegalStateException("backward: the graph through '" + node.op + "' was freed by an earlier backward()");
                Tensor[] dx;
                try (var scope = Scope.open()) {             // the op's temporaries die here; its gradients are kept
                    dx = node.backward.apply(dy, node.needs);
                    for (Tensor d : dx) if (d != null) scope.keep(d);
                }
                if (dx.length != node.next.length)
                    throw new IllegalStateException(node.op + ": backward returned " + dx.length + " gradients for " + node.next.length + " inputs");
                for (int k = 0; k < dx.length; k++) {
                    Object in = node.next[k];
                    if (!node.needs[k] || dx[k] == null) continue;
                    if (!java.util.Arrays.equals(dx[k].shape(), node.inputShapes[k]))
                        throw new IllegalStateException(node.op + ": gradient of input " + k + " has shape "
                                + Check.str(dx[k].shape()) + ", the input " + Check.str(node.inputShapes[k]));
                    Tensor prev = grads.get(in);
                    Tensor next = dx[k];
                    if (prev != null) {
                        next = prev.add(dx[k]);
                        release(prev, holds, released);
                        released.add(dx[k]);
                    }
                    grads.put(in, next);
                    holds.merge(next, 1, Integer::sum);
                }
                for (Tensor d : dx) if (d != null && !holds.containsKey(d)) released.add(d);   // not needed by any input
                closeUnheld(released, holds, grad);
                node.backward = null;                        // free the graph: saved tensors become unreachable
                node.next = null;
            }
        }
    }

    private static void release(Tensor t, Map<Tensor, Integer> holds, List<Tensor> released) {
        Integer n = holds.get(t);
        if (n == null) return;
        if (n > 1) holds.put(t, n - 1);
        else {
            holds.remove(t);
            released.add(t);
        }
    }

    /** Closes gradients no map entry refers to any more (never the caller's own gradient; views keep shared storage alive). */
    private static void closeUnheld(List<Tensor> released, Map<Tensor, Integer> holds, Tensor callerGrad) {
        for (Tensor t : released)
            if (t != callerGrad && !holds.containsKey(t) && !t.isReleased()) t.close();
    }

    /** The vertices (Nodes and leaf Tensors) reachable from start, inputs before their users. */
    private static List<Object> topologicalOrder(Object start) {
        List<Object> order = new ArrayList<>();
        Map<Object, Boolean> seen = new IdentityHashMap<>();
        ArrayDeque<Object[]> stack = new ArrayDeque<>();     // iterative DFS: {vertex, next input index}
        stack.push(new Object[] {start, 0});
        seen.put(start, true);
        while (!stack.isEmpty()) {
            Object[] top = stack.peek();
            Node n = top[0] instanceof Node node && !node.freed() ? node : null;
            int next = (int) top[1];
            if (n != null && next < n.next.length) {
                top[1] = next + 1;
                Object in = n.next[next];
                if (in != null && seen.put(in, true) == null) stack.push(new Object[] {in, 0});
            } else {
                stack.pop();
                order.add(top[0]);                           // post-order: inputs before users
            }
        }
        return order;
    }
}

package dev.jomni.tensor.spi;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A backend's kernels for the coarse ops, keyed by each op's nested {@code Kernels} interface
 * (e.g. {@code RmsNorm.Kernels}). A backend registers an op in one line,
 * {@code kernels.register(RmsNorm.Kernels.class, new CpuRmsNorm())}, so the {@link Backend} SPI does
 * not grow with every op; an op asks {@code x.backend().kernels(RmsNorm.Kernels.class)}.
 */
public final class OpKernels {
    private final String backend;
    private final Map<Class<?>, Object> byOp = new ConcurrentHashMap<>();

    public OpKernels(String backend) { this.backend = backend; }

    public <K> OpKernels register(Class<K> op, K kernels) {
        if (!op.isInterface()) throw new IllegalArgumentException(op.getName() + " is not an op's Kernels interface");
        if (byOp.putIfAbsent(op, op.cast(kernels)) != null)
            throw new IllegalStateException(backend + ": kernels for " + name(op) + " registered twice");
        return this;
    }

    /** The kernels registered for {@code op}; throws naming the op and the backend when there are none. */
    public <K> K get(Class<K> op) {
        Object k = byOp.get(op);
        if (k == null) throw new UnsupportedOperationException(name(op) + ": the " + backend + " backend has no kernels for this op");
        return op.cast(k);
    }

    public boolean has(Class<?> op) { return byOp.containsKey(op); }

    /** "RmsNorm" for RmsNorm.Kernels. */
    private static String name(Class<?> op) {
        Class<?> outer = op.getEnclosingClass();
        return outer != null ? outer.getSimpleName() : op.getSimpleName();
    }
}

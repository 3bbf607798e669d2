package dev.jomni.tensor.spi;

import dev.jomni.tensor.Tensor;

/**
 * A tensor's layout as a backend reads it: its storage, strides and offset. Not on {@link Tensor}
 * itself, so that only the backends (this package is exported to the kernels module alone) see them.
 */
public final class TensorAccess {
    /** Implemented by the tensor package, installed once by Tensor's class initialisation. */
    public interface Layout {
        Storage storage(Tensor t);

        long[] strides(Tensor t);

        long offset(Tensor t);
    }

    private static volatile Layout layout;

    private TensorAccess() {}

    /** Called by Tensor's class initialisation; a second call fails. */
    public static void install(Layout l) {
        if (layout != null) throw new IllegalStateException("TensorAccess is installed once, by Tensor");
        layout = l;
    }

    /** The storage; throws if {@code t} was released. */
    public static Storage storage(Tensor t) { return layout.storage(t); }

    /** Strides in elements (a copy). */
    public static long[] strides(Tensor t) { return layout.strides(t); }

    /** Offset of the first element in the storage, in elements. */
    public static long offset(Tensor t) { return layout.offset(t); }
}

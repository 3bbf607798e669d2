package dev.jomni.nn;

import dev.jomni.tensor.Tensor;
import java.util.Arrays;

/** A named slot for a weight of a fixed shape; its tensor is set by a loader or an initialiser. */
public final class Parameter {
    private final String name;
    private final int[] shape;
    private Tensor value;

    Parameter(String name, int[] shape) {
        this.name = name;
        this.shape = shape.clone();
    }

    public String name() { return name; }

    public int[] shape() { return shape.clone(); }

    public boolean isSet() { return value != null; }

    /** The weight; an error naming the parameter if nothing was loaded into it. */
    public Tensor value() {
        if (value == null) throw new IllegalStateException("parameter " + name + " " + Arrays.toString(shape) + " was never loaded or initialised");
        return value;
    }

    /** Sets the weight (its shape must match), releasing the previous one. */
    public void set(Tensor t) {
        if (!Arrays.equals(t.shape(), shape))
            throw new IllegalArgumentException(name + ": expected " + Arrays.toString(shape) + ", got " + Arrays.toString(t.shape()));
        if (value != null && value != t && !value.isReleased()) value.close();
        value = t;
    }

    @Override public String toString() { return name + Arrays.toString(shape); }
}

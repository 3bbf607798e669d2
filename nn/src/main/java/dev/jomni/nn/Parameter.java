package dev.jomni.nn;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.util.Arrays;

/**
 * A named slot for a weight of a fixed shape; its tensor is set by a loader or an initialiser. A frozen weight may
 * instead be held in NF4 ({@link #set(Nf4Weight)}, QLoRA's base): a parameter [..., K] is then the NF4 weight
 * [numel/K, K] (rows in order), read only by the ops that take NF4 (nf4Matmul, moeExperts), never by {@link #value}.
 */
public final class Parameter {
    private final String name;
    private final int[] shape;
    private Tensor value;
    private Nf4Weight nf4;

    Parameter(String name, int[] shape) {
        this.name = name;
        this.shape = shape.clone();
    }

    public String name() { return name; }

    public int[] shape() { return shape.clone(); }

    public long numel() {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public boolean isSet() { return value != null || nf4 != null; }

    /** Whether the weight is held in NF4 (read it with {@link #nf4()}). */
    public boolean isNf4() { return nf4 != null; }

    /** The weight; an error naming the parameter if nothing was loaded into it, or if it is held in NF4. */
    public Tensor value() {
        if (nf4 != null) throw new IllegalStateException("parameter " + name + " " + Arrays.toString(shape) + " is frozen NF4 (4-bit): read it through nf4()");
        if (value == null) throw new IllegalStateException("parameter " + name + " " + Arrays.toString(shape) + " was never loaded or initialised");
        return value;
    }

    /** The NF4 weight [numel/K, K]; an error naming the parameter if it is not held in NF4. */
    public Nf4Weight nf4() {
        if (nf4 == null) throw new IllegalStateException("parameter " + name + " " + Arrays.toString(shape) + " is not NF4");
        return nf4;
    }

    /** The weight as a dense tensor of this shape: the value itself, or the NF4 weight dequantized (a new tensor). */
    public Tensor dense() { return nf4 != null ? nf4.dequantize().reshape(shape) : value(); }

    /** The dtype the weight computes in (an NF4 weight's: what it dequantizes to). */
    public DType dtype() { return nf4 != null ? nf4.dtype() : value().dtype(); }

    public Device device() { return nf4 != null ? nf4.device() : value().device(); }

    /** Bytes the weight holds: numel × dtype size, or the NF4 weight's packed codes and scales. */
    public long bytes() { return nf4 != null ? nf4.bytes() : value().numel() * value().dtype().byteSize; }

    /** Sets the weight (its shape must match), releasing the previous one. */
    public void set(Tensor t) {
        if (!Arrays.equals(t.shape(), shape))
            throw new IllegalArgumentException(name + ": expected " + Arrays.toString(shape) + ", got " + Arrays.toString(t.shape()));
        release(t);
        value = t;
    }

    /** Holds the weight in NF4; w must be this parameter flattened to [numel/K, K], K its last dimension. */
    public void set(Nf4Weight w) {
        int k = shape[shape.length - 1];
        if (w.cols() != k || (long) w.rows() * w.cols() != numel())
            throw new IllegalArgumentException(name + ": NF4 weight " + Arrays.toString(w.shape()) + " does not flatten "
                    + Arrays.toString(shape) + " to [" + numel() / k + ", " + k + "]");
        release(null);
        value = null;
        nf4 = w;
    }

    private void release(Tensor next) {
        if (value != null && value != next && !value.isReleased()) value.close();
        if (nf4 != null) nf4.close();
        nf4 = null;
    }

    @Override public String toString() { return name + Arrays.toString(shape); }
}

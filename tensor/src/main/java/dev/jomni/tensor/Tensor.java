package dev.jomni.tensor;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.ReduceOp;
import dev.jomni.tensor.spi.Storage;
import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.spi.UnaryOp;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An n-dimensional array on a device: a {@link Storage}, a dtype, a shape, strides and an offset (in
 * elements). Views (reshape, permute, narrow, expand, …) share storage. Ops are methods named as in
 * PyTorch; differentiable ones record themselves for {@link #backward()}. Every tensor belongs to
 * the {@link Scope} open when it was made (see there for lifetimes).
 */
public final class Tensor implements AutoCloseable {
    private final Storage storage;
    private final DType dtype;
    private final int[] shape;
    private final long[] strides;
    private final long offset;
    private final AtomicBoolean released = new AtomicBoolean();

    boolean requiresGrad;
    Autograd.Node gradFn;
    private Tensor grad;
    Scope owner;
    Cleaner.Cleanable cleanup;

    static {                                  // the backends' view of the layout (spi: exported to the kernels module only)
        TensorAccess.install(new TensorAccess.Layout() {
            @Override public Storage storage(Tensor t) { return t.storage(); }
            @Override public long[] strides(Tensor t) { return t.strides(); }
            @Override public long offset(Tensor t) { return t.offset(); }
        });
    }

    /** A tensor over {@code storage}: the constructor of the factories and views here (not API). Registers with the current scope. */
    Tensor(Storage storage, DType dtype, int[] shape, long[] strides, long offset) {
        this.storage = storage;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        storage.retain();
        Scope.register(this);
    }

    // ---------------------------------------------------------------- creation

    /** Uninitialised contiguous tensor. */
    public static Tensor empty(Device device, DType dtype, int... shape) {
        checkShape("empty", shape);
        return new Tensor(Backend.of(device).allocate(device, dtype, numel(shape)), dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    public static Tensor empty(DType dtype, int... shape) { return empty(Device.cpu(), dtype, shape); }

    /** Uninitialised contiguous tensor in the backend's pageable memory ({@link Backend#allocatePaged}). */
    public static Tensor emptyPaged(Device device, DType dtype, int... shape) {
        checkShape("emptyPaged", shape);
        return new Tensor(Backend.of(device).allocatePaged(device, dtype, numel(shape)), dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    public static Tensor full(Device device, DType dtype, double value, int... shape) {
        Tensor t = empty(device, dtype, shape);
        Backend.of(device).fill(t, value);
        return t;
    }

    public static Tensor full(DType dtype, double value, int... shape) { return full(Device.cpu(), dtype, value, shape); }

    public static Tensor zeros(DType dtype, int... shape) { return full(dtype, 0, shape); }

    public static Tensor zeros(Device device, DType dtype, int... shape) { return full(device, dtype, 0, shape); }

    public static Tensor ones(DType dtype, int... shape) { return full(dtype, 1, shape); }

    public static Tensor ones(Device device, DType dtype, int... shape) { return full(device, dtype, 1, shape); }

    public static Tensor scalar(DType dtype, double value) { return full(dtype, value); }

    /** [start, start+step, …) below end (above end for a negative step). */
    public static Tensor arange(DType dtype, double start, double end, double step) {
        if (step == 0) throw Check.fail("arange", "step is 0");
        long n = (long) Math.ceil((end - start) / step);
        if (n < 0) n = 0;
        if (n > Integer.MAX_VALUE) throw Check.fail("arange", "%d elements", n);
        double[] v = new double[(int) n];
        for (int i = 0; i < n; i++) v[i] = start + i * step;
        return fromDoubles(dtype, v, (int) n);
    }

    public static Tensor arange(long end) { return arange(DType.I64, 0, end, 1); }

    /** Uniform in [0, 1), drawn in row-major order from {@code gen}. */
    public static Tensor rand(Generator gen, DType dtype, int... shape) {
        double[] v = new double[Math.toIntExact(numel(shape))];
        for (int i = 0; i < v.length; i++) v[i] = gen.nextDouble();
        return fromDoubles(dtype, v, shape);
    }

    /** Standard normal, drawn in row-major order from {@code gen}. */
    public static Tensor randn(Generator gen, DType dtype, int... shape) {
        double[] v = new double[Math.toIntExact(numel(shape))];
        for (int i = 0; i < v.length; i++) v[i] = gen.nextGaussian();
        return fromDoubles(dtype, v, shape);
    }

    public static Tensor of(float[] data, int... shape) {
        checkLength(data.length, shape);
        try (Arena a = Arena.ofConfined()) {
            return fromHost(Device.cpu(), DType.F32, a.allocateFrom(ValueLayout.JAVA_FLOAT, data), shape);
        }
    }

    public static Tensor of(double[] data, int... shape) {
        checkLength(data.length, shape);
        try (Arena a = Arena.ofConfined()) {
            return fromHost(Device.cpu(), DType.F64, a.allocateFrom(ValueLayout.JAVA_DOUBLE, data), shape);
        }
    }

    public static Tensor of(long[] data, int... shape) {
        checkLength(data.length, shape);
        try (Arena a = Arena.ofConfined()) {
            return fromHost(Device.cpu(), DType.I64, a.allocateFrom(ValueLayout.JAVA_LONG, data), shape);
        }
    }

    public static Tensor of(int[] data, int... shape) {
        checkLength(data.length, shape);
        try (Arena a = Arena.ofConfined()) {
            return fromHost(Device.cpu(), DType.I32, a.allocateFrom(ValueLayout.JAVA_INT, data), shape);
        }
    }

    public static Tensor of(boolean[] data, int... shape) {
        checkLength(data.length, shape);
        byte[] b = new byte[data.length];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (data[i] ? 1 : 0);
        try (Arena a = Arena.ofConfined()) {
            return fromHost(Device.cpu(), DType.BOOL, a.allocateFrom(ValueLayout.JAVA_BYTE, b), shape);
        }
    }

    /** Values given as doubles, stored as {@code dtype} (rounded to nearest even for 16-bit floats). */
    public static Tensor fromDoubles(DType dtype, double[] data, int... shape) {
        Tensor t = of(data, shape);
        if (dtype == DType.F64) return t;
        Tensor c = t.to(dtype);
        t.close();
        return c;
    }

    /** A copy of contiguous host bytes (native order) as a tensor on {@code device}. */
    public static Tensor fromHost(Device device, DType dtype, MemorySegment host, int... shape) {
        checkShape("fromHost", shape);
        long n = numel(shape);
        if (host.byteSize() != n * dtype.byteSize)
            throw Check.fail("fromHost", "%d bytes for %s %s (%d bytes expected)", host.byteSize(), dtype.lower(), Check.str(shape), n * dtype.byteSize);
        return new Tensor(Backend.of(device).fromHost(device, dtype, host), dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    /**
     * A CPU tensor over existing memory without copying (a memory-mapped checkpoint, say); the caller
     * keeps the memory alive and unchanged for the tensor's life.
     */
    public static Tensor wrap(MemorySegment memory, DType dtype, int... shape) {
        checkShape("wrap", shape);
        long n = numel(shape);
        if (memory.byteSize() < n * dtype.byteSize)
            throw Check.fail("wrap", "%d bytes for %s %s", memory.byteSize(), dtype.lower(), Check.str(shape));
        Device cpu = Device.cpu();
        return new Tensor(Backend.of(cpu).wrap(cpu, memory), dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    // ---------------------------------------------------------------- reading back

    /** The elements in row-major order, as doubles. */
    public double[] toDoubleArray() { return hostCopy(DType.F64).toArray(ValueLayout.JAVA_DOUBLE); }

    public float[] toFloatArray() { return hostCopy(DType.F32).toArray(ValueLayout.JAVA_FLOAT); }

    public long[] toLongArray() { return hostCopy(DType.I64).toArray(ValueLayout.JAVA_LONG); }

    /** The elements converted to {@code as}, contiguous, in garbage-collected host memory. */
    private MemorySegment hostCopy(DType as) {
        try (var g = Autograd.noGrad()) {
            Tensor t = this;
            if (!t.isContiguous() || t.dtype != as) {
                t = empty(device(), as, shape);
                backend().copy(this, t);
            }
            MemorySegment out = Arena.ofAuto().allocate(numel() * as.byteSize, 8);
            t.backend().toHost(t, out);
            if (t != this) t.close();
            return out;
        }
    }

    /** The value of a one-element tensor. */
    public double item() {
        if (numel() != 1) throw Check.fail("item", "tensor %s has %d elements, not 1", Check.str(shape), numel());
        return toDoubleArray()[0];
    }

    /** The elements' bytes (row-major, native byte order) copied to host memory owned by {@code arena}. */
    public MemorySegment toHost(Arena arena) {
        MemorySegment out = arena.allocate(numel() * dtype.byteSize, 8);
        out.copyFrom(hostCopy(dtype));
        return out;
    }

    // ---------------------------------------------------------------- properties

    public DType dtype() { return dtype; }

    public int[] shape() { return shape.clone(); }

    public int size(int dim) { return shape[Check.dim("size", dim, shape.length)]; }

    public int rank() { return shape.length; }

    public long numel() { return numel(shape); }

    /** Strides in elements; backends read them through {@link TensorAccess}. */
    long[] strides() { return strides.clone(); }

    /** Offset of the first element in the storage, in elements. */
    long offset() { return offset; }

    /** The storage. Throws if this tensor was released. */
    Storage storage() {
        if (released.get())
            throw new IllegalStateException("tensor " + describe() + " was released (closed, or its Scope closed)");
        return storage;
    }

    public Device device() { return storage.device; }

    Backend backend() { return Backend.of(storage.device); }

    public boolean isContiguous() {
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != s) return false;
            s *= shape[i];
        }
        return true;
    }

    public boolean isReleased() { return released.get(); }

    String describe() { return dtype.lower() + Check.str(shape) + (device().kind() == Device.Kind.CPU ? "" : "@" + device()); }

    @Override public String toString() {
        if (numel() > 64) return "Tensor(" + describe() + ")";
        return "Tensor(" + describe() + " " + Arrays.toString(toDoubleArray()) + ")";
    }

    // ---------------------------------------------------------------- lifetime

    /** Releases this tensor's hold on its storage now; a closed tensor cannot be used. */
    @Override
    public void close() {
        if (owner != null) owner.forget(this);
        closeNow();
    }

    void closeNow() {
        if (cleanup != null) cleanup.clean();               // runs the release action at most once
        else releaseAction().run();
        if (grad != null && grad.owner == owner) grad.close();
    }

    Runnable releaseAction() {
        Storage s = storage;
        AtomicBoolean flag = released;
        return () -> {
            if (flag.compareAndSet(false, true)) s.release();
        };
    }

    // ---------------------------------------------------------------- autograd

    public boolean requiresGrad() { return requiresGrad; }

    /** Marks a leaf as needing a gradient; returns this. */
    public Tensor requiresGrad(boolean on) {
        if (gradFn != null && !on)
            throw new IllegalStateException("requiresGrad(false) on a non-leaf tensor: use detach()");
        if (on && !dtype.floating) throw Check.fail("requiresGrad", "only floating tensors can require grad, got %s", dtype.lower());
        requiresGrad = on;
        return this;
    }

    /** The accumulated gradient of a leaf, or null. */
    public Tensor grad() { return grad; }

    /** Drops the gradient (closing it). */
    public void zeroGrad() {
        if (grad != null) grad.close();
        grad = null;
    }

    /** Sets the gradient (an optimiser or a loader may); it becomes owned like this tensor. */
    public void setGrad(Tensor g) {
        if (g != null && !Arrays.equals(g.shape, shape))
            throw Check.fail("setGrad", "gradient %s for a tensor %s", Check.str(g.shape), Check.str(shape));
        if (grad != null && grad != g) grad.close();
        grad = g;
        if (g != null) Scope.adopt(g, owner);
    }

    /** True when this tensor was made by a recorded op (has a graph behind it). */
    public boolean isLeaf() { return gradFn == null; }

    /** Back-propagates from a one-element tensor. */
    public void backward() {
        if (numel() != 1) throw Check.fail("backward", "needs a one-element tensor or an explicit gradient; this is %s", Check.str(shape));
        Tensor one = Tensor.full(device(), dtype, 1, shape);
        Autograd.run(this, one);
        one.close();
    }

    /** Back-propagates {@code gradient}, shaped like this tensor. */
    public void backward(Tensor gradient) {
        if (!Arrays.equals(gradient.shape, shape))
            throw Check.fail("backward", "gradient %s for a tensor %s", Check.str(gradient.shape), Check.str(shape));
        Autograd.run(this, gradient);
    }

    void accumulateGrad(Tensor g) {
        Tensor add = g.dtype == dtype ? g.copy() : g.to(dtype);   // a copy: g may be a view of a live tensor
        if (grad == null) setGrad(add);
        else {
            Tensor sum = grad.add(add);
            add.close();
            setGrad(sum);
        }
    }

    /**
     * In-place update: this ← src (broadcast to this shape, converted to this dtype). Not recorded;
     * for optimisers and loaders, outside autograd (an error on a leaf that needs a gradient while
     * recording is on).
     */
    public Tensor assign(Tensor src) {
        if (requiresGrad && Autograd.enabled())
            throw new IllegalStateException("assign: in-place update of a tensor that requires grad; use Autograd.noGrad()");
        Check.sameDevice("assign", this, src);
        try (var g = Autograd.noGrad()) {
            Tensor s = src.expand(shape);
            backend().copy(s, this);
        }
        return this;
    }

    /** The same data, outside the graph. */
    public Tensor detach() {
        return new Tensor(storage(), dtype, shape, strides, offset);
    }

    // ---------------------------------------------------------------- views

    /** A view with a new shape (one entry may be −1); copies only when the strides do not allow a view. */
    public Tensor reshape(int... newShape) {
        int[] s = inferShape("reshape", newShape);
        long[] st = viewStrides(s);
        Tensor base = st != null ? this : contiguous();
        Tensor out = base.viewOf(s, st != null ? st : contiguousStrides(s), base.offset);
        return recordView("reshape", out, new ReshapeBackward(shape));
    }

    /** A view with a new shape; an error when the strides do not allow one. */
    public Tensor view(int... newShape) {
        int[] s = inferShape("view", newShape);
        long[] st = viewStrides(s);
        if (st == null)
            throw Check.fail("view", "cannot view %s with strides %s as %s without a copy: use reshape()",
                    Check.str(shape), Arrays.toString(strides), Check.str(s));
        return recordView("view", viewOf(s, st, offset), new ReshapeBackward(shape));
    }

    public Tensor flatten() { return reshape(-1); }

    public Tensor permute(int... dims) {
        if (dims.length != shape.length) throw Check.fail("permute", "%d dims given for a tensor %s", dims.length, Check.str(shape));
        int[] s = new int[dims.length], inverse = new int[dims.length];
        long[] st = new long[dims.length];
        boolean[] used = new boolean[dims.length];
        for (int i = 0; i < dims.length; i++) {
            int d = Check.dim("permute", dims[i], shape.length);
            if (used[d]) throw Check.fail("permute", "dim %d repeated in %s", d, Arrays.toString(dims));
            used[d] = true;
            s[i] = shape[d];
            st[i] = strides[d];
            inverse[d] = i;
        }
        return recordView("permute", viewOf(s, st, offset), new PermuteBackward(inverse));
    }

    public Tensor transpose(int d0, int d1) {
        int a = Check.dim("transpose", d0, shape.length), b = Check.dim("transpose", d1, shape.length);
        int[] p = new int[shape.length];
        for (int i = 0; i < p.length; i++) p[i] = i;
        p[a] = b;
        p[b] = a;
        return permute(p);
    }

    /** The last two axes swapped. */
    public Tensor mT() {
        if (shape.length < 2) throw Check.fail("mT", "needs rank ≥ 2, got %s", Check.str(shape));
        return transpose(-2, -1);
    }

    /** Elements start … start+length−1 along dim, as a view. */
    public Tensor narrow(int dim, long start, long length) { return slice(dim, start, start + length, 1); }

    /** Elements start, start+step, … below end along dim, as a view (negative start/end count from the end). */
    public Tensor slice(int dim, long start, long end, long step) {
        int d = Check.dim("slice", dim, shape.length);
        if (step <= 0) throw Check.fail("slice", "step %d must be positive", step);
        long n = shape[d];
        if (start < 0) start += n;
        if (end < 0) end += n;
        end = Math.min(end, n);
        if (start < 0 || start > n || end < start)
            throw Check.fail("slice", "range [%d, %d) out of bounds for dim %d of size %d in %s", start, end, d, n, Check.str(shape));
        int[] s = shape.clone();
        long[] st = strides.clone();
        s[d] = (int) ((end - start + step - 1) / step);
        st[d] = strides[d] * step;
        Tensor out = viewOf(s, st, offset + start * strides[d]);
        return recordView("slice", out, new SliceBackward(shape, d, start, start + (long) s[d] * step, step));
    }

    /** This tensor broadcast to {@code newShape} (−1 keeps an axis), as a view with stride 0. */
    public Tensor expand(int... newShape) {
        if (newShape.length < shape.length)
            throw Check.fail("expand", "cannot expand %s to fewer dims %s", Check.str(shape), Check.str(newShape));
        int lead = newShape.length - shape.length;
        int[] s = new int[newShape.length];
        long[] st = new long[newShape.length];
        for (int i = 0; i < newShape.length; i++) {
            int want = newShape[i];
            if (i < lead) {
                if (want < 0) throw Check.fail("expand", "-1 not allowed for a new leading dim: %s", Check.str(newShape));
                s[i] = want;
                st[i] = 0;
                continue;
            }
            int have = shape[i - lead];
            if (want == -1 || want == have) {
                s[i] = have;
                st[i] = strides[i - lead];
            } else if (have == 1) {
                s[i] = want;
                st[i] = 0;
            } else throw Check.fail("expand", "cannot expand %s to %s (axis %d: %d vs %d)", Check.str(shape), Check.str(newShape), i, have, want);
        }
        if (Arrays.equals(s, shape)) return this;
        return recordView("expand", viewOf(s, st, offset), new ExpandBackward(shape));
    }

    /** Removes axis dim, which must have size 1. */
    public Tensor squeeze(int dim) {
        int d = Check.dim("squeeze", dim, shape.length);
        if (shape[d] != 1) throw Check.fail("squeeze", "dim %d has size %d, not 1, in %s", d, shape[d], Check.str(shape));
        int[] s = new int[shape.length - 1];
        long[] st = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++)
            if (i != d) { s[j] = shape[i]; st[j++] = strides[i]; }
        return recordView("squeeze", viewOf(s, st, offset), new ReshapeBackward(shape));
    }

    /** Inserts an axis of size 1 at dim (−1 appends). */
    public Tensor unsqueeze(int dim) {
        int d = Check.dim("unsqueeze", dim, shape.length + 1);
        int[] s = new int[shape.length + 1];
        long[] st = new long[shape.length + 1];
        for (int i = 0, j = 0; i < s.length; i++) {
            if (i == d) { s[i] = 1; st[i] = d < shape.length ? strides[d] * shape[d] : 1; }
            else { s[i] = shape[j]; st[i] = strides[j++]; }
        }
        return recordView("unsqueeze", viewOf(s, st, offset), new ReshapeBackward(shape));
    }

    /**
     * A view with arbitrary sizes and strides over this tensor's elements (offsets relative to its
     * first element). Elements may repeat (sliding windows); the gradient adds over repeats.
     */
    public Tensor asStrided(int[] newShape, long[] newStrides, long extraOffset) {
        checkShape("asStrided", newShape);
        if (!isContiguous()) throw Check.fail("asStrided", "needs a contiguous tensor, got strides %s", Arrays.toString(strides));
        long max = extraOffset;
        for (int i = 0; i < newShape.length; i++) if (newShape[i] > 0) max += (newShape[i] - 1L) * newStrides[i];
        if (extraOffset < 0 || max >= Math.max(1, numel()))
            throw Check.fail("asStrided", "view %s strides %s offset %d reaches outside %s", Check.str(newShape), Arrays.toString(newStrides), extraOffset, Check.str(shape));
        Tensor out = viewOf(newShape.clone(), newStrides.clone(), offset + extraOffset);
        return recordView("asStrided", out, new AsStridedBackward(shape, newShape.clone(), newStrides.clone(), extraOffset));
    }

    /** This tensor if contiguous, else a contiguous copy. */
    public Tensor contiguous() {
        if (isContiguous()) return this;
        return copy();
    }

    /** A contiguous copy (differentiable). */
    public Tensor copy() {
        Tensor out = empty(device(), dtype, shape);
        backend().copy(this, out);
        return Autograd.record("copy", out, new CopyBackward(), this);
    }

    public Tensor to(DType target) {
        if (target == dtype) return this;
        Tensor out = empty(device(), target, shape);
        backend().copy(this, out);
        if (!target.floating) return out;                   // integer results carry no gradient
        return Autograd.record("to", out, new ToDTypeBackward(dtype), this);
    }

    public Tensor to(Device target) {
        if (target.equals(device())) return this;
        Tensor src = contiguous();
        Tensor out;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(numel() * dtype.byteSize, 8);
            src.backend().toHost(src, host);
            out = fromHost(target, dtype, host, shape);
        }
        if (src != this) src.close();
        return Autograd.record("toDevice", out, new ToDeviceBackward(device()), this);
    }

    private Tensor viewOf(int[] s, long[] st, long off) {
        return new Tensor(storage(), dtype, s, st, off);
    }

    private Tensor recordView(String op, Tensor out, Autograd.Backward back) {
        return Autograd.record(op, out, back, this);
    }

    /*
     * Backward rules of views and copies. Views keep only shapes and strides: the gradient of a view
     * does not depend on the values.
     */

    /** reshape, view, squeeze, unsqueeze: dx = dy reshaped back. */
    record ReshapeBackward(int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.reshape(inputShape)}; }
    }

    /** dx = dy permuted by the inverse permutation. */
    record PermuteBackward(int[] inverse) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.permute(inverse)}; }
    }

    /** dx = zeros with dy added into the sliced positions. */
    record SliceBackward(int[] inputShape, int dim, long start, long end, long step) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = Tensor.zeros(dy.device(), dy.dtype(), inputShape);
            dx.backend().addInto(dx.slice(dim, start, end, step), dy);
            return new Tensor[] {dx};
        }
    }

    /** dx = dy summed over the broadcast axes. */
    record ExpandBackward(int[] inputShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {Reductions.sumTo(dy, inputShape)}; }
    }

    /** dx = zeros with dy added through the same window (repeated elements add up). */
    record AsStridedBackward(int[] inputShape, int[] viewShape, long[] viewStrides, long offset) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = Tensor.zeros(dy.device(), dy.dtype(), inputShape);
            Tensor window = new Tensor(dx.storage(), dx.dtype, viewShape.clone(), viewStrides.clone(), offset);
            dx.backend().addInto(window, dy);
            window.close();
            return new Tensor[] {dx};
        }
    }

    /** dx = dy. */
    record CopyBackward() implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy}; }
    }

    /** dx = dy converted back to the input's dtype. */
    record ToDTypeBackward(DType from) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.to(from)}; }
    }

    /** dx = dy copied back to the input's device. */
    record ToDeviceBackward(Device from) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.to(from)}; }
    }

    private int[] inferShape(String op, int[] newShape) {
        int infer = -1;
        long known = 1;
        for (int i = 0; i < newShape.length; i++) {
            if (newShape[i] == -1) {
                if (infer >= 0) throw Check.fail(op, "more than one -1 in %s", Check.str(newShape));
                infer = i;
            } else if (newShape[i] < 0) throw Check.fail(op, "negative size in %s", Check.str(newShape));
            else known *= newShape[i];
        }
        int[] s = newShape.clone();
        long n = numel();
        if (infer >= 0) {
            if (known == 0 || n % known != 0) throw Check.fail(op, "cannot reshape %s (%d elements) to %s", Check.str(shape), n, Check.str(newShape));
            s[infer] = (int) (n / known);
        } else if (known != n) throw Check.fail(op, "cannot reshape %s (%d elements) to %s (%d elements)", Check.str(shape), n, Check.str(newShape), known);
        return s;
    }

    /** Strides that view this tensor's elements in row-major order as newShape, or null if impossible (PyTorch's computeStride). */
    private long[] viewStrides(int[] newShape) {
        long[] out = new long[newShape.length];
        if (numel() == 0) return contiguousStrides(newShape);
        int viewD = newShape.length - 1;
        long chunkBase = shape.length == 0 ? 1 : strides[shape.length - 1];
        long tensorNumel = 1, viewNumel = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            tensorNumel *= shape[d];
            if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorNumel * chunkBase)) {
                while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1)) {
                    out[viewD] = viewNumel * chunkBase;
                    viewNumel *= newShape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0) {
                    chunkBase = strides[d - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        if (viewD != -1) {
            // remaining leading size-1 axes
            for (; viewD >= 0; viewD--) {
                if (newShape[viewD] != 1) return null;
                out[viewD] = 1;
            }
        }
        return out;
    }

    // ---------------------------------------------------------------- element-wise

    public Tensor add(Tensor o) { return Elementwise.binary(BinaryOp.ADD, this, o); }
    public Tensor sub(Tensor o) { return Elementwise.binary(BinaryOp.SUB, this, o); }
    public Tensor mul(Tensor o) { return Elementwise.binary(BinaryOp.MUL, this, o); }
    public Tensor div(Tensor o) { return Elementwise.binary(BinaryOp.DIV, this, o); }
    public Tensor pow(Tensor o) { return Elementwise.binary(BinaryOp.POW, this, o); }
    public Tensor maximum(Tensor o) { return Elementwise.binary(BinaryOp.MAXIMUM, this, o); }
    public Tensor minimum(Tensor o) { return Elementwise.binary(BinaryOp.MINIMUM, this, o); }
    public Tensor eq(Tensor o) { return Elementwise.binary(BinaryOp.EQ, this, o); }
    public Tensor ne(Tensor o) { return Elementwise.binary(BinaryOp.NE, this, o); }
    public Tensor lt(Tensor o) { return Elementwise.binary(BinaryOp.LT, this, o); }
    public Tensor le(Tensor o) { return Elementwise.binary(BinaryOp.LE, this, o); }
    public Tensor gt(Tensor o) { return Elementwise.binary(BinaryOp.GT, this, o); }
    public Tensor ge(Tensor o) { return Elementwise.binary(BinaryOp.GE, this, o); }
    public Tensor logicalAnd(Tensor o) { return Elementwise.binary(BinaryOp.AND, this, o); }
    public Tensor logicalOr(Tensor o) { return Elementwise.binary(BinaryOp.OR, this, o); }

    public Tensor add(double c) { return Elementwise.unary(UnaryOp.AFFINE, this, 1, c); }
    public Tensor sub(double c) { return Elementwise.unary(UnaryOp.AFFINE, this, 1, -c); }
    public Tensor mul(double c) { return Elementwise.unary(UnaryOp.AFFINE, this, c, 0); }
    public Tensor div(double c) { return Elementwise.binary(BinaryOp.DIV, this, Elementwise.constant(this, c)); }
    /** c − this */
    public Tensor rsub(double c) { return Elementwise.unary(UnaryOp.AFFINE, this, -1, c); }
    public Tensor pow(double p) { return Elementwise.unary(UnaryOp.POW, this, p, 0); }
    public Tensor eq(double c) { return eq(Elementwise.constant(this, c)); }
    public Tensor ne(double c) { return ne(Elementwise.constant(this, c)); }
    public Tensor lt(double c) { return lt(Elementwise.constant(this, c)); }
    public Tensor le(double c) { return le(Elementwise.constant(this, c)); }
    public Tensor gt(double c) { return gt(Elementwise.constant(this, c)); }
    public Tensor ge(double c) { return ge(Elementwise.constant(this, c)); }

    public Tensor neg() { return Elementwise.unary(UnaryOp.NEG, this, 0, 0); }
    public Tensor exp() { return Elementwise.unary(UnaryOp.EXP, this, 0, 0); }
    public Tensor log() { return Elementwise.unary(UnaryOp.LOG, this, 0, 0); }
    public Tensor sqrt() { return Elementwise.unary(UnaryOp.SQRT, this, 0, 0); }
    public Tensor rsqrt() { return Elementwise.unary(UnaryOp.RSQRT, this, 0, 0); }
    public Tensor square() { return mul(this); }
    public Tensor tanh() { return Elementwise.unary(UnaryOp.TANH, this, 0, 0); }
    public Tensor sigmoid() { return Elementwise.unary(UnaryOp.SIGMOID, this, 0, 0); }
    public Tensor silu() { return Elementwise.unary(UnaryOp.SILU, this, 0, 0); }
    /** GELU with the exact erf form. */
    public Tensor gelu() { return Elementwise.unary(UnaryOp.GELU_ERF, this, 0, 0); }
    /** GELU with the tanh approximation. */
    public Tensor geluTanh() { return Elementwise.unary(UnaryOp.GELU_TANH, this, 0, 0); }
    public Tensor relu() { return Elementwise.unary(UnaryOp.RELU, this, 0, 0); }
    public Tensor abs() { return Elementwise.unary(UnaryOp.ABS, this, 0, 0); }
    public Tensor clamp(double min, double max) {
        if (min > max) throw Check.fail("clamp", "min %s > max %s", min, max);
        return Elementwise.unary(UnaryOp.CLAMP, this, min, max);
    }

    /** cond ? x : y, broadcasting all three. */
    public static Tensor where(Tensor cond, Tensor x, Tensor y) { return Elementwise.where(cond, x, y); }

    /** This tensor with {@code value} where mask is true. */
    public Tensor maskedFill(Tensor mask, double value) {
        if (mask.dtype != DType.BOOL) throw Check.fail("maskedFill", "mask must be bool, got %s", mask.dtype.lower());
        return Elementwise.where(mask, Elementwise.constant(this, value), this);
    }

    /** Zeroes each element with probability p and scales the rest by 1/(1−p); identity when not training. */
    public Tensor dropout(double p, Generator gen, boolean training) {
        if (p < 0 || p >= 1) throw Check.fail("dropout", "p=%s must be in [0, 1)", p);
        if (!training || p == 0) return this;
        Tensor keep = rand(gen, DType.F32, shape).to(device()).ge(p);
        Tensor out = mul(keep.to(dtype)).mul(1 / (1 - p));
        keep.close();
        return out;
    }

    // ---------------------------------------------------------------- reductions

    public Tensor sum() { return Reductions.sum(this, allDims(), false); }
    public Tensor sum(int dim, boolean keepdim) { return Reductions.sum(this, new int[] {dim}, keepdim); }
    public Tensor sum(int[] dims, boolean keepdim) { return Reductions.sum(this, dims, keepdim); }
    public Tensor mean() { return Reductions.mean(this, allDims(), false); }
    public Tensor mean(int dim, boolean keepdim) { return Reductions.mean(this, new int[] {dim}, keepdim); }
    public Tensor mean(int[] dims, boolean keepdim) { return Reductions.mean(this, dims, keepdim); }
    /** Maximum over all elements. */
    public Tensor max() { return reshape(-1).max(0, false); }
    public Tensor max(int dim, boolean keepdim) { return Reductions.max(this, dim, keepdim); }
    public Tensor min(int dim, boolean keepdim) { return neg().max(dim, keepdim).neg(); }
    public Tensor argmax(int dim, boolean keepdim) { return Reductions.arg(ReduceOp.ARGMAX, this, dim, keepdim); }
    public Tensor argmin(int dim, boolean keepdim) { return Reductions.arg(ReduceOp.ARGMIN, this, dim, keepdim); }
    public Tensor logsumexp(int dim, boolean keepdim) { return Reductions.logsumexp(this, dim, keepdim); }
    /** Variance with Bessel's correction given (1 for the unbiased estimate, 0 for the population). */
    public Tensor var(int dim, boolean keepdim, int correction) { return Reductions.var(this, dim, keepdim, correction); }

    private int[] allDims() {
        int[] d = new int[shape.length];
        for (int i = 0; i < d.length; i++) d[i] = i;
        return d;
    }

    // ---------------------------------------------------------------- linear algebra and nn

    /** Batched, broadcasting matrix product (PyTorch's matmul rules, 1-D operands included). */
    public Tensor matmul(Tensor o) { return MatmulOp.matmul(this, o); }

    public Tensor softmax(int dim) { return dev.jomni.tensor.ops.Softmax.softmax(this, dim); }
    public Tensor logSoftmax(int dim) { return dev.jomni.tensor.ops.Softmax.logSoftmax(this, dim); }

    /** y = x·rstd·w, rstd = 1/√(mean(x²) + eps) over the last axis, computed in f32 or wider. */
    public Tensor rmsNorm(Tensor weight, double eps) { return dev.jomni.tensor.ops.RmsNorm.rmsNorm(this, weight, eps); }

    /**
     * Attention of this query [B, nh, T, d] over k, v [B, nkv, S, d] (grouped-query: nh a multiple of
     * nkv, no K/V copies), scale 1/√d, keys hidden as {@code mask} describes (null: none).
     */
    public Tensor scaledDotProductAttention(Tensor k, Tensor v, dev.jomni.tensor.ops.AttentionMask mask) {
        return dev.jomni.tensor.ops.ScaledDotProductAttention.scaledDotProductAttention(this, k, v, mask);
    }

    /** Layer normalisation over the last axis; weight and bias may be null. */
    public Tensor layerNorm(Tensor weight, Tensor bias, double eps) { return Norms.layerNorm(this, weight, bias, eps); }

    /**
     * Mean cross-entropy of logits [..., C] (classes on the LAST axis) against I64 targets [...],
     * over targets that are not {@code ignoreIndex}; NaN when none is valid, as in PyTorch.
     */
    public Tensor crossEntropy(Tensor targets, long ignoreIndex) { return dev.jomni.tensor.ops.CrossEntropy.crossEntropy(this, targets, ignoreIndex); }

    /**
     * Fused linear cross-entropy: {@code matmul(weight.mT()).crossEntropy(targets, ignoreIndex)} for
     * this [N, H] and weight [V, H], computed in chunks that never hold the [N, V] logits.
     */
    public Tensor linearCrossEntropy(Tensor weight, Tensor targets, long ignoreIndex) {
        return dev.jomni.tensor.ops.LinearCrossEntropy.linearCrossEntropy(this, weight, targets, ignoreIndex);
    }

    /** 2-D convolution of [B, C, H, W] with weight [O, C, kh, kw] and optional bias [O]. */
    public Tensor conv2d(Tensor weight, Tensor bias, int stride, int padding) { return Conv2dOp.conv2d(this, weight, bias, stride, padding); }

    /** Zero padding of the last axes: {@code pad(left, right)} for the last, then (top, bottom) for the one before, … */
    public Tensor pad(int... amounts) { return Indexing.pad(this, amounts); }

    // ---------------------------------------------------------------- indexing

    /** Rows of this [V, …] table at ids (any shape): result ids.shape + [ …]. */
    public Tensor embedding(Tensor ids) { return Indexing.embedding(this, ids); }
    public Tensor indexSelect(int dim, Tensor index) { return Indexing.indexSelect(this, dim, index); }
    /** A copy of this tensor with src's slices added at index along dim (out of place index_add). */
    public Tensor indexAdd(int dim, Tensor index, Tensor src) { return Indexing.indexAdd(this, dim, index, src); }
    public Tensor gather(int dim, Tensor index) { return Indexing.gather(this, dim, index); }
    /** A copy of this tensor with src added at index along dim (out of place scatter_add). */
    public Tensor scatterAdd(int dim, Tensor index, Tensor src) { return Indexing.scatterAdd(this, dim, index, src); }
    public static Tensor cat(List<Tensor> tensors, int dim) { return Indexing.cat(tensors, dim); }
    public static Tensor stack(List<Tensor> tensors, int dim) { return Indexing.stack(tensors, dim); }
    /** Pieces of {@code size} along dim (the last may be shorter), as views. */
    public List<Tensor> split(int size, int dim) { return Indexing.split(this, size, dim); }
    /** {@code chunks} pieces along dim, as views (PyTorch's chunk sizes). */
    public List<Tensor> chunk(int chunks, int dim) { return Indexing.chunk(this, chunks, dim); }
    public Sorted sort(int dim, boolean descending) { return Indexing.sort(this, dim, descending); }
    public Tensor argsort(int dim, boolean descending) { return Indexing.argsort(this, dim, descending); }
    /** The k largest (or smallest) along dim, in order. */
    public Sorted topk(int k, int dim, boolean largest) { return Indexing.topk(this, k, dim, largest); }
    public Tensor cumsum(int dim) { return Indexing.cumsum(this, dim); }
    /** I64 one-hot of an integer tensor: shape + [numClasses]. */
    public Tensor oneHot(int numClasses) { return Indexing.oneHot(this, numClasses); }

    /** Values and their I64 indices along an axis (sort and topk). */
    public record Sorted(Tensor values, Tensor indices) {}

    // ---------------------------------------------------------------- shape helpers

    public static long numel(int[] shape) {
        long n = 1;
        for (int s : shape) n *= s;
        return n;
    }

    public static long[] contiguousStrides(int[] shape) {
        long[] st = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = s;
            s *= shape[i];
        }
        return st;
    }

    private static void checkShape(String op, int[] shape) {
        for (int s : shape) if (s < 0) throw Check.fail(op, "negative size in shape %s", Check.str(shape));
    }

    private static void checkLength(int length, int[] shape) {
        checkShape("of", shape);
        if (length != numel(shape)) throw Check.fail("of", "%d values for shape %s (%d elements)", length, Check.str(shape), numel(shape));
    }
}

package dev.jomni.nn.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A dense tensor in C (row-major) order as bytes: element type, shape, and exactly
 * numel × dtype.bytes() little-endian bytes. The segment may live on the heap, off-heap or in a
 * mapped file; readers hand out read-only segments. What {@link Npy} and {@link SafeTensors} read and
 * write.
 */
public record TensorData(StoredDType dtype, long[] shape, MemorySegment bytes) {
    public TensorData {
        shape = shape.clone();
        long n = numel(shape);
        if (bytes.byteSize() != n * dtype.bytes())
            throw new IllegalArgumentException("TensorData: " + dtype + " " + Arrays.toString(shape) + " needs "
                    + n * dtype.bytes() + " bytes, got " + bytes.byteSize());
    }

    /** Product of the dimensions (1 for a scalar); throws on a negative dimension or overflow. */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long numel() { return numel(shape); }

    /** A CPU tensor over these bytes, without copying (valid while the bytes are). */
    public dev.jomni.tensor.Tensor toTensor() {
        int[] dims = new int[shape.length];
        for (int i = 0; i < dims.length; i++) dims[i] = Math.toIntExact(shape[i]);
        return dev.jomni.tensor.Tensor.wrap(bytes, dtype.tensorType(), dims);
    }

    /** The elements of {@code t} (any device, any strides) copied into heap memory. */
    public static TensorData of(dev.jomni.tensor.Tensor t) {
        long[] dims = new long[t.rank()];
        for (int i = 0; i < dims.length; i++) dims[i] = t.size(i);
        return new TensorData(StoredDType.of(t.dtype()), dims, t.toHost(java.lang.foreign.Arena.ofAuto()));
    }

    /** Every element converted to float (rounding F64 and large integers). */
    public float[] toFloats() {
        int n = arrayLength();
        var out = new float[n];
        switch (dtype) {
            case F32 -> MemorySegment.copy(bytes, StoredDType.FLOAT, 0, out, 0, n);
            default -> { for (int i = 0; i < n; i++) out[i] = (float) dtype.getDouble(bytes, i); }
        }
        return out;
    }

    public double[] toDoubles() {
        int n = arrayLength();
        var out = new double[n];
        for (int i = 0; i < n; i++) out[i] = dtype.getDouble(bytes, i);
        return out;
    }

    /** Integer and BOOL tensors only: floating-point values are refused rather than truncated. */
    public long[] toLongs() {
        requireInteger("toLongs");
        int n = arrayLength();
        var out = new long[n];
        if (dtype == StoredDType.I64) MemorySegment.copy(bytes, StoredDType.LONG, 0, out, 0, n);
        else for (int i = 0; i < n; i++) out[i] = dtype.getLong(bytes, i);
        return out;
    }

    /** Integer and BOOL tensors only; values outside the int range are an error. */
    public int[] toInts() {
        requireInteger("toInts");
        int n = arrayLength();
        var out = new int[n];
        for (int i = 0; i < n; i++) {
            long v = dtype.getLong(bytes, i);
            if (v != (int) v) throw new ArithmeticException("toInts: element " + i + " = " + v + " does not fit an int");
            out[i] = (int) v;
        }
        return out;
    }

    public static TensorData ofFloats(float[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 4)]);
        MemorySegment.copy(values, 0, seg, StoredDType.FLOAT, 0, values.length);
        return new TensorData(StoredDType.F32, shape, seg);
    }

    public static TensorData ofDoubles(double[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 8)]);
        MemorySegment.copy(values, 0, seg, StoredDType.DOUBLE, 0, values.length);
        return new TensorData(StoredDType.F64, shape, seg);
    }

    public static TensorData ofLongs(long[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 8)]);
        MemorySegment.copy(values, 0, seg, StoredDType.LONG, 0, values.length);
        return new TensorData(StoredDType.I64, shape, seg);
    }

    public static TensorData ofInts(int[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 4)]);
        MemorySegment.copy(values, 0, seg, StoredDType.INT, 0, values.length);
        return new TensorData(StoredDType.I32, shape, seg);
    }

    /** float32 values rounded to bf16 (nearest even). */
    public static TensorData ofBf16(float[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 2)]);
        for (int i = 0; i < values.length; i++) seg.set(StoredDType.SHORT, 2L * i, HalfPrecision.floatToBf16(values[i]));
        return new TensorData(StoredDType.BF16, shape, seg);
    }

    /** float32 values rounded to f16 (nearest even). */
    public static TensorData ofF16(float[] values, long... shape) {
        var seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 2)]);
        for (int i = 0; i < values.length; i++) seg.set(StoredDType.SHORT, 2L * i, HalfPrecision.floatToF16(values[i]));
        return new TensorData(StoredDType.F16, shape, seg);
    }

    /** Raw little-endian bytes (copied). */
    public static TensorData ofBytes(StoredDType dtype, long[] shape, byte[] bytes) {
        return new TensorData(dtype, shape, MemorySegment.ofArray(bytes.clone()));
    }

    /** The bytes as a fresh heap array. */
    public byte[] toByteArray() {
        return bytes.toArray(ValueLayout.JAVA_BYTE);
    }

    private int arrayLength() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) throw new IllegalStateException(this + " has too many elements for a Java array");
        return (int) n;
    }

    private void requireInteger(String op) {
        if (dtype.isFloatingPoint())
            throw new IllegalStateException(op + ": " + this + " holds floating-point values; use toFloats()");
    }

    @Override public String toString() { return dtype + Arrays.toString(shape); }

    @Override public boolean equals(Object o) {
        return o instanceof TensorData t && t.dtype == dtype && Arrays.equals(t.shape, shape)
                && bytes.mismatch(t.bytes) == -1;
    }

    @Override public int hashCode() { return 31 * dtype.hashCode() + Arrays.hashCode(shape); }
}

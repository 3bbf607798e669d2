package dev.jomni.nn.io;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a safetensors checkpoint: its name, element type, shape, its bytes as a read-only
 * slice of the memory-mapped file (valid until the {@link SafeTensors} that opened it is closed), and
 * the file it lives in, for error messages.
 */
public record StoredTensor(String name, StoredDType dtype, long[] shape, MemorySegment bytes, Path file) {
    public StoredTensor {
        shape = shape.clone();
    }

    public long numel() { return TensorData.numel(shape); }

    /** The same bytes, without name and file (e.g. to write them elsewhere). */
    public TensorData data() { return new TensorData(dtype, shape, bytes); }

    /** Copies the elements to a float array on the heap (for small tensors and tests). */
    public float[] toFloats() { return data().toFloats(); }

    /** "name BF16[64, 32] in file", the form error messages use. */
    @Override public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " in " + file;
    }
}

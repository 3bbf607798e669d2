package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.HalfPrecision;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.TensorAccess;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * f32 lanes read from and written to f32 or bf16 memory, for the Vector API paths of the element-wise
 * ops and row reductions: the arithmetic is written once over {@link FloatVector}s, the dtype only
 * changes how lanes are loaded and stored. bf16 → f32 is exact (the top half of a float); f32 → bf16
 * rounds to nearest even and keeps NaN a quiet NaN, bit for bit as {@link HalfPrecision#floatToBf16}.
 * Floating reductions of lanes go in a fixed order ({@link #sum}): {@code reduceLanes(ADD)} may add in
 * another order once C2 compiles it than in the interpreter, so the same inputs could give different bits
 * from one call to the next. (For the same reason the coarse ops call Math.exp per element rather than
 * the vector EXP, whose intrinsic and fallback differ by an ulp.)
 */
final class Lanes {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** As many shorts as F has floats (half its width). */
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    static final int LANES = F.length();
    static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private Lanes() {}

    /** Σ lanes, left to right; {@code scratch} holds at least the vector's length. */
    static float sum(FloatVector v, float[] scratch) {
        v.intoArray(scratch, 0);
        float s = 0;
        for (int i = 0, n = v.length(); i < n; i++) s += scratch[i];
        return s;
    }

    /** Whether t's elements can be read or written as f32 lanes. */
    static boolean lanes(Tensor t) { return t.dtype() == DType.F32 || t.dtype() == DType.BF16; }

    /** A contiguous f32 or bf16 tensor's elements: memory, dtype and the byte address of element 0. */
    record View(MemorySegment seg, boolean bf16, long base) {
        static View of(Tensor t) {
            boolean bf16 = t.dtype() == DType.BF16;
            return new View(CpuBackend.seg(t), bf16, TensorAccess.offset(t) * (bf16 ? 2 : 4));
        }

        /** Lanes i … i + LANES − 1. */
        FloatVector load(long i) {
            if (!bf16) return FloatVector.fromMemorySegment(F, seg, base + 4 * i, ORDER);
            ShortVector bits = ShortVector.fromMemorySegment(S, seg, base + 2 * i, ORDER);
            return ((IntVector) bits.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }

        void store(long i, FloatVector v) {
            if (!bf16) {
                v.intoMemorySegment(seg, base + 4 * i, ORDER);
                return;
            }
            IntVector bits = v.reinterpretAsInts();
            IntVector high = bits.lanewise(VectorOperators.LSHR, 16);
            IntVector rounded = bits.add(0x7FFF).add(high.lanewise(VectorOperators.AND, 1)).lanewise(VectorOperators.LSHR, 16);
            VectorMask<Integer> nan = bits.lanewise(VectorOperators.AND, 0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
            IntVector out = rounded.blend(high.lanewise(VectorOperators.OR, 0x0040), nan);
            ((ShortVector) out.convertShape(VectorOperators.I2S, S, 0)).intoMemorySegment(seg, base + 2 * i, ORDER);
        }

        float get(long i) {
            return bf16 ? HalfPrecision.bf16ToFloat(seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2 * i))
                        : seg.get(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4 * i);
        }

        void set(long i, float v) {
            if (bf16) seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2 * i, HalfPrecision.floatToBf16(v));
            else seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4 * i, v);
        }

        /** Lanes i … end − 1 (fewer than LANES), the rest 0: a tail goes through the same vector code. */
        FloatVector loadTail(long i, long end) {
            float[] a = new float[LANES];
            for (int k = 0; i + k < end; k++) a[k] = get(i + k);
            return FloatVector.fromArray(F, a, 0);
        }

        void storeTail(long i, long end, FloatVector v) {
            for (int k = 0; i + k < end; k++) set(i + k, v.lane(k));
        }
    }
}

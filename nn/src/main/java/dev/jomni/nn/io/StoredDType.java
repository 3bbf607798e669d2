package dev.jomni.nn.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element types as files store them (safetensors names, NumPy descriptors); always little-endian.
 * The conversions read segments of any alignment, so a tensor at an odd file offset reads the same.
 */
public enum StoredDType {
    BF16(2, "BF16", null),
    F16(2, "F16", "<f2"),
    F32(4, "F32", "<f4"),
    F64(8, "F64", "<f8"),
    I64(8, "I64", "<i8"),
    I32(4, "I32", "<i4"),
    I16(2, "I16", "<i2"),
    I8(1, "I8", "|i1"),
    U8(1, "U8", "|u1"),
    BOOL(1, "BOOL", "|b1");

    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int bytes;
    private final String safetensorsName;
    private final String npyDescr;

    StoredDType(int bytes, String safetensorsName, String npyDescr) {
        this.bytes = bytes;
        this.safetensorsName = safetensorsName;
        this.npyDescr = npyDescr;
    }

    /** Bytes per element. */
    public int bytes() { return bytes; }

    /** The {@code dtype} string of a safetensors header. */
    public String safetensorsName() { return safetensorsName; }

    /** The little-endian NumPy descriptor ({@code <f4}, {@code |u1}), or null where NumPy has none (BF16). */
    public String npyDescr() { return npyDescr; }

    public boolean isFloatingPoint() { return this == BF16 || this == F16 || this == F32 || this == F64; }

    /** The tensor dtype of the same name; I16 and I8 have none. */
    public dev.jomni.tensor.DType tensorType() {
        return switch (this) {
            case BF16 -> dev.jomni.tensor.DType.BF16;
            case F16 -> dev.jomni.tensor.DType.F16;
            case F32 -> dev.jomni.tensor.DType.F32;
            case F64 -> dev.jomni.tensor.DType.F64;
            case I64 -> dev.jomni.tensor.DType.I64;
            case I32 -> dev.jomni.tensor.DType.I32;
            case U8 -> dev.jomni.tensor.DType.U8;
            case BOOL -> dev.jomni.tensor.DType.BOOL;
            case I16, I8 -> throw new IllegalArgumentException(this + " tensors are not supported by the tensor library (no " + this + " dtype)");
        };
    }

    public static StoredDType of(dev.jomni.tensor.DType t) {
        return switch (t) {
            case BF16 -> BF16;
            case F16 -> F16;
            case F32 -> F32;
            case F64 -> F64;
            case I64 -> I64;
            case I32 -> I32;
            case U8 -> U8;
            case BOOL -> BOOL;
        };
    }

    /** The type a safetensors header names, or null if it is not one of these. */
    public static StoredDType fromSafetensorsName(String name) {
        for (var t : values()) if (t.safetensorsName.equals(name)) return t;
        return null;
    }

    /** Element i of {@code data} as a double (exact for every type except I64 beyond 2^53). */
    double getDouble(MemorySegment data, long i) {
        long at = i * bytes;
        return switch (this) {
            case BF16 -> HalfPrecision.bf16ToFloat(data.get(SHORT, at));
            case F16 -> HalfPrecision.f16ToFloat(data.get(SHORT, at));
            case F32 -> data.get(FLOAT, at);
            case F64 -> data.get(DOUBLE, at);
            case I64 -> data.get(LONG, at);
            case I32 -> data.get(INT, at);
            case I16 -> data.get(SHORT, at);
            case I8 -> data.get(ValueLayout.JAVA_BYTE, at);
            case U8, BOOL -> data.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
        };
    }

    /** Element i of an integer or BOOL segment; floating-point types are refused by the caller. */
    long getLong(MemorySegment data, long i) {
        long at = i * bytes;
        return switch (this) {
            case I64 -> data.get(LONG, at);
            case I32 -> data.get(INT, at);
            case I16 -> data.get(SHORT, at);
            case I8 -> data.get(ValueLayout.JAVA_BYTE, at);
            case U8, BOOL -> data.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
            case BF16, F16, F32, F64 -> throw new IllegalStateException(this + " is not an integer type");
        };
    }
}

package dev.jomni.tensor;

/** Element types. Floating types compute with at least f32 accumulation; bf16/f16 are storage formats. */
public enum DType {
    F64(0, 8, true), F32(1, 4, true), BF16(2, 2, true), F16(3, 2, true), I64(4, 8, false), I32(5, 4, false), U8(6, 1, false),
    BOOL(7, 1, false);

    /** The number the CUDA kernels know this type by (kernels/src/main/cuda/codes.cuh, DT_<name>; CodesTest checks them). */
    public final int code;
    public final int byteSize;
    public final boolean floating;

    DType(int code, int byteSize, boolean floating) {
        this.code = code;
        this.byteSize = byteSize;
        this.floating = floating;
    }

    /** The type of a binary op's result: floating beats integer, the wider float wins, bf16 with f16 gives f32. */
    public static DType promote(DType a, DType b) {
        if (a == b) return a;
        if (a.floating != b.floating) return a.floating ? a : b;
        if (a.floating) {
            if (a == F64 || b == F64) return F64;
            return F32;                                  // f32 with a 16-bit type, or bf16 with f16
        }
        if (a == I64 || b == I64) return I64;
        if (a == I32 || b == I32) return I32;
        return a == U8 || b == U8 ? U8 : BOOL;
    }

    /** The floating type an op such as exp or mean produces from this one. */
    public DType toFloating() { return floating ? this : F32; }

    /** The type to hold statistics (softmax, losses, norms) of this one: f64 stays f64, everything else f32. */
    public DType atLeastF32() { return this == F64 ? F64 : F32; }

    public String lower() { return name().toLowerCase(); }
}

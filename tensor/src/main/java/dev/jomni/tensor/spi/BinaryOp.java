package dev.jomni.tensor.spi;

/** Element-wise functions of two tensors of one (broadcast) shape. Comparisons give BOOL. */
public enum BinaryOp {
    ADD(0), SUB(1), MUL(2), DIV(3), POW(4), MAXIMUM(5), MINIMUM(6), EQ(7), NE(8), LT(9), LE(10), GT(11), GE(12), AND(13), OR(14);

    /** The number the CUDA kernels know this function by (codes.cuh, BINARY_<name>; CodesTest checks them). */
    public final int code;

    BinaryOp(int code) { this.code = code; }

    public boolean comparison() { return ordinal() >= EQ.ordinal(); }

    /** The scalar reference every backend is tested against. */
    public double apply(double x, double y) {
        return switch (this) {
            case ADD -> x + y;
            case SUB -> x - y;
            case MUL -> x * y;
            case DIV -> x / y;
            case POW -> Math.pow(x, y);
            case MAXIMUM -> Double.isNaN(x) || Double.isNaN(y) ? Double.NaN : Math.max(x, y);
            case MINIMUM -> Double.isNaN(x) || Double.isNaN(y) ? Double.NaN : Math.min(x, y);
            case EQ -> x == y ? 1 : 0;
            case NE -> x != y ? 1 : 0;
            case LT -> x < y ? 1 : 0;
            case LE -> x <= y ? 1 : 0;
            case GT -> x > y ? 1 : 0;
            case GE -> x >= y ? 1 : 0;
            case AND -> x != 0 && y != 0 ? 1 : 0;
            case OR -> x != 0 || y != 0 ? 1 : 0;
        };
    }
}

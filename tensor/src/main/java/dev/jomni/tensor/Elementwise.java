package dev.jomni.tensor;

/**
 * Element-wise ops and their derivatives, one rule per op (tinygrad's gradient table, typed).
 * Broadcasting goes through {@link Tensor#expand}, whose own backward sums gradients back.
 */
final class Elementwise {
    private Elementwise() {}

    /** A one-element tensor of c, of x's dtype (floating if c is fractional), on x's device. */
    static Tensor constant(Tensor x, double c) {
        DType t = x.dtype().floating || c == Math.rint(c) ? x.dtype() : DType.F32;
        return Tensor.full(x.device(), t, c);
    }

    static Tensor unary(UnaryOp op, Tensor x, double a, double b) {
        DType outType = switch (op) {
            case NEG, ABS, SIGN, RELU, CLAMP -> x.dtype();
            case AFFINE -> x.dtype().floating || (a == Math.rint(a) && b == Math.rint(b)) ? x.dtype() : DType.F32;
            default -> x.dtype().toFloating();
        };
        if (x.dtype() == DType.BOOL && outType == DType.BOOL && op != UnaryOp.ABS) outType = DType.I64;
        Tensor out = Tensor.empty(x.device(), outType, x.shape());
        x.backend().unary(op, x, out, a, b);
        if (!outType.floating) return out;
        return Autograd.record(op.name().toLowerCase(), out, (dy, needs) -> new Tensor[] {derivative(op, x, out, dy, a, b)}, x);
    }

    /** dL/dx from dL/dy for y = op(x). */
    private static Tensor derivative(UnaryOp op, Tensor x, Tensor y, Tensor dy, double a, double b) {
        return switch (op) {
            case NEG -> dy.neg();
            case EXP -> dy.mul(y);
            case LOG -> dy.div(x);
            case SQRT -> dy.div(y.mul(2));
            case RSQRT -> dy.mul(y.pow(3)).mul(-0.5);
            case TANH -> dy.mul(y.square().rsub(1));
            case SIGMOID -> dy.mul(y.mul(y.rsub(1)));
            case SILU -> dy.mul(unary(UnaryOp.SILU_GRAD, x, 0, 0));
            case GELU_ERF -> dy.mul(unary(UnaryOp.GELU_ERF_GRAD, x, 0, 0));
            case GELU_TANH -> dy.mul(unary(UnaryOp.GELU_TANH_GRAD, x, 0, 0));
            case RELU -> dy.mul(x.gt(0).to(dy.dtype()));     // as PyTorch: 0 at x = 0
            case ABS -> dy.mul(unary(UnaryOp.SIGN, x, 0, 0));
            case SIGN, INSIDE -> dy.mul(0);
            case AFFINE -> dy.mul(a);
            case POW -> a == 0 ? dy.mul(0) : dy.mul(x.pow(a - 1)).mul(a);
            case CLAMP -> dy.mul(unary(UnaryOp.INSIDE, x, a, b));
            case SILU_GRAD, GELU_ERF_GRAD, GELU_TANH_GRAD ->
                    throw new UnsupportedOperationException(op + " is a derivative; its own derivative is not defined");
        };
    }

    static Tensor binary(BinaryOp op, Tensor x, Tensor y) {
        String name = op.name().toLowerCase();
        Check.sameDevice(name, x, y);
        int[] shape = Check.broadcast(name, x.shape(), y.shape());
        DType outType = op.comparison() ? DType.BOOL : DType.promote(x.dtype(), y.dtype());
        if ((op == BinaryOp.DIV || op == BinaryOp.POW) && !outType.floating) outType = DType.F32;  // true division
        Tensor xe = x.expand(shape), ye = y.expand(shape);
        Tensor out = Tensor.empty(x.device(), outType, shape);
        x.backend().binary(op, xe, ye, out);
        if (!outType.floating) return out;
        return Autograd.record(name, out, (dy, needs) -> {
            Tensor dx = null, dz = null;
            switch (op) {
                case ADD -> { dx = dy; dz = dy; }
                case SUB -> { dx = dy; dz = needs[1] ? dy.neg() : null; }
                case MUL -> { dx = needs[0] ? dy.mul(ye) : null; dz = needs[1] ? dy.mul(xe) : null; }
                case DIV -> {
                    dx = needs[0] ? dy.div(ye) : null;
                    dz = needs[1] ? dy.mul(out).div(ye).neg() : null;                  // −x/y² = −out/y
                }
                case POW -> {
                    dx = needs[0] ? dy.mul(ye).mul(xe.pow(ye.sub(1))) : null;
                    dz = needs[1] ? dy.mul(out).mul(xe.log()) : null;
                }
                case MAXIMUM, MINIMUM -> {                    // ties split the gradient, as PyTorch does
                    Tensor pick = (op == BinaryOp.MAXIMUM ? xe.gt(ye) : xe.lt(ye)).to(dy.dtype());
                    Tensor tie = xe.eq(ye).to(dy.dtype()).mul(0.5);
                    dx = dy.mul(pick.add(tie));
                    dz = dy.mul(pick.rsub(1).sub(tie));
                }
                default -> throw new IllegalStateException(op + " has no gradient");
            }
            // Gradients of the expanded operands, summed back to the operands' own shapes.
            return new Tensor[] {
                    dx == null ? null : Reductions.sumTo(dx, x.shape()),
                    dz == null ? null : Reductions.sumTo(dz, y.shape())};
        }, x, y);
    }

    static Tensor where(Tensor cond, Tensor x, Tensor y) {
        if (cond.dtype() != DType.BOOL) throw Check.fail("where", "condition must be bool, got %s", cond.dtype().lower());
        Check.sameDevice("where", cond, x);
        Check.sameDevice("where", x, y);
        int[] shape = Check.broadcast("where", Check.broadcast("where", cond.shape(), x.shape()), y.shape());
        DType outType = DType.promote(x.dtype(), y.dtype());
        Tensor c = cond.expand(shape), xe = x.expand(shape), ye = y.expand(shape);
        Tensor out = Tensor.empty(x.device(), outType, shape);
        x.backend().where(c, xe, ye, out);
        if (!outType.floating) return out;
        return Autograd.record("where", out, (dy, needs) -> {
            Tensor zero = constant(dy, 0);
            return new Tensor[] {null,
                    needs[1] ? Reductions.sumTo(where(c, dy, zero), x.shape()) : null,
                    needs[2] ? Reductions.sumTo(where(c, zero, dy), y.shape()) : null};
        }, cond, x, y);
    }
}

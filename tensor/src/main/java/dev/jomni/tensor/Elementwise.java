package dev.jomni.tensor;

import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.UnaryOp;

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
        return Autograd.record(op.name().toLowerCase(), out, saved(op, x, out, a, b), x);
    }

    /** What the backward of y = op(x) keeps: the output where the derivative is a function of it, else x, else nothing. */
    private static Autograd.Backward saved(UnaryOp op, Tensor x, Tensor y, double a, double b) {
        return switch (op) {
            case NEG -> new NegBackward();
            case AFFINE -> new AffineBackward(a);
            case SIGN, INSIDE -> new ZeroBackward();
            case POW -> a == 0 ? new ZeroBackward() : new UnaryOfInput(op, x, a, b);
            case EXP, SQRT, RSQRT, TANH, SIGMOID -> new UnaryOfOutput(op, y);
            case LOG, SILU, GELU_ERF, GELU_TANH, RELU, ABS, CLAMP -> new UnaryOfInput(op, x, a, b);
            case SILU_GRAD, GELU_ERF_GRAD, GELU_TANH_GRAD -> new NoDerivative(op);
        };
    }

    /** The derivative functions themselves: recorded, but differentiating them again is an error. */
    record NoDerivative(UnaryOp op) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            throw new UnsupportedOperationException(op + " is a derivative; its own derivative is not defined");
        }
    }

    /** dx = −dy */
    record NegBackward() implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.neg()}; }
    }

    /** y = a·x + b: dx = a·dy */
    record AffineBackward(double a) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.mul(a)}; }
    }

    /** Piecewise constant functions (sign, the clamp indicator, x⁰): dx = 0·dy (NaN stays NaN, as in PyTorch). */
    record ZeroBackward() implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) { return new Tensor[] {dy.mul(0)}; }
    }

    /** Derivatives written with the output y = op(x): exp, sqrt, rsqrt, tanh, sigmoid. */
    record UnaryOfOutput(UnaryOp op, Tensor y) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = switch (op) {
                case EXP -> dy.mul(y);
                case SQRT -> dy.div(y.mul(2));
                case RSQRT -> dy.mul(y.pow(3)).mul(-0.5);
                case TANH -> dy.mul(y.square().rsub(1));
                case SIGMOID -> dy.mul(y.mul(y.rsub(1)));
                default -> throw new IllegalStateException(op + ": the derivative is not written with the output");
            };
            return new Tensor[] {dx};
        }
    }

    /** Derivatives written with the input x (and the op's parameters a, b). */
    record UnaryOfInput(UnaryOp op, Tensor x, double a, double b) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dx = switch (op) {
                case LOG -> dy.div(x);
                case SILU -> dy.mul(unary(UnaryOp.SILU_GRAD, x, 0, 0));
                case GELU_ERF -> dy.mul(unary(UnaryOp.GELU_ERF_GRAD, x, 0, 0));
                case GELU_TANH -> dy.mul(unary(UnaryOp.GELU_TANH_GRAD, x, 0, 0));
                case RELU -> dy.mul(x.gt(0).to(dy.dtype()));     // as PyTorch: 0 at x = 0
                case ABS -> dy.mul(unary(UnaryOp.SIGN, x, 0, 0));
                case POW -> dy.mul(x.pow(a - 1)).mul(a);
                case CLAMP -> dy.mul(unary(UnaryOp.INSIDE, x, a, b));
                default -> throw new IllegalStateException(op + ": the derivative is not written with the input");
            };
            return new Tensor[] {dx};
        }
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
        Autograd.Backward saved = switch (op) {
            case ADD -> new AddBackward(x.shape(), y.shape(), false);
            case SUB -> new AddBackward(x.shape(), y.shape(), true);
            case MUL -> new MulBackward(x, y);
            case DIV -> new DivBackward(x.shape(), y, out);
            case POW -> new PowBackward(x, y, out);
            case MAXIMUM, MINIMUM -> new ExtremumBackward(op == BinaryOp.MAXIMUM, x, y);
            default -> throw new IllegalStateException(op + " has no gradient");
        };
        return Autograd.record(name, out, saved, x, y);
    }

    /*
     * Binary backward rules. Operands are kept as given, not as their broadcast views: an op of dy
     * with an operand broadcasts it again to dy's shape, and Reductions.sumTo sums each gradient back
     * to its operand's shape.
     */

    /** x ± y: dx = dy, dy' = ±dy; only the shapes are kept. */
    record AddBackward(int[] xShape, int[] yShape, boolean subtract) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor dz = needs[1] ? (subtract ? dy.neg() : dy) : null;
            return new Tensor[] {Reductions.sumTo(dy, xShape), dz == null ? null : Reductions.sumTo(dz, yShape)};
        }
    }

    /** x·y: dx = dy·y, dy' = dy·x. */
    record MulBackward(Tensor x, Tensor y) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {
                    needs[0] ? Reductions.sumTo(dy.mul(y), x.shape()) : null,
                    needs[1] ? Reductions.sumTo(dy.mul(x), y.shape()) : null};
        }
    }

    /** out = x/y: dx = dy/y, dy' = −x/y²·dy = −dy·out/y. */
    record DivBackward(int[] xShape, Tensor y, Tensor out) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {
                    needs[0] ? Reductions.sumTo(dy.div(y), xShape) : null,
                    needs[1] ? Reductions.sumTo(dy.mul(out).div(y).neg(), y.shape()) : null};
        }
    }

    /** out = x^y: dx = dy·y·x^(y−1), dy' = dy·out·log x. */
    record PowBackward(Tensor x, Tensor y, Tensor out) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            return new Tensor[] {
                    needs[0] ? Reductions.sumTo(dy.mul(y).mul(x.pow(y.sub(1))), x.shape()) : null,
                    needs[1] ? Reductions.sumTo(dy.mul(out).mul(x.log()), y.shape()) : null};
        }
    }

    /** maximum / minimum: the gradient goes to the chosen operand; ties split it, as PyTorch does. */
    record ExtremumBackward(boolean maximum, Tensor x, Tensor y) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor pick = (maximum ? x.gt(y) : x.lt(y)).to(dy.dtype());
            Tensor tie = x.eq(y).to(dy.dtype()).mul(0.5);
            return new Tensor[] {
                    Reductions.sumTo(dy.mul(pick.add(tie)), x.shape()),
                    Reductions.sumTo(dy.mul(pick.rsub(1).sub(tie)), y.shape())};
        }
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
        return Autograd.record("where", out, new WhereBackward(cond, x.shape(), y.shape()), cond, x, y);
    }

    /** cond ? x : y: the gradient goes where it came from; only the condition and the shapes are kept. */
    record WhereBackward(Tensor cond, int[] xShape, int[] yShape) implements Autograd.Backward {
        @Override public Tensor[] apply(Tensor dy, boolean[] needs) {
            Tensor zero = constant(dy, 0);
            return new Tensor[] {null,
                    needs[1] ? Reductions.sumTo(where(cond, dy, zero), xShape) : null,
                    needs[2] ? Reductions.sumTo(where(cond, zero, dy), yShape) : null};
        }
    }
}

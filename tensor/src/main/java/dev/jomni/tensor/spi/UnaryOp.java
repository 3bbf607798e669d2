package dev.jomni.tensor.spi;

/**
 * Element-wise functions of one tensor that backends implement. {@code a} and {@code b} are the
 * parameters the op names; unused ones are 0. Derivatives live with the ops that use them
 * ({@link Elementwise}), expressed through these same functions.
 */
public enum UnaryOp {
    NEG(0), EXP(1), LOG(2), SQRT(3), RSQRT(4), TANH(5), SIGMOID(6), SILU(7), GELU_ERF(8), GELU_TANH(9), RELU(10), ABS(11), SIGN(12),
    /** a·x + b */
    AFFINE(13),
    /** x^a */
    POW(14),
    /** min(max(x, a), b) */
    CLAMP(15),
    /** 1 where a ≤ x ≤ b, else 0: the derivative of CLAMP */
    INSIDE(16),
    /** d silu / dx = σ(x)(1 + x(1 − σ(x))) */
    SILU_GRAD(17),
    /** d gelu / dx = Φ(x) + x φ(x) */
    GELU_ERF_GRAD(18),
    /** derivative of the tanh approximation of gelu */
    GELU_TANH_GRAD(19);

    /**
     * The number the CUDA kernels know this function by (kernels/src/main/cuda/codes.cuh, UNARY_<name>;
     * CodesTest checks the two agree). Fixed, unlike the ordinal, so constants can be added anywhere.
     */
    public final int code;

    UnaryOp(int code) { this.code = code; }

    private static final double SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI), INV_SQRT_2 = 1 / Math.sqrt(2);

    /** The scalar reference every backend is tested against. */
    public double apply(double x, double a, double b) {
        return switch (this) {
            case NEG -> -x;
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1 / Math.sqrt(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> sigmoid(x);
            case SILU -> x * sigmoid(x);
            case GELU_ERF -> 0.5 * x * (1 + Erf.erf(x * INV_SQRT_2));
            case GELU_TANH -> 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
            case RELU -> x > 0 ? x : (Double.isNaN(x) ? x : 0);   // relu(NaN) is NaN, as in PyTorch
            case ABS -> Math.abs(x);
            case SIGN -> Math.signum(x);
            case AFFINE -> a * x + b;
            case POW -> Math.pow(x, a);
            case CLAMP -> Math.min(Math.max(x, a), b);
            case INSIDE -> x >= a && x <= b ? 1 : 0;
            case SILU_GRAD -> { double s = sigmoid(x); yield s * (1 + x * (1 - s)); }
            case GELU_ERF_GRAD -> 0.5 * (1 + Erf.erf(x * INV_SQRT_2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
            case GELU_TANH_GRAD -> {
                double u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), t = Math.tanh(u);
                yield 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
            }
        };
    }

    private static double sigmoid(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));   // no overflow either side
    }
}

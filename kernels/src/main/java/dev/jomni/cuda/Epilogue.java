package dev.jomni.cuda;

/**
 * What cuBLASLt applies to a matmul's result before writing it: nothing, a bias row added to every
 * row of C, GELU (the tanh approximation), or the bias and then GELU.
 */
public enum Epilogue {
    NONE(1),
    BIAS(4),
    GELU(32),
    BIAS_GELU(36);

    final int code;

    Epilogue(int code) {
        this.code = code;
    }

    boolean hasBias() {
        return this == BIAS || this == BIAS_GELU;
    }
}

package dev.jomni.cuda;

/**
 * One (batched) matrix product for {@link BlasLt}, row-major like the tensors:
 * {@code C[b] = epilogue(op(A[b]) · op(B[b]) + bias)} for b < batch, with op(A) [m, k], op(B) [k, n]
 * and C [m, n]; A is stored [m, k] ([k, m] when transA), B [k, n] ([n, k] when transB, as a Linear
 * layer's weight is), bias [n]. Matrix b starts {@code b * stride} elements after the first (0 reuses
 * one matrix for every b). All of one dtype, accumulated in f32.
 */
public record Matmul(DataType dtype, long m, long n, long k, boolean transA, boolean transB, int batch,
                     long strideA, long strideB, long strideC, Epilogue epilogue) {
    public Matmul {
        if (m <= 0 || n <= 0 || k <= 0 || batch <= 0)
            throw new IllegalArgumentException("matmul: m=" + m + ", n=" + n + ", k=" + k + ", batch=" + batch + " must be positive");
        if (strideA < 0 || strideB < 0 || (strideC < m * n && batch > 1))
            throw new IllegalArgumentException("matmul: strides A=" + strideA + ", B=" + strideB + ", C=" + strideC
                    + " (C's must be at least m*n=" + m * n + " so that the batch's outputs do not overlap)");
    }

    /** C [m, n] = A [m, k] · B [k, n], one matrix, no epilogue. */
    public static Matmul of(DataType dtype, long m, long n, long k) {
        return new Matmul(dtype, m, n, k, false, false, 1, m * k, k * n, m * n, Epilogue.NONE);
    }

    public Matmul transposeA() {
        return new Matmul(dtype, m, n, k, !transA, transB, batch, strideA, strideB, strideC, epilogue);
    }

    public Matmul transposeB() {
        return new Matmul(dtype, m, n, k, transA, !transB, batch, strideA, strideB, strideC, epilogue);
    }

    /** {@code count} matrices packed one after another in each of A, B and C. */
    public Matmul batched(int count) {
        return new Matmul(dtype, m, n, k, transA, transB, count, m * k, k * n, m * n, epilogue);
    }

    /** Batch strides in elements (0 for A or B broadcasts one matrix over the batch). */
    public Matmul strides(long a, long b, long c) {
        return new Matmul(dtype, m, n, k, transA, transB, batch, a, b, c, epilogue);
    }

    public Matmul epilogue(Epilogue e) {
        return new Matmul(dtype, m, n, k, transA, transB, batch, strideA, strideB, strideC, e);
    }

    /** Elements each operand must hold: the last matrix's end. */
    long elementsA() { return (batch - 1) * strideA + m * k; }
    long elementsB() { return (batch - 1) * strideB + k * n; }
    long elementsC() { return (batch - 1) * strideC + m * n; }

    double flops() {
        return 2.0 * m * n * k * batch;
    }

    @Override
    public String toString() {
        return "matmul " + dtype + " [" + m + ", " + k + "]" + (transA ? "^T" : "") + " · [" + k + ", " + n + "]"
                + (transB ? "^T" : "") + (batch > 1 ? " × " + batch + " (strides " + strideA + ", " + strideB + ", " + strideC + ")" : "")
                + (epilogue == Epilogue.NONE ? "" : " + " + epilogue);
    }
}

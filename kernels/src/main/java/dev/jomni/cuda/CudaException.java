package dev.jomni.cuda;

/**
 * A failed CUDA driver, cuBLASLt or NCCL call, or a missing library. The message says what was being
 * done; {@link #errorName()} is the API's own name for the error ({@code CUDA_ERROR_OUT_OF_MEMORY},
 * {@code CUBLAS_STATUS_NOT_SUPPORTED}, {@code ncclInvalidUsage}), or null where no call was made.
 */
public class CudaException extends RuntimeException {
    private final String errorName;
    private final int code;

    CudaException(String message) {
        this(message, null, 0);
    }

    CudaException(String message, String errorName, int code) {
        super(message);
        this.errorName = errorName;
        this.code = code;
    }

    /** The API's name for the error, or null for a failure that is not an API status (e.g. a missing library). */
    public String errorName() {
        return errorName;
    }

    /** The API's numeric status, 0 where there is none. */
    public int code() {
        return code;
    }

    /** A fresh exception with this one's message and status: cached failures rethrown with the caller's stack. */
    CudaException copy() {
        return new CudaException(getMessage(), errorName, code);
    }
}

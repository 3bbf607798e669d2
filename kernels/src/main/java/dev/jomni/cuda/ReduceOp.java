package dev.jomni.cuda;

/** NCCL reduction operators (ncclRedOp_t). */
public enum ReduceOp {
    SUM(0), PROD(1), MAX(2), MIN(3), AVG(4);

    final int code;

    ReduceOp(int code) {
        this.code = code;
    }
}

package dev.jomni.tensor.spi;

/** Reductions over the last axis of a [rows, n] tensor into [rows]; ARGMAX gives I64 (first maximum). */
public enum ReduceOp {
    SUM(0), MAX(1), MIN(2), ARGMAX(3), ARGMIN(4);

    /** The number the CUDA kernels know this reduction by (codes.cuh, REDUCE_<name>; CodesTest checks them). */
    public final int code;

    ReduceOp(int code) { this.code = code; }
}

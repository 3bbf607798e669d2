package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Swiglu;
import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.spi.UnaryOp;
import java.lang.foreign.MemorySegment;

/**
 * silu(gate)·up on the CPU, the reference: silu and its derivative by {@link UnaryOp}'s formulas in
 * double, rounded to the dtype wherever {@code gate.silu().mul(up)} and its autograd rounded, so forward
 * and backward are bit-identical to that composition. Rows are read at their own stride, so the halves
 * of a [rows, 2I] gate_up need no copy.
 */
public final class CpuSwiglu implements Swiglu.Kernels {
    private static final long CHUNK = 1 << 14;

    private static long grain(int n) { return Math.max(1, CHUNK / Math.max(1, n)); }

    private static long at(Tensor t, int row) { return TensorAccess.offset(t) + (long) row * TensorAccess.strides(t)[0]; }

    @Override
    public void forward(Tensor gate, Tensor up, Tensor out) {
        int rows = gate.size(0), n = gate.size(1);
        DType type = gate.dtype();
        MemorySegment gs = CpuBackend.seg(gate), us = CpuBackend.seg(up), os = CpuBackend.seg(out);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            double[] g = new double[n], u = new double[n];
            for (int row = (int) start; row < end; row++) {
                Rows.read(gs, type, at(gate, row), n, g);
                Rows.read(us, type, at(up, row), n, u);
                for (int j = 0; j < n; j++) g[j] = Rows.round(type, UnaryOp.SILU.apply(g[j], 0, 0)) * u[j];
                Rows.write(os, type, at(out, row), n, g);
            }
        });
    }

    @Override
    public void backward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        int rows = gate.size(0), n = gate.size(1);
        DType type = gate.dtype();
        MemorySegment ds = CpuBackend.seg(dout), gs = CpuBackend.seg(gate), us = CpuBackend.seg(up);
        MemorySegment dgs = dgate == null ? null : CpuBackend.seg(dgate), dus = dup == null ? null : CpuBackend.seg(dup);
        Parallel.forRange(rows, grain(n), (start, end) -> {
            double[] d = new double[n], g = new double[n], u = new double[n], r = new double[n];
            for (int row = (int) start; row < end; row++) {
                Rows.read(ds, type, at(dout, row), n, d);
                Rows.read(gs, type, at(gate, row), n, g);
                if (dgate != null) {
                    Rows.read(us, type, at(up, row), n, u);
                    for (int j = 0; j < n; j++)                                        // (dout·up) · silu'(gate)
                        r[j] = Rows.round(type, d[j] * u[j]) * Rows.round(type, UnaryOp.SILU_GRAD.apply(g[j], 0, 0));
                    Rows.write(dgs, type, at(dgate, row), n, r);
                }
                if (dup != null) {
                    for (int j = 0; j < n; j++) r[j] = d[j] * Rows.round(type, UnaryOp.SILU.apply(g[j], 0, 0));
                    Rows.write(dus, type, at(dup, row), n, r);
                }
            }
        });
    }
}

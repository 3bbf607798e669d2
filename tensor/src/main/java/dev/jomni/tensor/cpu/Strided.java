package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.TensorAccess;

/** Walks a strided tensor's elements in row-major order. */
final class Strided {
    private Strided() {}

    @FunctionalInterface interface OffsetVisitor { void visit(long offset); }

    @FunctionalInterface interface CoordinateVisitor { void visit(int linear, int[] coord); }

    /** Calls v with the storage offset (in elements) of every element, row-major. */
    static void forEachOffset(Tensor t, OffsetVisitor v) {
        int[] shape = t.shape();
        long[] st = TensorAccess.strides(t);
        long base = TensorAccess.offset(t);
        if (t.numel() == 0) return;
        if (shape.length == 0) { v.visit(base); return; }
        int r = shape.length, last = shape[r - 1];
        long ls = st[r - 1];
        int[] idx = new int[r];
        while (true) {
            for (int j = 0; j < last; j++) v.visit(base + j * ls);
            int d = r - 2;
            while (d >= 0) {                                  // odometer over the outer axes
                idx[d]++;
                base += st[d];
                if (idx[d] < shape[d]) break;
                base -= st[d] * shape[d];
                idx[d] = 0;
                d--;
            }
            if (d < 0) return;
        }
    }

    /** Calls v with each row-major linear index and its coordinates (the array is reused). */
    static void forEachCoordinate(int[] shape, CoordinateVisitor v) {
        long n = Tensor.numel(shape);
        int[] c = new int[shape.length];
        for (int i = 0; i < n; i++) {
            v.visit(i, c);
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++c[d] < shape[d]) break;
                c[d] = 0;
            }
        }
    }
}

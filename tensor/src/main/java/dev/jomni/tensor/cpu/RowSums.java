package dev.jomni.tensor.cpu;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.TensorAccess;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API path for sums of the rows of a contiguous f32 or bf16 [rows, n]: each row is summed
 * in double lanes (every f32 lane widened exactly), then the lanes are added and the total rounded
 * once to out's dtype. The double reference adds the same values one after another, so the two
 * doubles differ only in rounding order (each within n·2⁻⁵³·Σ|x| of the exact sum); after rounding to
 * f32 they agree unless the sum lies next to a rounding boundary of f32, and then differ by one ulp
 * ({@code VectorPathsTest} checks that bound). One row is never split, so the result does not depend on
 * the thread count.
 */
final class RowSums {
    /** As wide as F: half as many lanes, so one f32 vector widens into two of these. */
    private static final VectorSpecies<Double> D = VectorSpecies.of(double.class, Lanes.F.vectorShape());
    private static final long CHUNK = 1 << 14;

    private RowSums() {}

    static boolean handles(Tensor x, Tensor out) {
        return Lanes.lanes(x) && x.isContiguous() && out.isContiguous() && out.dtype().floating;
    }

    static void sum(Tensor x, Tensor out) {
        int rows = x.shape()[0], n = x.shape()[1];
        Lanes.View xs = Lanes.View.of(x);
        var o = CpuBackend.seg(out);
        DType ot = out.dtype();
        long oo = TensorAccess.offset(out);
        int lanes = Lanes.LANES;
        Parallel.forRange(rows, Math.max(1, CHUNK / Math.max(1, n)), (s, e) -> {
            for (int row = (int) s; row < e; row++) {
                long base = (long) row * n, j = 0;
                // two double accumulators per f32 vector: its low and high halves
                DoubleVector lo = DoubleVector.zero(D), hi = DoubleVector.zero(D);
                for (; j + lanes <= n; j += lanes) {
                    FloatVector v = xs.load(base + j);
                    lo = lo.add(v.convertShape(VectorOperators.F2D, D, 0));
                    hi = hi.add(v.convertShape(VectorOperators.F2D, D, 1));
                }
                // lanes added in a fixed order: reduceLanes leaves the order of floating additions open
                double[] part = new double[D.length()];
                lo.add(hi).intoArray(part, 0);
                double acc = 0;
                for (double q : part) acc += q;
                for (; j < n; j++) acc += xs.get(base + j);
                CpuBackend.set(o, ot, oo + row, acc);
            }
        });
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** cuBLASLt against an f64 matmul on the CPU over the same (dtype-rounded) inputs. */
@Tag("gpu")
class BlasLtTest {
    private static CudaContext ctx;
    private static BlasLt blas;
    private static Stream stream;

    @BeforeAll
    static void open() {
        ctx = Gpu.context();
        blas = BlasLt.create(ctx);
        stream = ctx.createStream();
        System.out.println("cuBLASLt version " + BlasLt.version());
    }

    @AfterAll
    static void close() {
        if (blas != null) blas.close();
        if (stream != null) stream.close();
    }

    /** ‖err‖/‖ref‖ bound per dtype: f32 is true fp32 (no TF32); f16/bf16 add one output rounding. */
    static double tolerance(DataType t) {
        return switch (t) {
            case F32 -> 1e-5;
            case F16 -> 2e-3;
            case BF16 -> 1e-2;
        };
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(DataType.class)
    void plainProductMatchesF64ReferenceOnOddRowCounts(DataType t) {
        check(Matmul.of(t, 129, 72, 96));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(DataType.class)
    void transposedOperandsMatch(DataType t) {
        check(Matmul.of(t, 33, 40, 64).transposeB());
        check(Matmul.of(t, 48, 24, 32).transposeA());
    }

    @Test
    void f32HandlesFullyOddShapes() {
        check(Matmul.of(DataType.F32, 31, 17, 13));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(DataType.class)
    void stridedBatchMatchesEachMatrix(DataType t) {
        check(Matmul.of(t, 40, 24, 32).batched(3));
        Matmul shared = Matmul.of(t, 40, 24, 32).transposeB().batched(3);
        check(shared.strides(shared.strideA(), 0, shared.strideC()));  // one B for the whole batch
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Epilogue.class)
    void biasAndGeluEpiloguesMatch(Epilogue e) {
        check(Matmul.of(DataType.BF16, 33, 128, 64).transposeB().epilogue(e));
        check(Matmul.of(DataType.F32, 17, 64, 32).epilogue(e));
    }

    /** GELU as cuBLASLt computes it: the tanh approximation. */
    static double gelu(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    private static void check(Matmul op) {
        long seed = Gpu.seed();
        var r = new SplittableRandom(seed);
        int na = (int) op.elementsA(), nb = (int) op.elementsB(), nc = (int) op.elementsC();
        double[] a = rounded(op.dtype(), Gpu.uniform(r, na, -1f, 1f));
        double[] b = rounded(op.dtype(), Gpu.uniform(r, nb, -1f, 1f));
        double[] bias = rounded(op.dtype(), Gpu.uniform(r, (int) op.n(), -1f, 1f));
        double[] ref = new double[nc];
        for (int bi = 0; bi < op.batch(); bi++) {
            for (int i = 0; i < op.m(); i++) {
                for (int j = 0; j < op.n(); j++) {
                    double s = 0;
                    for (int p = 0; p < op.k(); p++) {
                        double av = a[(int) (bi * op.strideA() + (op.transA() ? p * op.m() + i : i * op.k() + p))];
                        double bv = b[(int) (bi * op.strideB() + (op.transB() ? j * op.k() + p : p * op.n() + j))];
                        s += av * bv;
                    }
                    if (op.epilogue().hasBias()) s += bias[j];
                    if (op.epilogue() == Epilogue.GELU || op.epilogue() == Epilogue.BIAS_GELU) s = gelu(s);
                    ref[(int) (bi * op.strideC() + i * op.n() + j)] = s;
                }
            }
        }
        int e = op.dtype().bytes();
        double[] got;
        try (DeviceBuffer da = upload(op.dtype(), a); DeviceBuffer db = upload(op.dtype(), b);
             DeviceBuffer dbias = op.epilogue().hasBias() ? upload(op.dtype(), bias) : null;
             DeviceBuffer dc = ctx.allocate((long) nc * e)) {
            dc.fill(0xFF);  // NaN everywhere: an unwritten element fails the bound
            blas.matmul(op, dc, da, db, dbias, stream);
            stream.synchronize();
            got = download(op.dtype(), dc, nc);
        }
        double err = Gpu.relativeError(got, ref);
        // GELU's tanh is the library's own: 1.3e-6 from the f64 reference in f32 on an H100 (2026-11-25); other
        // GPUs may use a faster approximation, so f32 gets 1e-4 there
        boolean gelu = op.epilogue() == Epilogue.GELU || op.epilogue() == Epilogue.BIAS_GELU;
        double tol = gelu ? Math.max(tolerance(op.dtype()), 1e-4) : tolerance(op.dtype());
        System.out.printf("%s: relative error %.2e (seed %d)%n", op, err, seed);
        assertTrue(err <= tol, op + ": ‖err‖/‖ref‖ = " + err + " > " + tol + ", seed " + seed);
    }

    private static double[] rounded(DataType t, float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = switch (t) {
                case F32 -> x[i];
                case F16 -> Float.float16ToFloat(Float.floatToFloat16(x[i]));
                case BF16 -> Gpu.bf16ToFloat(Gpu.bf16(x[i]));
            };
        }
        return d;
    }

    private static DeviceBuffer upload(DataType t, double[] x) {
        DeviceBuffer d = ctx.allocate((long) x.length * t.bytes());
        switch (t) {
            case F32 -> {
                float[] f = new float[x.length];
                for (int i = 0; i < x.length; i++) f[i] = (float) x[i];
                d.copyFrom(f);
            }
            case F16, BF16 -> {
                short[] h = new short[x.length];
                for (int i = 0; i < x.length; i++) h[i] = t == DataType.F16 ? Float.floatToFloat16((float) x[i]) : Gpu.bf16((float) x[i]);
                d.copyFrom(h);
            }
        }
        return d;
    }

    private static double[] download(DataType t, DeviceBuffer d, int n) {
        double[] out = new double[n];
        switch (t) {
            case F32 -> {
                float[] f = new float[n];
                d.copyTo(f);
                for (int i = 0; i < n; i++) out[i] = f[i];
            }
            case F16, BF16 -> {
                short[] h = new short[n];
                d.copyTo(h);
                for (int i = 0; i < n; i++) out[i] = t == DataType.F16 ? Float.float16ToFloat(h[i]) : Gpu.bf16ToFloat(h[i]);
            }
        }
        return out;
    }
}

package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Tag("gpu")
class AddKernelTest {
    /** out[i] = bf16(float(a[i]) + float(b[i])): the plain loop the kernel must match. */
    static short[] reference(short[] a, short[] b) {
        short[] out = new short[a.length];
        for (int i = 0; i < a.length; i++) out[i] = Gpu.bf16(Gpu.bf16ToFloat(a[i]) + Gpu.bf16ToFloat(b[i]));
        return out;
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {1, 7, 31, 4097, 1 << 20, (1 << 24) + 5})
    void kernelMatchesThePlainLoopOnRandomInputs(int n) {
        CudaContext ctx = Gpu.context();
        long seed = Gpu.seed();
        var r = new SplittableRandom(seed);
        short[] a = Gpu.bf16(Gpu.uniform(r, n, -4f, 4f)), b = Gpu.bf16(Gpu.uniform(r, n, -4f, 4f));
        short[] got = new short[n];
        try (Stream s = ctx.createStream(); DeviceBuffer da = ctx.allocate(2L * n); DeviceBuffer db = ctx.allocate(2L * n);
             DeviceBuffer out = ctx.allocate(2L * n)) {
            da.copyFrom(a);
            db.copyFrom(b);
            out.fill(0xFF);
            AddKernel.bf16(s, out, da, db, n);
            s.synchronize();
            out.copyTo(got);
        }
        check(reference(a, b), got, "n=" + n + ", seed " + seed);
    }

    @ParameterizedTest(name = "offset {0} elements")
    @ValueSource(ints = {1, 3, 8})
    void unalignedViewsTakeTheScalarPathAndStillMatch(int offset) {
        CudaContext ctx = Gpu.context();
        int n = 4099;
        long seed = Gpu.seed();
        var r = new SplittableRandom(seed);
        short[] a = Gpu.bf16(Gpu.uniform(r, n, -2f, 2f)), b = Gpu.bf16(Gpu.uniform(r, n, -2f, 2f));
        short[] got = new short[n];
        long bytes = 2L * (n + offset);
        try (Stream s = ctx.createStream(); DeviceBuffer da = ctx.allocate(bytes); DeviceBuffer db = ctx.allocate(bytes);
             DeviceBuffer out = ctx.allocate(bytes)) {
            DeviceBuffer va = da.slice(2L * offset, 2L * n), vb = db.slice(2L * offset, 2L * n), vo = out.slice(2L * offset, 2L * n);
            va.copyFrom(a);
            vb.copyFrom(b);
            vo.fill(0xFF);
            AddKernel.bf16(s, vo, va, vb, n);
            s.synchronize();
            vo.copyTo(got);
        }
        check(reference(a, b), got, "offset " + offset + ", seed " + seed);
    }

    private static void check(short[] want, short[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i])
                fail(what + ": element " + i + " is " + Gpu.bf16ToFloat(got[i]) + " (0x" + Integer.toHexString(got[i] & 0xFFFF)
                        + "), want " + Gpu.bf16ToFloat(want[i]));
        }
        assertEquals(want.length, got.length);
    }
}

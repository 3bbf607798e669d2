package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class DeviceBufferTest {
    @Test
    void hostToDeviceToHostRoundTripKeepsRandomData() {
        CudaContext ctx = Gpu.context();
        long seed = Gpu.seed();
        var r = new SplittableRandom(seed);
        float[] x = Gpu.uniform(r, 4097, -3f, 3f);
        byte[] bytes = new byte[1031];
        r.nextBytes(bytes);
        try (DeviceBuffer a = ctx.allocate(4097 * 4); DeviceBuffer b = ctx.allocate(4097 * 4); DeviceBuffer c = ctx.allocate(1031)) {
            a.copyFrom(x);
            b.fill(0xFF);
            b.copyFrom(a, a.bytes());
            float[] back = new float[x.length];
            b.copyTo(back);
            assertArrayEquals(x, back, "seed " + seed);
            c.copyFrom(bytes);
            byte[] bytesBack = new byte[bytes.length];
            c.copyTo(bytesBack);
            assertArrayEquals(bytes, bytesBack, "seed " + seed);
        }
    }

    @Test
    void asyncCopiesThroughPinnedMemoryAndStreamOrderedAllocation() {
        CudaContext ctx = Gpu.context();
        long seed = Gpu.seed();
        float[] x = Gpu.uniform(new SplittableRandom(seed), 31 * 1024 + 7, -1f, 1f);
        long bytes = x.length * 4L;
        try (Stream s = ctx.createStream(); PinnedBuffer in = ctx.allocatePinned(bytes); PinnedBuffer out = ctx.allocatePinned(bytes)) {
            in.put(x);
            try (DeviceBuffer d = ctx.allocateAsync(bytes, s); DeviceBuffer e = ctx.allocateAsync(bytes, s)) {
                d.copyFromAsync(in, bytes, s);
                e.fillAsync(0xFF, s);
                e.copyFromAsync(d, bytes, s);
                e.copyToAsync(out, bytes, s);
            }
            s.synchronize();
            float[] back = new float[x.length];
            out.get(back);
            assertArrayEquals(x, back, "seed " + seed);
        }
    }

    @Test
    void slicesAddressTheirRangeAndClosedBuffersRefuseUse() {
        CudaContext ctx = Gpu.context();
        float[] x = Gpu.uniform(new SplittableRandom(Gpu.seed()), 64, 1f, 2f);
        DeviceBuffer a = ctx.allocate(64 * 4);
        a.copyFrom(x);
        float[] tail = new float[16];
        a.slice(48 * 4, 16 * 4).copyTo(tail);
        for (int i = 0; i < 16; i++) assertEquals(x[48 + i], tail[i]);
        assertThrows(IndexOutOfBoundsException.class, () -> a.slice(60 * 4, 8 * 4));
        a.close();
        a.close();  // twice is harmless
        var e = assertThrows(IllegalStateException.class, () -> a.copyTo(tail));
        assertTrue(e.getMessage().contains("after close"), e.getMessage());
    }

    @Test
    void driverErrorsCarryTheApiErrorNameAndWhatWasDone() {
        CudaContext ctx = Gpu.context();
        var e = assertThrows(CudaException.class, () -> ctx.allocate(1L << 50));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName(), e.getMessage());
        assertTrue(e.getMessage().contains("cuMemAlloc(" + (1L << 50) + " bytes)"), e.getMessage());
    }
}

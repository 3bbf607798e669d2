package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class EventTest {
    @Test
    void eventsTimeDeviceWorkAndLongerWorkTakesLonger() {
        CudaContext ctx = Gpu.context();
        long n = 1L << 26;  // 64M bf16: three 128 MiB passes, about 0.15 ms on an H100
        try (Stream s = ctx.createStream(); Event e0 = ctx.createEvent(); Event e1 = ctx.createEvent(); Event e2 = ctx.createEvent();
             DeviceBuffer a = ctx.allocate(2 * n); DeviceBuffer b = ctx.allocate(2 * n); DeviceBuffer c = ctx.allocate(2 * n)) {
            FillKernel.uniformBf16(s, a, n, 1, -1f, 1f);
            FillKernel.uniformBf16(s, b, n, 2, -1f, 1f);
            e0.record(s);
            AddKernel.bf16(s, c, a, b, n / 8);
            e1.record(s);
            for (int i = 0; i < 8; i++) AddKernel.bf16(s, c, a, b, n);
            e2.record(s);
            e2.synchronize();
            float small = Event.elapsedMillis(e0, e1), large = Event.elapsedMillis(e1, e2);
            System.out.printf("add_bf16: %d elements %.4f ms, 8 x %d elements %.4f ms%n", n / 8, small, n, large);
            assertTrue(small > 0 && large > 0, small + " / " + large);
            assertTrue(large > 8 * small, "64x the bytes took " + large + " ms vs " + small + " ms");
            assertTrue(large < 1000, "8 adds of 64M elements took " + large + " ms");
        }
    }
}

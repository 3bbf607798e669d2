package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.Stream;
import org.junit.jupiter.api.Test;

/** The CPU's streams: ops have run when they return, so events are done when recorded. */
class StreamTest {
    @Test
    void cpuStreamsAreSynchronousAndOrderTrivially() {
        Backend cpu = Backend.of(Device.cpu());
        Stream main = cpu.defaultStream(Device.cpu());
        assertEquals(Device.cpu(), main.device());
        Tensor x = Tensor.rand(new Generator(7), DType.F32, 1000);
        Tensor y = x.mul(2);                                  // queued on (here: run by) the default stream
        try (Stream side = cpu.newStream(Device.cpu()); Stream.Event e = main.record()) {
            side.waitFor(e);
            e.synchronize();
            side.synchronize();
        }
        cpu.synchronize(Device.cpu());
        float[] xs = x.toFloatArray(), ys = y.toFloatArray();
        for (int i = 0; i < xs.length; i++) assertEquals(2 * xs[i], ys[i], 0, "element " + i);
        assertArrayEquals(ys, y.toFloatArray(), 0);
    }

    @Test
    void anEventOfAnotherDeviceIsRefused() {
        Stream main = Backend.of(Device.cpu()).defaultStream(Device.cpu());
        Stream.Event foreign = new Stream.Event() {
            @Override public Device device() { return new Device(Device.Kind.CUDA, 0); }
            @Override public void synchronize() {}
            @Override public void close() {}
        };
        var e = assertThrows(IllegalArgumentException.class, () -> main.waitFor(foreign));
        assertTrue(e.getMessage().contains("cuda:0") && e.getMessage().contains("cpu"), e.getMessage());
    }
}

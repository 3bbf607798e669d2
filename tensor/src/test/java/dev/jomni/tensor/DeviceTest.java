package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Test;

class DeviceTest {
    @Test
    void cudaWithoutItsBackendIsAClearErrorAndTheCpuIsUntouched() {
        var e = assertThrows(IllegalStateException.class, () -> Device.cuda(0));   // the tensor module alone has no CUDA backend
        assertTrue(e.getMessage().contains("CUDA") && e.getMessage().contains("kernels"), e.getMessage());
        Tensor t = Tensor.ones(DType.F32, 2).to(Device.cpu());
        assertEquals(2.0, t.sum().item());
    }

    @Test
    void namesParse() {
        assertSame(Device.cpu(), Device.parse("CPU"));
        var e = assertThrows(IllegalArgumentException.class, () -> Device.parse("tpu"));
        assertTrue(e.getMessage().contains("expected cpu, cuda or cuda:N"), e.getMessage());
    }

    @Test
    void theCpuBackendIsFoundThroughTheServiceLoaderOnceAndCached() {
        long cpuProviders = java.util.ServiceLoader.load(Backend.class).stream()
                .filter(p -> p.get().kind() == Device.Kind.CPU).count();
        assertEquals(1, cpuProviders, "tensor registers exactly one CPU backend in META-INF/services");
        Backend b = Backend.of(Device.cpu());
        assertSame(b, Backend.of(Device.cpu()));
        assertEquals("dev.jomni.tensor.cpu.CpuBackend", b.getClass().getName());
    }

    @Test
    void wrapGoesThroughTheBackendAndDoesNotCopy() {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var mem = arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_FLOAT, 1, 2, 3, 4);
            long mark = Memory.mark();
            Tensor t = Tensor.wrap(mem, DType.F32, 2, 2);
            assertEquals(0, Memory.liveSince(mark)[0]);              // not an allocation
            mem.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 3, 9f);
            assertEquals(15.0, t.sum().item());                      // reads the memory in place
            t.close();
        }
    }
}

package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}

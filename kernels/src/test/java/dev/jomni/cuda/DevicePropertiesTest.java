package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class DevicePropertiesTest {
    @Test
    void deviceReportsAPlausibleAmpereOrNewerGpu() {
        CudaContext ctx = Gpu.context();
        DeviceProperties p = ctx.properties();
        System.out.println("device 0: " + p + ", driver CUDA " + Cuda.driverVersion() + ", devices " + Cuda.deviceCount());
        assertEquals(0, p.ordinal());
        assertFalse(p.name().isBlank(), "device name");
        assertTrue(p.multiprocessorCount() > 0, "SM count " + p.multiprocessorCount());
        assertTrue(p.totalMemoryBytes() > (1L << 30), "memory " + p.totalMemoryBytes());
        assertTrue(p.computeCapabilityMajor() >= 8, "the fatbin has sm_80 and sm_90a code; found " + p.computeCapability());
        assertTrue(p.l2CacheBytes() > 0 && p.maxSharedMemoryPerBlockOptin() >= 48 * 1024, p.toString());
        assertTrue(Cuda.driverVersion() >= 12000, "driver CUDA version " + Cuda.driverVersion());
        MemoryInfo m = ctx.memoryInfo();
        assertTrue(m.freeBytes() > 0 && m.freeBytes() <= m.totalBytes() && m.totalBytes() <= p.totalMemoryBytes() + (1L << 30), m.toString());
        assertSame(ctx, Cuda.context(0), "one primary context per device");
    }
}

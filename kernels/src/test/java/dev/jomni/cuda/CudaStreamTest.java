package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import dev.jomni.tensor.spi.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The Backend SPI's streams on CUDA: a second stream ordered after the default one through an event. */
@Tag("gpu")
class CudaStreamTest {
    @Test
    void aSideStreamWaitingForAnEventSeesTheDefaultStreamsResult() {
        Device gpu = BackendParity.gpu();
        Backend cuda = Backend.of(gpu);
        Stream main = cuda.defaultStream(gpu);
        assertEquals(gpu, main.device());
        int n = 1 << 24;
        Tensor x = Tensor.rand(new Generator(Gpu.seed()), DType.F32, n).to(gpu);
        Tensor copy = Tensor.empty(gpu, DType.F32, n);
        cuda.synchronize(gpu);
        // 16 dependent passes over 64 MiB queued on the default stream (~0.1 ms): long enough that a copy
        // not ordered after them would read an unfinished y
        Tensor y = x;
        for (int i = 0; i < 16; i++) y = y.mul(1.0001).add(0.5);
        try (Stream side = cuda.newStream(gpu); Stream.Event done = main.record()) {
            side.waitFor(done);
            long bytes = 4L * n;
            var s = ((CudaStream) side).stream();
            s.context().bind();
            int status;
            try {
                status = (int) Driver.MEMCPY_DTOD_ASYNC.invokeExact(CudaBackend.address(copy), CudaBackend.address(y), bytes, s.handle());
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            assertEquals(0, status, "cuMemcpyDtoDAsync on the side stream");
            side.synchronize();
        }
        assertArrayEquals(y.toFloatArray(), copy.toFloatArray(), 0, "the side stream's copy of y");
    }

    @Test
    void deviceStateBelongsToItsBackendNotToTheProcess() {
        Device gpu = BackendParity.gpu();
        CudaDevice shared = CudaBackend.of(gpu);
        assertSame(shared, ((CudaBackend) Backend.of(gpu)).on(gpu), "Device.backend()'s state");
        assertSame(shared.stream(), CudaBackend.stream(gpu));
        CudaDevice other = new CudaBackend().on(gpu);
        assertNotSame(shared.stream(), other.stream(), "a second backend's stream");
        assertSame(shared.context(), other.context(), "the device's primary context is one per process");
        assertEquals(gpu, other.device());
    }
}

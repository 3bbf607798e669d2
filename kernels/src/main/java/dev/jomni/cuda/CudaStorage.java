package dev.jomni.cuda;

import dev.jomni.tensor.Device;
import dev.jomni.tensor.spi.Storage;

/**
 * A tensor's device memory: a block of the device's {@link CachingAllocator}, returned to it (for
 * reuse on the backend's stream, which orders the reuse after earlier work) when the last tensor
 * using it closes.
 */
public final class CudaStorage extends Storage {
    final DeviceBuffer buffer;

    CudaStorage(Device device, DeviceBuffer buffer, long bytes) {
        super(device, bytes, true);
        this.buffer = buffer;
    }

    /** Device address of byte 0. */
    long address() {
        return buffer.address();
    }

    @Override
    protected void free() {
        buffer.close();
    }
}

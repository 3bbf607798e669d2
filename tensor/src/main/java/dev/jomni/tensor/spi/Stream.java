package dev.jomni.tensor.spi;

import dev.jomni.tensor.Device;

/**
 * An ordered queue of one device's work, as a backend exposes it ({@link Backend#defaultStream},
 * {@link Backend#newStream}). Work queued on one stream runs in order; two streams of a device may run
 * at once (a host-to-device copy beside compute), and are ordered only through events: {@code
 * b.waitFor(a.record())} makes work queued on b from then on wait for what a had queued so far. A
 * backend's ops are queued on its device's default stream.
 *
 * <p>On the CPU every op runs when it is called, so a stream is already done when asked: record,
 * waitFor and synchronize return at once. On CUDA they are cuEventRecord, cuStreamWaitEvent and
 * cuStreamSynchronize; only {@link #synchronize} and {@link Event#synchronize} block the host (and the
 * CUDA backend counts them as host synchronisations).
 */
public interface Stream extends AutoCloseable {
    Device device();

    /** An event marking the end of the work queued on this stream so far. */
    Event record();

    /** Work queued on this stream after this call runs after {@code event}'s work (of the same device). */
    void waitFor(Event event);

    /** Blocks the calling thread until all work queued so far has run; reports the device's deferred errors. */
    void synchronize();

    /** Releases a stream made by {@link Backend#newStream}; the default stream ignores it. */
    @Override void close();

    /** A point in a stream's work. */
    interface Event extends AutoCloseable {
        Device device();

        /** Blocks the calling thread until the work before the event has run. */
        void synchronize();

        @Override void close();
    }
}

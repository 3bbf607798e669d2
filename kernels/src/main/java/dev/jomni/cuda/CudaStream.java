package dev.jomni.cuda;

import dev.jomni.tensor.Device;

/**
 * A CUDA stream as the tensor core's {@link dev.jomni.tensor.spi.Stream}: record is cuEventRecord on a
 * fresh event, waitFor cuStreamWaitEvent, synchronize cuStreamSynchronize. The device's default
 * stream (the backend's, {@link CudaBackend#defaultStream}) is not closed by close(); a stream from
 * {@link CudaBackend#newStream} is.
 */
final class CudaStream implements dev.jomni.tensor.spi.Stream {
    private final CudaDevice owner;
    private final Device device;
    private final Stream stream;
    private final boolean owned;

    CudaStream(CudaDevice owner, Stream stream, boolean owned) {
        this.owner = owner;
        this.device = owner.device;
        this.stream = stream;
        this.owned = owned;
    }

    /** The driver stream, for launches and for {@link Event}s of the driver API. */
    Stream stream() {
        return stream;
    }

    @Override public Device device() { return device; }

    @Override
    public Event record() {
        dev.jomni.cuda.Event e = stream.context().createEvent();
        e.record(stream);
        return new CudaEvent(owner, e);
    }

    @Override
    public void waitFor(Event event) {
        if (!(event instanceof CudaEvent e) || !e.device().equals(device))
            throw new IllegalArgumentException("waitFor: an event of " + event.device() + " on a stream of " + device);
        stream.waitFor(e.event);
    }

    /** A host synchronisation (counted); on the default stream it also raises a deferred index error. */
    @Override
    public void synchronize() {
        if (!owned) owner.await();
        else {
            owner.countSync();
            stream.synchronize();
        }
    }

    @Override
    public void close() {
        if (owned) stream.close();
    }

    @Override public String toString() { return (owned ? "stream@" : "default stream@") + device; }

    /** An event recorded on a {@link CudaStream}. */
    static final class CudaEvent implements Event {
        private final CudaDevice owner;
        final dev.jomni.cuda.Event event;

        CudaEvent(CudaDevice owner, dev.jomni.cuda.Event event) {
            this.owner = owner;
            this.event = event;
        }

        @Override public Device device() { return owner.device; }

        /** A host synchronisation (counted). */
        @Override
        public void synchronize() {
            owner.countSync();
            event.synchronize();
        }

        @Override public void close() { event.close(); }

        @Override public String toString() { return "event@" + owner.device; }
    }
}

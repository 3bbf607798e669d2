package dev.jomni.tensor.cpu;

import dev.jomni.tensor.Device;
import dev.jomni.tensor.spi.Stream;

/**
 * The CPU's stream: every op has run when its call returns, so a stream has no pending work and an
 * event is done when recorded. One instance serves as the default stream and as every new stream.
 */
final class CpuStream implements Stream {
    static final CpuStream INSTANCE = new CpuStream();
    private static final Event DONE = new Event() {
        @Override public Device device() { return Device.cpu(); }
        @Override public void synchronize() {}
        @Override public void close() {}
        @Override public String toString() { return "event@cpu"; }
    };

    private CpuStream() {}

    @Override public Device device() { return Device.cpu(); }

    @Override public Event record() { return DONE; }

    @Override
    public void waitFor(Event event) {
        if (!event.device().equals(Device.cpu()))
            throw new IllegalArgumentException("waitFor: an event of " + event.device() + " on a stream of cpu");
    }

    @Override public void synchronize() {}

    @Override public void close() {}

    @Override public String toString() { return "stream@cpu"; }
}

package dev.jomni.tensor;

import dev.jomni.tensor.spi.Backend;

/**
 * Where a tensor lives. {@code Device.cpu()} is always there; {@code Device.cuda(i)} needs the
 * {@code kernels} module and a CUDA driver, and says which is missing otherwise.
 */
public record Device(Kind kind, int index) {
    public enum Kind { CPU, CUDA }

    private static final Device CPU = new Device(Kind.CPU, 0);

    public Device {
        if (index < 0) throw new IllegalArgumentException("device index " + index + " is negative");
    }

    public static Device cpu() { return CPU; }

    public static Device cuda(int index) {
        var d = new Device(Kind.CUDA, index);
        Backend.of(d);                                    // fail here, with the reason, rather than at first use
        return d;
    }

    /** "cpu", "cuda", "cuda:1". */
    public static Device parse(String name) {
        String n = name.trim().toLowerCase();
        if (n.equals("cpu")) return cpu();
        if (n.equals("cuda")) return cuda(0);
        if (n.startsWith("cuda:")) return cuda(Integer.parseInt(n.substring(5)));
        throw new IllegalArgumentException("unknown device '" + name + "': expected cpu, cuda or cuda:N");
    }

    /** Waits until the work queued on this device is done (timing and benchmarks; results never need it). */
    public void synchronize() { dev.jomni.tensor.spi.Backend.of(this).synchronize(this); }

    @Override public String toString() { return kind == Kind.CPU ? "cpu" : "cuda:" + index; }
}

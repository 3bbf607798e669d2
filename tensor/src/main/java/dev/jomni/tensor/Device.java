package dev.jomni.tensor;

import java.util.ServiceLoader;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where a tensor lives. {@code Device.cpu()} is always there; {@code Device.cuda(i)} needs the
 * {@code kernels} module on the class path and a CUDA driver, and says which is missing otherwise.
 */
public record Device(Kind kind, int index) {
    public enum Kind { CPU, CUDA }

    private static final Device CPU = new Device(Kind.CPU, 0);
    private static final ConcurrentHashMap<Kind, Backend> BACKENDS = new ConcurrentHashMap<>();

    public Device {
        if (index < 0) throw new IllegalArgumentException("device index " + index + " is negative");
    }

    public static Device cpu() { return CPU; }

    public static Device cuda(int index) {
        var d = new Device(Kind.CUDA, index);
        d.backend();                                      // fail here, with the reason, rather than at first use
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

    public Backend backend() {
        Backend b = BACKENDS.get(kind);
        if (b != null) return b;
        // Loaded outside the map's lock: a backend's constructor may itself ask for a device's backend.
        Backend loaded = load(kind);
        Backend raced = BACKENDS.putIfAbsent(kind, loaded);
        return raced != null ? raced : loaded;
    }

    /**
     * The first backend of this kind that {@link ServiceLoader} finds (tensor registers the CPU one,
     * kernels the CUDA one, each in {@code META-INF/services/dev.jomni.tensor.Backend}), so that this
     * package depends on no implementation.
     */
    private static Backend load(Kind kind) {
        for (Backend b : ServiceLoader.load(Backend.class))
            if (b.kind() == kind) {
                b.checkAvailable();
                return b;
            }
        throw new IllegalStateException(kind == Kind.CPU
                ? "no CPU backend found: META-INF/services/dev.jomni.tensor.Backend of the tensor module is missing from the class path"
                : "no " + kind + " backend on the class path: add the dev.jomni:kernels module");
    }

    @Override public String toString() { return kind == Kind.CPU ? "cpu" : "cuda:" + index; }
}

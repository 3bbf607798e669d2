package dev.jomni.tensor.spi;

import dev.jomni.tensor.Device;
import java.util.ServiceLoader;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One backend per device kind, the first that {@link ServiceLoader} finds: tensor provides the CPU
 * one, kernels the CUDA one (module-info {@code provides}, and {@code META-INF/services} on the class
 * path), so that the tensor core depends on no implementation.
 */
final class Backends {
    private static final ConcurrentHashMap<Device.Kind, Backend> BY_KIND = new ConcurrentHashMap<>();

    private Backends() {}

    static Backend of(Device.Kind kind) {
        Backend b = BY_KIND.get(kind);
        if (b != null) return b;
        // Loaded outside the map's lock: a backend's constructor may itself ask for a device's backend.
        Backend loaded = load(kind);
        Backend raced = BY_KIND.putIfAbsent(kind, loaded);
        return raced != null ? raced : loaded;
    }

    private static Backend load(Device.Kind kind) {
        for (Backend b : ServiceLoader.load(Backend.class))
            if (b.kind() == kind) {
                b.checkAvailable();
                return b;
            }
        throw new IllegalStateException(kind == Device.Kind.CPU
                ? "no CPU backend found: the tensor module's provider of dev.jomni.tensor.spi.Backend is missing"
                : "no " + kind + " backend found: add the dev.jomni:kernels module");
    }
}

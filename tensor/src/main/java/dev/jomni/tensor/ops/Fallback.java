package dev.jomni.tensor.ops;

import dev.jomni.tensor.spi.Backend;

/**
 * The kernels a backend registered for an op or, where it registered none, the op's composition of
 * primitive tensor ops (every backend has those). The CPU backend registers every op; the CUDA backend
 * runs the composition for an op until its {@code .cu} launcher is registered, so GPU code keeps working
 * while the kernels land one by one.
 */
final class Fallback {
    private Fallback() {}

    static <K> K kernels(Backend backend, Class<K> op, K composed) {
        try {
            return backend.kernels(op);
        } catch (UnsupportedOperationException none) {
            return composed;
        }
    }
}

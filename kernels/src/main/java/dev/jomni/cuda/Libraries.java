package dev.jomni.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Finds the native libraries: first through the dynamic loader (LD_LIBRARY_PATH, the ldconfig cache),
 * then in {@code $CUDA_HOME} and the usual install folders. Each library is opened once, on first use,
 * never at class initialisation; a failure is remembered and rethrown, naming every place looked.
 */
@SuppressWarnings("restricted")  // FFM downcalls and foreign pointers are this class's job
final class Libraries {
    private static final Linker LINKER = Linker.nativeLinker();

    private static final Lazy CUDA = new Lazy("CUDA driver", "libcuda.so.1", "libcuda.so");
    private static final Lazy BLAS_LT = new Lazy("cuBLASLt", "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so");
    private static final Lazy NCCL = new Lazy("NCCL", "libnccl.so.2", "libnccl.so");

    private Libraries() {}

    static SymbolLookup cuda() {
        return CUDA.get();
    }

    static SymbolLookup blasLt() {
        return BLAS_LT.get();
    }

    static SymbolLookup nccl() {
        return NCCL.get();
    }

    /** Folders searched after the loader path, in order; {@code $CUDA_HOME} first where it is set. */
    static List<Path> searchFolders() {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String home = System.getenv(env);
            if (home != null && !home.isBlank()) {
                dirs.add(Path.of(home, "targets", "x86_64-linux", "lib"));
                dirs.add(Path.of(home, "lib64"));
            }
        }
        for (String d : new String[] {"/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda/lib64",
                "/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64", "/usr/lib64"}) {
            dirs.add(Path.of(d));
        }
        return List.copyOf(dirs);
    }

    /** Opens the first of {@code sonames} found; the error names the library and every place looked. */
    static SymbolLookup open(String what, String... sonames) {
        List<String> looked = new ArrayList<>();
        for (String name : sonames) {
            try {
                return SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException e) {
                looked.add(name + " on the loader path (LD_LIBRARY_PATH, ldconfig cache)");
            }
        }
        for (Path dir : searchFolders()) {
            for (String name : sonames) {
                Path p = dir.resolve(name);
                if (!Files.exists(p)) {
                    looked.add(p.toString());
                    continue;
                }
                try {
                    return SymbolLookup.libraryLookup(p, Arena.global());
                } catch (IllegalArgumentException e) {
                    looked.add(p + " (exists but did not load: " + e.getMessage() + ")");
                }
            }
        }
        throw new CudaException(what + " library " + String.join(" / ", sonames) + " not found; looked for "
                + String.join(", ", looked));
    }

    /** A downcall handle for {@code name}; a missing symbol names the library (too old a version, usually). */
    static MethodHandle function(SymbolLookup lib, String libName, String name, FunctionDescriptor fd) {
        var symbol = lib.find(name).orElseThrow(() -> new CudaException(
                libName + " has no symbol " + name + " (a library older than this binding expects?)"));
        return LINKER.downcallHandle(symbol, fd);
    }

    private static final class Lazy {
        private final String what;
        private final String[] sonames;
        private SymbolLookup lookup;
        private CudaException failure;

        Lazy(String what, String... sonames) {
            this.what = what;
            this.sonames = sonames;
        }

        synchronized SymbolLookup get() {
            if (lookup != null) return lookup;
            if (failure == null) {
                try {
                    lookup = open(what, sonames);
                    return lookup;
                } catch (CudaException e) {
                    failure = e;
                }
            }
            throw failure.copy();
        }
    }
}

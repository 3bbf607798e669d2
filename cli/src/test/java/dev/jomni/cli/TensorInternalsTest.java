package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.constantpool.PoolEntry;
import java.lang.classfile.constantpool.StringEntry;
import java.lang.classfile.constantpool.Utf8Entry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The tensor module exports its Backend SPI ({@code dev.jomni.tensor.spi}) and CPU backend
 * ({@code dev.jomni.tensor.cpu}) only to the kernels module (module-info). The modules that use the
 * tensor API run on the class path, where module-info is not enforced, so this test reads the
 * compiled classes of every jomni module on this class path (nn, qwen-omni, training, rest, grpo, cli
 * and cli's tests) and fails on any reference to those packages in their constant pools (types,
 * descriptors, signatures; string literals aside). The bench module, which measures the backends' kernels directly, is
 * outside it.
 */
class TensorInternalsTest {
    static final List<String> INTERNAL = List.of("dev/jomni/tensor/spi/", "dev/jomni/tensor/cpu/");
    /** The tensor core and the CUDA backend, which implement the SPI. */
    static final List<String> IMPLEMENTERS = List.of("dev/jomni/tensor/", "dev/jomni/cuda/");
    /** A package of each module that must be scanned, so that the test cannot pass by finding nothing. */
    static final Set<String> USERS = Set.of("dev/jomni/nn/", "dev/jomni/omni/", "dev/jomni/train/", "dev/jomni/rest/",
            "dev/jomni/grpo/", "dev/jomni/cli/");

    @Test
    void noModuleButKernelsReferencesTheTensorInternals() throws IOException {
        var violations = new TreeMap<String, Set<String>>();
        var scanned = new TreeSet<String>();
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator))
            for (ClassBytes c : jomniClasses(Path.of(entry))) {
                if (IMPLEMENTERS.stream().anyMatch(c.name::startsWith)) continue;
                USERS.stream().filter(c.name::startsWith).forEach(scanned::add);
                Set<String> refs = internalReferences(c.bytes);
                if (!refs.isEmpty()) violations.put(c.name + " (" + entry + ")", refs);
            }
        assertEquals(USERS, scanned, "the class path holds the compiled classes of every module that uses the tensor API");
        assertTrue(violations.isEmpty(), "classes outside tensor and kernels use the tensor SPI (exported to dev.jomni.kernels only): " + violations);
    }

    @Test
    void theCheckFindsTheCpuBackendsUseOfTheSpi() throws IOException {
        try (InputStream in = ClassLoader.getSystemResourceAsStream("dev/jomni/tensor/cpu/CpuBackend.class")) {
            assertTrue(in != null, "CpuBackend.class on the class path");
            Set<String> refs = internalReferences(in.readAllBytes());
            assertTrue(refs.contains("dev/jomni/tensor/spi/Backend") && refs.contains("dev/jomni/tensor/spi/TensorAccess"), "found: " + refs);
        }
    }

    /** The internal types a class file's constant pool names (string literals aside). */
    static Set<String> internalReferences(byte[] classFile) {
        var pool = ClassFile.of().parse(classFile).constantPool();
        var literals = new java.util.HashSet<Utf8Entry>();
        for (PoolEntry e : pool)
            if (e instanceof StringEntry str) literals.add(str.utf8());
        var found = new TreeSet<String>();
        for (PoolEntry e : pool)
            if (e instanceof Utf8Entry u && !literals.contains(u)) {
                String s = u.stringValue();
                for (String p : INTERNAL)
                    for (int i = s.indexOf(p); i >= 0; i = s.indexOf(p, i + 1)) {
                        int end = i;
                        while (end < s.length() && (Character.isJavaIdentifierPart(s.charAt(end)) || s.charAt(end) == '/')) end++;
                        found.add(s.substring(i, end));
                    }
            }
        return found;
    }

    record ClassBytes(String name, byte[] bytes) {}

    /** The classes under dev/jomni/ of a class path entry (a directory or a jar). */
    static List<ClassBytes> jomniClasses(Path entry) throws IOException {
        var out = new ArrayList<ClassBytes>();
        if (Files.isDirectory(entry)) {
            Path root = entry.resolve("dev/jomni");
            if (!Files.isDirectory(root)) return out;
            try (Stream<Path> files = Files.walk(root)) {
                files.filter(f -> f.toString().endsWith(".class")).forEach(f -> {
                    try {
                        out.add(new ClassBytes(entry.relativize(f).toString().replace('\\', '/'), Files.readAllBytes(f)));
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
            }
        } else if (Files.isRegularFile(entry) && entry.toString().endsWith(".jar")) {
            try (var jar = new JarFile(entry.toFile())) {
                for (var e : java.util.Collections.list(jar.entries()))
                    if (e.getName().startsWith("dev/jomni/") && e.getName().endsWith(".class"))
                        try (InputStream in = jar.getInputStream(e)) {
                            out.add(new ClassBytes(e.getName(), in.readAllBytes()));
                        }
            }
        }
        return out;
    }
}

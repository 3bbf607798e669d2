package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.spi.BinaryOp;
import dev.jomni.tensor.spi.ReduceOp;
import dev.jomni.tensor.spi.UnaryOp;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.ToIntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * codes.cuh against the Java constants it mirrors (runs on the CPU, in CI): every Java constant has a
 * PREFIX_NAME entry with its code, every entry names a Java constant, and no two share a number.
 */
class CodesTest {
    static final Path HEADER = Path.of("src/main/cuda/codes.cuh");   // surefire runs in the module's directory
    private static final Pattern ENTRY = Pattern.compile("\\b([A-Z][A-Z0-9]*)_([A-Z0-9_]+)\\s*=\\s*(-?\\d+)");

    /** PREFIX -> NAME -> number, from every {@code PREFIX_NAME = number} in the header (comments dropped). */
    static Map<String, Map<String, Integer>> parse(String header) {
        String code = header.replaceAll("(?m)//.*$", "").replaceAll("(?s)/\\*.*?\\*/", "");
        Map<String, Map<String, Integer>> out = new TreeMap<>();
        Matcher m = ENTRY.matcher(code);
        while (m.find()) {
            Integer before = out.computeIfAbsent(m.group(1), k -> new LinkedHashMap<>()).put(m.group(2), Integer.parseInt(m.group(3)));
            if (before != null) throw new AssertionError("codes.cuh: " + m.group(1) + "_" + m.group(2) + " defined twice");
        }
        return out;
    }

    private static <E extends Enum<E>> List<String> compare(String prefix, Class<E> type, ToIntFunction<E> code,
                                                            Map<String, Map<String, Integer>> header) {
        Map<String, Integer> entries = header.getOrDefault(prefix, Map.of());
        Map<String, Integer> java = new LinkedHashMap<>();
        for (E e : type.getEnumConstants()) java.put(e.name(), code.applyAsInt(e));
        return compare(prefix, type.getName(), java, entries);
    }

    private static List<String> compare(String prefix, String javaName, Map<String, Integer> java, Map<String, Integer> entries) {
        List<String> problems = new ArrayList<>();
        java.forEach((name, value) -> {
            Integer c = entries.get(name);
            if (c == null) problems.add(javaName + "." + name + " (code " + value + ") has no " + prefix + "_" + name + " in codes.cuh");
            else if (c.intValue() != value) problems.add(prefix + "_" + name + " = " + c + " in codes.cuh but " + javaName + "." + name + " has code " + value);
        });
        entries.keySet().stream().filter(n -> !java.containsKey(n))
                .forEach(n -> problems.add(prefix + "_" + n + " in codes.cuh names no constant of " + javaName));
        Map<Integer, String> seen = new TreeMap<>();
        java.forEach((name, value) -> {
            String other = seen.put(value, name);
            if (other != null) problems.add(javaName + "." + other + " and ." + name + " share code " + value);
        });
        return problems;
    }

    @Test
    void everyJavaCodeMatchesTheHeaderAndBack() throws IOException {
        var header = parse(Files.readString(HEADER));
        List<String> problems = new ArrayList<>();
        problems.addAll(compare("DT", DType.class, d -> d.code, header));
        problems.addAll(compare("UNARY", UnaryOp.class, o -> o.code, header));
        problems.addAll(compare("BINARY", BinaryOp.class, o -> o.code, header));
        problems.addAll(compare("REDUCE", ReduceOp.class, o -> o.code, header));
        Map<String, Integer> kinds = new LinkedHashMap<>();
        kinds.put("FILL", CudaBackend.FILL);
        kinds.put("COPY", CudaBackend.COPY);
        kinds.put("RAWCOPY", CudaBackend.RAWCOPY);
        kinds.put("UNARY", CudaBackend.UNARY);
        kinds.put("BINARY", CudaBackend.BINARY);
        kinds.put("WHERE", CudaBackend.WHERE);
        problems.addAll(compare("EW", CudaBackend.class.getName(), kinds, header.getOrDefault("EW", Map.of())));
        assertEquals(Set.of("BINARY", "DT", "EW", "REDUCE", "UNARY"), header.keySet(), "codes.cuh's prefixes (each must be checked here)");
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    @Test
    void aDriftIsReportedByName() {
        var header = parse("enum X { UNARY_NEG = 0, UNARY_EXP = 2, UNARY_BOGUS = 40 }; // UNARY_LOG = 2 in a comment\n");
        List<String> problems = compare("UNARY", UnaryOp.class, o -> o.code, header);
        assertTrue(problems.contains("UNARY_EXP = 2 in codes.cuh but dev.jomni.tensor.spi.UnaryOp.EXP has code 1"), problems.toString());
        assertTrue(problems.contains("UNARY_BOGUS in codes.cuh names no constant of dev.jomni.tensor.spi.UnaryOp"), problems.toString());
        assertTrue(problems.stream().anyMatch(p -> p.startsWith("dev.jomni.tensor.spi.UnaryOp.LOG (code 2) has no UNARY_LOG")), problems.toString());
    }

    @Test
    void everyKernelFileSwitchesOnNamedCodesNotNumbers() throws IOException {
        // `case 3:` on an op or dtype would bypass the header; only byte widths (1, 2, 4, 8) may be bare
        Pattern bare = Pattern.compile("case\\s+(\\d+)\\s*:");
        List<String> found = new ArrayList<>();
        try (var files = Files.list(HEADER.getParent())) {
            for (Path f : files.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".cuh")).sorted().toList()) {
                Matcher m = bare.matcher(Files.readString(f));
                while (m.find()) if (!Set.of("1", "2", "4", "8").contains(m.group(1))) found.add(f.getFileName() + ": " + m.group());
            }
        }
        assertTrue(found.isEmpty(), "bare case labels: " + found);
    }
}

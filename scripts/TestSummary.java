import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Element;

/**
 * The end of {@code ./omni test}: totals over every module's surefire reports
 * ({@code *}{@code /target/surefire-reports/TEST-*.xml}), each failure named, and skipped tests
 * counted once per reason ("46 tests skipped: no CUDA driver or GPU: …").
 * Run as {@code java scripts/TestSummary.java ROOT}.
 */
public class TestSummary {
    public static void main(String[] args) throws Exception {
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        int tests = 0, suites = 0;
        List<String> failed = new ArrayList<>();
        Map<String, Integer> skipped = new TreeMap<>();
        List<Path> reports;
        try (Stream<Path> modules = Files.list(root)) {
            reports = modules.map(m -> m.resolve("target/surefire-reports")).filter(Files::isDirectory)
                    .flatMap(TestSummary::reportsIn).sorted().toList();
        }
        var factory = DocumentBuilderFactory.newInstance();
        for (Path report : reports) {
            suites++;
            var doc = factory.newDocumentBuilder().parse(report.toFile());
            var cases = doc.getElementsByTagName("testcase");
            for (int i = 0; i < cases.getLength(); i++) {
                var c = (Element) cases.item(i);
                tests++;
                String name = c.getAttribute("classname").replaceFirst(".*\\.", "") + "." + c.getAttribute("name");
                for (String kind : new String[] {"failure", "error"}) {
                    var problems = c.getElementsByTagName(kind);
                    if (problems.getLength() > 0) failed.add(name + ": " + firstLine((Element) problems.item(0)));
                }
                var skips = c.getElementsByTagName("skipped");
                if (skips.getLength() > 0) skipped.merge(reason((Element) skips.item(0)), 1, Integer::sum);
            }
        }
        if (suites == 0) {
            System.out.println("omni test: no test reports found under " + root.toAbsolutePath().normalize() + "/*/target/surefire-reports");
            return;
        }
        int skippedTotal = skipped.values().stream().mapToInt(Integer::intValue).sum();
        System.out.printf("omni test: %d tests run, %d failed, %d skipped (%d test %s)%n", tests, failed.size(), skippedTotal, suites,
                suites == 1 ? "class" : "classes");
        skipped.forEach((why, n) -> System.out.printf("  %d %s skipped: %s%n", n, n == 1 ? "test" : "tests", why));
        int shown = Math.min(failed.size(), 30);
        for (String f : failed.subList(0, shown)) System.out.println("  FAILED " + f);
        if (shown < failed.size()) System.out.println("  … and " + (failed.size() - shown) + " more");
    }

    private static Stream<Path> reportsIn(Path dir) {
        try {
            return Files.list(dir).filter(p -> p.getFileName().toString().matches("TEST-.*\\.xml")).toList().stream();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A skip's reason: the assumption's message (first line, exception class and "Assumption failed:" cut), up to its first ';'. */
    private static String reason(Element skip) {
        String text = skip.getAttribute("message");
        if (text.isBlank()) text = skip.getTextContent().strip();
        text = text.lines().findFirst().orElse("").replaceFirst("^[\\w.$]+(Exception|Error): ", "").replaceFirst("^Assumption failed: ", "");
        int cut = text.indexOf(';');
        if (cut > 0) text = text.substring(0, cut);
        return text.isBlank() ? "(no reason given)" : text;
    }

    private static String firstLine(Element problem) {
        String text = problem.getAttribute("message");
        if (text.isBlank()) text = problem.getAttribute("type");
        String line = text.lines().findFirst().orElse("").strip();
        return line.length() > 200 ? line.substring(0, 200) + "…" : line;
    }
}

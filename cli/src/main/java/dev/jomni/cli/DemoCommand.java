package dev.jomni.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** The embedded default job: runs on the CPU with no files to download. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run the embedded default job on the CPU (tiny model, synthetic data).")
final class DemoCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.println("jomni demo: the tensor core is not built yet");
        return 0;
    }
}

package dev.jomni.omni.audio;

import java.net.URISyntaxException;
import java.nio.file.Path;

/** The tiny Qwen3-Omni fixture copied into src/test/resources/tiny. */
final class Fixtures {
    private Fixtures() {}

    static Path tiny(String name) {
        try {
            var url = Fixtures.class.getResource("/tiny/" + name);
            if (url == null) throw new IllegalStateException("test resource /tiny/" + name + " is missing");
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}

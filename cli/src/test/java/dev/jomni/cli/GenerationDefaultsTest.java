package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.omni.config.GenerationConfig;
import dev.jomni.omni.text.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sampling settings: a flag, else the model folder's generation_config.json, else the built-in default. */
class GenerationDefaultsTest {
    static final Path TINY = ForwardCommandTest.TINY;

    /** stdout and stderr of one run. */
    record Run(String out, String err) {}

    static Run run(List<String> args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        PrintStream oldOut = System.out, oldErr = System.err;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            assertEquals(0, Main.run(args.toArray(String[]::new)));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        return new Run(out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** The tiny model in a folder of its own whose generation_config.json is {@code json}. */
    static Path modelWith(Path dir, String json) throws IOException {
        for (String f : new String[] {"config.json", "model.safetensors", "preprocessor_config.json"}) {
            Files.createSymbolicLink(dir.resolve(f), TINY.resolve("model").resolve(f).toAbsolutePath());
        }
        Files.writeString(dir.resolve("generation_config.json"), json);
        return dir;
    }

    static List<String> generate(Path model, String... flags) {
        var args = new ArrayList<>(List.of("generate", "--model", model.toString(), "--tokenizer", TINY.resolve("tokenizer").toString(),
                "--audio", TINY.resolve("audio1.wav").toString(), "--prompt", "Which sound is longest?", "--seed", "7"));
        args.addAll(List.of(flags));
        return args;
    }

    @Test
    void generateTakesTheFilesSettingsWhereNoFlagIsGivenAndFlagsOverThem(@TempDir Path dir) throws IOException {
        Path model = modelWith(dir, "{\"temperature\": 1.0, \"top_k\": 50, \"top_p\": 0.9, \"max_new_tokens\": 6}");
        Path plain = TINY.resolve("model");     // its generation_config.json sets no sampling
        Run fromFile = run(generate(model));
        assertEquals(run(generate(plain, "--temperature", "1.0", "--top-k", "50", "--top-p", "0.9", "--max-new-tokens", "6")).out(), fromFile.out());
        assertTrue(fromFile.err().contains("generation_config.json: max_new_tokens 6, temperature 1.0, top_k 50, top_p 0.9"), fromFile.err());

        String greedy = run(generate(plain, "--max-new-tokens", "6")).out();
        assertNotEquals(greedy, fromFile.out(), "sampled at temperature 1 the random model's answer differs from its greedy one");
        assertEquals(greedy, run(generate(model, "--temperature", "0")).out(), "a flag wins over the file");
        Run ignored = run(generate(model, "--ignore-generation-config", "--max-new-tokens", "6"));
        assertEquals(greedy, ignored.out(), "--ignore-generation-config: the built-in greedy default");
        assertTrue(!ignored.err().contains("generation_config.json"), ignored.err());
    }

    @Test
    void serveGivesRequestsTheFilesSamplingAndLength(@TempDir Path dir) throws Exception {
        Path model = modelWith(dir, "{\"temperature\": 0.0, \"max_new_tokens\": 3, \"top_k\": 1}");
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String[] args = {"serve", "--model", model.toString(), "--tokenizer", TINY.resolve("tokenizer").toString(), "--port", Integer.toString(port),
                "--kv-blocks", "64"};
        Thread.ofPlatform().daemon(true).start(() -> Main.run(args));
        var client = java.net.http.HttpClient.newHttpClient();
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        java.util.function.Function<String, com.fasterxml.jackson.databind.JsonNode> post = body -> {
            try {
                var r = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
                        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                assertEquals(200, r.statusCode(), r.body());
                return json.readTree(r.body());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        };
        try {
            long deadline = System.nanoTime() + 120_000_000_000L;
            while (true) {
                try {
                    client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/health")).build(),
                            java.net.http.HttpResponse.BodyHandlers.ofString());
                    break;
                } catch (IOException e) {
                    assertTrue(System.nanoTime() < deadline, "omni serve did not come up");
                    Thread.sleep(200);
                }
            }
            String messages = "\"messages\": [{\"role\": \"user\", \"content\": \"Count to ten\"}]";
            var greedy = post.apply("{\"model\": \"" + dir.getFileName() + "\", \"temperature\": 0, \"max_tokens\": 3, " + messages + "}");
            for (int seed : new int[] {1, 2}) {
                var bare = post.apply("{\"model\": \"" + dir.getFileName() + "\", \"seed\": " + seed + ", " + messages + "}");
                assertEquals(greedy.at("/choices/0/message/content").asText(), bare.at("/choices/0/message/content").asText(), "seed " + seed);
                assertEquals(greedy.at("/usage/completion_tokens").asInt(), bare.at("/usage/completion_tokens").asInt());
            }
            assertTrue(greedy.at("/usage/completion_tokens").asInt() <= 3, greedy.toString());
        } finally {
            ServeCommand.stopAll();
        }
    }

    @Test
    void pickPrefersTheFlagThenTheFileThenTheBuiltIn() {
        assertEquals(0.3, GenerationDefaults.pick(0.3, OptionalDouble.of(0.6), 0.0));
        assertEquals(0.6, GenerationDefaults.pick((Double) null, OptionalDouble.of(0.6), 0.0));
        assertEquals(0.0, GenerationDefaults.pick((Double) null, OptionalDouble.empty(), 0.0));
        assertEquals(5, GenerationDefaults.pick(5, OptionalInt.of(20), 0));
        assertEquals(20, GenerationDefaults.pick((Integer) null, OptionalInt.of(20), 0));
        assertEquals(0, GenerationDefaults.pick((Integer) null, OptionalInt.empty(), 0));
    }

    @Test
    void stopsAreTheChatsEndTokensAndTheFilesEosTokenIds(@TempDir Path dir) throws IOException {
        Tokenizer tokenizer = Tokenizer.load(TINY.resolve("tokenizer"));
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [1006, 77]}");
        var stops = new TreeSet<Long>();
        GenerationDefaults.addStops(stops, tokenizer, GenerationConfig.load(dir));
        assertEquals(List.of(77L, 1006L, 1010L), List.copyOf(stops));   // <|im_end|> 1006, <|endoftext|> 1010
        var ignored = new GenerationDefaults();
        ignored.ignore = true;
        assertEquals(GenerationConfig.NONE, ignored.load(dir, System.err));
    }
}

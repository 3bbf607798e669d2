package dev.jomni.omni.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The server in process on the tiny model: n, stop strings, logprobs, disconnects, bursts, a full queue. */
class OpenAiServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient CLIENT = HttpClient.newHttpClient();
    static Thinker thinker;
    static ChatEncoder encoder;
    static GenerationEngine engine;
    static OpenAiServer server;
    static OpenAiServer.Config config;

    static Path tiny(String name) throws Exception { return Path.of(OpenAiServerTest.class.getResource("/tiny/" + name).toURI()); }

    @BeforeAll
    static void start() throws Exception {
        thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        encoder = ChatEncoder.load(tiny("tokenizer"), thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(tiny("model"), thinker.config.audio()));
        config = new OpenAiServer.Config("tiny", encoder, logMel, Set.of(), tiny(""), 16, Duration.ofSeconds(120));
        engine = new GenerationEngine(thinker, new GenerationEngine.Options(4, 400, 8, 64));
        engine.start();
        server = OpenAiServer.start(engine, config, "127.0.0.1", 0);
    }

    @AfterAll
    static void stop() {
        server.close();
        engine.close();
    }

    static String url(String path) { return "http://127.0.0.1:" + server.port() + path; }

    static HttpResponse<String> post(OpenAiServer s, String body) throws Exception {
        return CLIENT.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).timeout(Duration.ofSeconds(120)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode ok(String body) throws Exception {
        var r = post(server, body);
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    static ObjectNode text(String question, int maxTokens) {
        ObjectNode r = JSON.createObjectNode().put("model", "tiny").put("max_tokens", maxTokens);
        r.putArray("messages").addObject().put("role", "user").put("content", question);
        return r;
    }

    static long[] prompt(String question) {
        int[] ids = encoder.encode(List.of(ChatMessage.user(question)), true);
        long[] p = new long[ids.length];
        for (int i = 0; i < ids.length; i++) p[i] = ids[i];
        return p;
    }

    static String content(JsonNode body, int choice) { return body.get("choices").get(choice).get("message").get("content").asText(); }

    @Test
    void nChoicesDrawFromSeedsSeedPlusOneAndSoOn() throws Exception {
        JsonNode three = ok(text("Count to three", 12).put("n", 3).put("temperature", 1.0).put("seed", 40).toString());
        assertEquals(3, three.get("choices").size());
        for (int i = 0; i < 3; i++) {
            assertEquals(i, three.get("choices").get(i).get("index").asInt());
            assertEquals(content(ok(text("Count to three", 12).put("temperature", 1.0).put("seed", 40 + i).toString()), 0), content(three, i), "choice " + i);
        }
        assertNotEquals(content(three, 0), content(three, 1), "different seeds, different samples");
        assertEquals(36, three.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void aStopStringCutsTheTextAndEndsTheChoice() throws Exception {
        String whole = content(ok(text("Say something", 16).put("temperature", 0).toString()), 0);
        String stop = whole.substring(5, 7);
        JsonNode cut = ok(text("Say something", 16).put("temperature", 0).put("stop", stop).toString());
        assertEquals(whole.substring(0, whole.indexOf(stop)), content(cut, 0));
        assertEquals("stop", cut.get("choices").get(0).get("finish_reason").asText());
        String streamed = streamText(text("Say something", 16).put("temperature", 0).put("stop", stop).put("stream", true).toString());
        assertEquals(content(cut, 0), streamed, "streaming holds back what may begin the stop string");
    }

    static String streamText(String body) throws Exception {
        var r = post(server, body);
        var sb = new StringBuilder();
        for (String line : r.body().split("\n"))
            if (line.startsWith("data: {")) {
                JsonNode d = JSON.readTree(line.substring(6)).get("choices").get(0).get("delta");
                if (d.has("content")) sb.append(d.get("content").asText());
            }
        return sb.toString();
    }

    @Test
    void logprobsAreThoseOfTheChosenTokensUnderTheModel() throws Exception {
        JsonNode body = ok(text("Hello", 6).put("temperature", 0).put("logprobs", true).toString());
        JsonNode lp = body.get("choices").get(0).get("logprobs").get("content");
        assertEquals(6, lp.size());
        long[] p = prompt("Hello");
        long[] tokens = Generation.greedy(thinker, p, null, 6);
        // the first token's log-probability from one uncached forward pass, in double
        try (var g = dev.jomni.tensor.Autograd.noGrad()) {
            long[] ones = new long[p.length];
            java.util.Arrays.fill(ones, 1);
            double[] logits = thinker.forward(dev.jomni.tensor.Tensor.of(p, 1, p.length), dev.jomni.tensor.Tensor.of(ones, 1, p.length), null, null)
                    .logits().narrow(1, p.length - 1, 1).reshape(-1).toDoubleArray();
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (double x : logits) max = Math.max(max, x);
            for (double x : logits) sum += Math.exp(x - max);
            assertEquals(logits[(int) tokens[0]] - max - Math.log(sum), lp.get(0).get("logprob").asDouble(), 1e-5);
        }
        for (JsonNode e : lp) assertTrue(e.get("logprob").asDouble() <= 0, e.toString());
    }

    @Test
    void aClientThatDisconnectsMidStreamFreesItsSequence() throws Exception {
        String body = text("Tell a long story", 1000).put("stream", true).put("temperature", 1.0).toString();
        try (var socket = new Socket("127.0.0.1", server.port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                    + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
            out.flush();
            InputStream in = socket.getInputStream();
            var seen = new StringBuilder();
            byte[] buf = new byte[4096];
            while (seen.toString().split("data: ", -1).length < 5) {         // a few events in: it is decoding
                int n = in.read(buf);
                assertTrue(n > 0, "the stream ended early: " + seen);
                seen.append(new String(buf, 0, n, StandardCharsets.UTF_8));
            }
            assertTrue(seen.toString().startsWith("HTTP/1.1 200"), seen.toString());
            assertEquals(1, engine.stats().running(), "decoding when the client leaves");
        }
        long deadline = System.nanoTime() + 60_000_000_000L;
        GenerationEngine.Stats s;
        while ((s = engine.stats()).running() > 0 || s.blocksUsed() > 0) {
            assertTrue(System.nanoTime() < deadline, "the sequence of a gone client is still running: " + s);
            Thread.sleep(50);
        }
    }

    @Test
    void aBurstOfGoodBadAndAbandonedRequestsLeavesThePoolFull() throws Exception {
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < 24; i++)
            bodies.add(switch (i % 4) {
                case 0 -> text("Hi " + i, 5).toString();
                case 1 -> text("Hi", 5).put("model", "unknown").toString();
                case 2 -> "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_audio\", \"input_audio\": {\"data\": \"AAAA\"}}]}]}";
                default -> text("Hi " + i, 5).put("n", 2).put("stream", true).toString();
            });
        var pool = Executors.newFixedThreadPool(8);
        List<Future<HttpResponse<String>>> responses = new ArrayList<>();
        for (String b : bodies) responses.add(pool.submit(() -> post(server, b)));
        for (int i = 0; i < bodies.size(); i++) {
            var r = responses.get(i).get();
            assertEquals(i % 4 == 1 || i % 4 == 2 ? 400 : 200, r.statusCode(), "request " + i + ": " + r.body());
            if (r.statusCode() == 400) assertTrue(JSON.readTree(r.body()).get("error").has("param"));
        }
        pool.shutdown();
        var s = engine.stats();
        assertEquals(0, s.blocksUsed(), "every KV block is back: " + s);
        assertEquals(0, s.running());
    }

    @Test
    void samplingFieldsARequestLeavesOutTakeTheConfiguredDefaults() throws Exception {
        var defaults = new OpenAiServer.SamplingDefaults(0.7, 0.9, 5, 0.0, 1.3);
        var configured = new OpenAiServer.Config("tiny", encoder, config.logMel(), Set.of(), null, 10, Duration.ofSeconds(120), defaults);
        try (var s = OpenAiServer.start(engine, configured, "127.0.0.1", 0)) {
            for (int seed = 7; seed < 10; seed++) {
                var bare = post(s, text("Count to three", 10).put("seed", seed).toString());
                assertEquals(200, bare.statusCode(), bare.body());
                String explicit = content(ok(text("Count to three", 10).put("seed", seed).put("temperature", 0.7).put("top_p", 0.9)
                        .put("top_k", 5).put("repetition_penalty", 1.3).toString()), 0);
                assertEquals(explicit, content(JSON.readTree(bare.body()), 0), "seed " + seed);
            }
            // A field the request does set wins over the default.
            var greedy = post(s, text("Count to three", 10).put("temperature", 0).put("top_k", 0).put("top_p", 1.0).put("repetition_penalty", 1.0).toString());
            assertEquals(content(ok(text("Count to three", 10).put("temperature", 0).toString()), 0), content(JSON.readTree(greedy.body()), 0));
        }
    }

    @Test
    void aFullQueueAnswers429() throws Exception {
        try (var idle = new GenerationEngine(thinker, new GenerationEngine.Options(4, 10, 1, 0)); var s = OpenAiServer.start(idle, config, "127.0.0.1", 0)) {
            var r = post(s, text("Hi", 4).toString());
            assertEquals(429, r.statusCode());
            assertEquals("rate_limit_error", JSON.readTree(r.body()).get("error").get("type").asText());
        }
    }

    @Test
    void aRequestPastTheTimeoutGets408AndItsBlocksBack() throws Exception {
        var quick = new OpenAiServer.Config("tiny", encoder, config.logMel(), Set.of(), null, 16, Duration.ofMillis(300));
        try (var s = OpenAiServer.start(engine, quick, "127.0.0.1", 0)) {
            var r = post(s, text("Tell a long story", 1000).put("temperature", 1.0).toString());
            assertEquals(408, r.statusCode(), r.body());
            assertEquals("timeout_error", JSON.readTree(r.body()).get("error").get("type").asText());
        }
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (engine.stats().blocksUsed() > 0) {
            assertTrue(System.nanoTime() < deadline, "the timed-out sequence still holds blocks: " + engine.stats());
            Thread.sleep(50);
        }
    }

    @Test
    void audioUrlReadsFilesUnderTheAllowedRootOnly() throws Exception {
        String inside = tiny("audio0.wav").toUri().toString();
        ObjectNode r = JSON.createObjectNode().put("model", "tiny").put("max_tokens", 3).put("temperature", 0);
        var content = r.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "audio_url").putObject("audio_url").put("url", inside);
        content.addObject().put("type", "text").put("text", "What is it?");
        JsonNode body = ok(r.toString());
        assertEquals(3, body.get("usage").get("completion_tokens").asInt());
        ((ObjectNode) content.get(0).get("audio_url")).put("url", tiny("model").resolve("../../../../../pom.xml").toUri().toString());
        var outside = post(server, r.toString());
        assertEquals(400, outside.statusCode());
        assertTrue(JSON.readTree(outside.body()).get("error").get("message").asText().contains("outside the allowed media root"), outside.body());
    }

    @Test
    void modelsListsTheBaseAndHealthAnswers() throws Exception {
        var models = JSON.readTree(CLIENT.send(HttpRequest.newBuilder(URI.create(url("/v1/models"))).build(), HttpResponse.BodyHandlers.ofString()).body());
        assertEquals("tiny", models.get("data").get(0).get("id").asText());
        assertEquals(200, CLIENT.send(HttpRequest.newBuilder(URI.create(url("/health"))).build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        var wrongMethod = CLIENT.send(HttpRequest.newBuilder(URI.create(url("/v1/chat/completions"))).GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, wrongMethod.statusCode());
    }
}

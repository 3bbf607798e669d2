package dev.jomni.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@code omni serve} on the tiny model, talked to over HTTP as an OpenAI client would. */
class ServeCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient CLIENT = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    static String base;

    @BeforeAll
    static void start() throws Exception {
        Path tiny = ForwardCommandTest.TINY;
        int port;
        try (var s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String[] args = {"serve", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--adapter", "tuned=" + tiny.resolve("lora/adapter"), "--port", Integer.toString(port), "--kv-blocks", "256"};
        Thread.ofPlatform().daemon(true).start(() -> Main.run(args));
        base = "http://127.0.0.1:" + port;
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (true) {
            try {
                if (get("/health").statusCode() == 200) break;
            } catch (java.io.IOException e) {
                if (System.nanoTime() > deadline) throw new AssertionError("omni serve did not come up on " + base, e);
                Thread.sleep(200);
            }
        }
    }

    @AfterAll
    static void stop() { ServeCommand.stopAll(); }

    static HttpResponse<String> get(String path) throws Exception {
        return CLIENT.send(HttpRequest.newBuilder(URI.create(base + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> post(String body) throws Exception {
        return CLIENT.send(HttpRequest.newBuilder(URI.create(base + "/v1/chat/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).timeout(Duration.ofSeconds(120)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** The question of GenerateCommandTest, with the clip as OpenAI's input_audio (base64 WAV). */
    static ObjectNode request(String model, boolean stream) throws Exception {
        String wav = Base64.getEncoder().encodeToString(Files.readAllBytes(ForwardCommandTest.TINY.resolve("audio1.wav")));
        ObjectNode r = JSON.createObjectNode().put("model", model).put("max_tokens", 8).put("temperature", 0).put("stream", stream);
        var content = r.putArray("messages").addObject().put("role", "user").putArray("content");
        content.addObject().put("type", "input_audio").putObject("input_audio").put("data", wav).put("format", "wav");
        content.addObject().put("type", "text").put("text", "Which sound is longest?");
        return r;
    }

    static String generateCommand(String... extra) {
        Path tiny = ForwardCommandTest.TINY;
        List<String> args = new ArrayList<>(List.of("generate", "--model", tiny.resolve("model").toString(), "--tokenizer", tiny.resolve("tokenizer").toString(),
                "--audio", tiny.resolve("audio1.wav").toString(), "--prompt", "Which sound is longest?", "--max-new-tokens", "8"));
        args.addAll(List.of(extra));
        var out = new ByteArrayOutputStream();
        PrintStream old = System.out;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            assertEquals(0, Main.run(args.toArray(String[]::new)));
        } finally {
            System.setOut(old);
        }
        return out.toString(StandardCharsets.UTF_8).strip();
    }

    @Test
    void aCompletionAnswersAsOmniGenerateDoes() throws Exception {
        var response = post(request("model", false).toString());
        assertEquals(200, response.statusCode(), response.body());
        JsonNode body = JSON.readTree(response.body());
        assertEquals("chat.completion", body.get("object").asText());
        JsonNode choice = body.get("choices").get(0);
        assertEquals("length", choice.get("finish_reason").asText());
        assertEquals(8, body.get("usage").get("completion_tokens").asInt());
        assertEquals(generateCommand(), choice.get("message").get("content").asText().strip(), "the same greedy answer as omni generate");
    }

    @Test
    void aStreamedCompletionSendsTheSameTextAsEvents() throws Exception {
        String whole = JSON.readTree(post(request("model", false).toString()).body()).get("choices").get(0).get("message").get("content").asText();
        var response = post(request("model", true).toString());
        assertEquals(200, response.statusCode(), response.body());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> events = new ArrayList<>();
        for (String line : response.body().split("\n")) if (line.startsWith("data: ")) events.add(line.substring(6));
        assertEquals("[DONE]", events.getLast());
        var text = new StringBuilder();
        String finish = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode c = JSON.readTree(e);
            assertEquals("chat.completion.chunk", c.get("object").asText());
            JsonNode choice = c.get("choices").get(0);
            if (choice.get("delta").has("content")) text.append(choice.get("delta").get("content").asText());
            if (!choice.get("finish_reason").isNull()) finish = choice.get("finish_reason").asText();
        }
        assertEquals(whole, text.toString());
        assertEquals("length", finish);
        assertTrue(events.size() > 3, "tokens arrive as separate events: " + events.size());
    }

    @Test
    void anAdapterIsAModelAndSamplesAsOmniGenerateWithIt() throws Exception {
        JsonNode models = JSON.readTree(get("/v1/models").body());
        List<String> ids = new ArrayList<>();
        models.get("data").forEach(m -> ids.add(m.get("id").asText()));
        assertEquals(List.of("model", "tuned"), ids);
        ObjectNode r = request("tuned", false).put("temperature", 1.0).put("seed", 7);
        String served = JSON.readTree(post(r.toString()).body()).get("choices").get(0).get("message").get("content").asText().strip();
        assertEquals(generateCommand("--temperature", "1.0", "--seed", "7", "--adapter", ForwardCommandTest.TINY.resolve("lora/adapter").toString()), served);
    }

    @Test
    void badRequestsGetOpenAiErrorsNamingTheField() throws Exception {
        var unknown = post(request("nope", false).toString());
        assertEquals(400, unknown.statusCode());
        JsonNode e = JSON.readTree(unknown.body()).get("error");
        assertEquals("model", e.get("param").asText());
        assertEquals("invalid_request_error", e.get("type").asText());
        assertTrue(e.get("message").asText().contains("nope"), e.toString());

        var malformed = post("{\"model\": ");
        assertEquals(400, malformed.statusCode());
        assertTrue(JSON.readTree(malformed.body()).get("error").get("message").asText().contains("not valid JSON"));

        ObjectNode badAudio = request("model", false);
        ((ObjectNode) badAudio.get("messages").get(0).get("content").get(0).get("input_audio")).put("data", "bm90IGEgd2F2");   // "not a wav"
        var notWav = post(badAudio.toString());
        assertEquals(400, notWav.statusCode());
        assertEquals("messages[0].content[0].input_audio.data", JSON.readTree(notWav.body()).get("error").get("param").asText());

        var tooMany = post(request("model", false).put("max_tokens", 100000).toString());
        assertEquals(400, tooMany.statusCode());
        assertEquals("max_tokens", JSON.readTree(tooMany.body()).get("error").get("param").asText());

        var fileUrl = request("model", false);
        ((ObjectNode) fileUrl.get("messages").get(0).get("content").get(0)).removeAll().put("type", "audio_url").putObject("audio_url").put("url", "file:///etc/passwd");
        var refused = post(fileUrl.toString());
        assertEquals(400, refused.statusCode());
        assertEquals("messages[0].content[0].audio_url.url", JSON.readTree(refused.body()).get("error").get("param").asText());

        assertEquals(404, get("/v1/nothing").statusCode());
        String metrics = get("/metrics").body();
        assertTrue(metrics.contains("jomni_kv_blocks_used 0"), "no blocks leak after the bad requests:\n" + metrics);
    }
}

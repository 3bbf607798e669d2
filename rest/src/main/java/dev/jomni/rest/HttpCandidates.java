package dev.jomni.rest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.train.eval.PromptedItem;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Candidates from an OpenAI-compatible server (vLLM, {@code omni serve}), with {@code rest/generate.py}'s request
 * (seed-pipeline.md §2.2): {@code POST {base}/chat/completions} with {@code {model, messages, temperature, top_p,
 * max_tokens, n}}, messages {@code [system (a string), user [audio_url file://…, text]]}, all K candidates from the
 * one request via {@code n}, the requests of a batch sent concurrently. One addition: {@code seed}, so that sample s
 * draws from seed + s as in process (vLLM and {@code omni serve} both honour it).
 *
 * <p>Unlike the original, a failed request is an error, not a record with 0 candidates: a server that does not
 * know the adapter (the original's iteration-2 bug) stops the run with the server's message, and
 * {@code --resume} continues once it is fixed. {@link #useAdapter} asks the server to load an adapter it does not
 * list (vLLM's {@code POST /v1/load_lora_adapter}, which {@code omni serve} also answers).
 */
public final class HttpCandidates implements CandidateSource {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String base;
    private final String baseModel;
    private final double topP;
    private final int maxTokens;
    private final Duration timeout;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30)).build();

    /**
     * @param baseUrl   e.g. {@code http://127.0.0.1:8901/v1}
     * @param baseModel the model name that means "no adapter"
     */
    public HttpCandidates(String baseUrl, String baseModel, double topP, int maxTokens, Duration timeout) {
        this.base = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
        this.baseModel = baseModel;
        this.topP = topP;
        this.maxTokens = maxTokens;
        this.timeout = timeout;
    }

    /** The request body for one item, as the original builds it (plus {@code seed}). */
    ObjectNode body(PromptedItem item, int n, long seed, String model, double temperature) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model == null ? baseModel : model);
        ArrayNode messages = body.putArray("messages");
        if (!item.prompt().system().isEmpty()) messages.addObject().put("role", "system").put("content", item.prompt().system());
        ObjectNode user = messages.addObject().put("role", "user");
        ArrayNode content = user.putArray("content");
        content.addObject().put("type", "audio_url").putObject("audio_url").put("url", item.item().audio().toAbsolutePath().normalize().toUri().toString()
                .replaceFirst("^file:/+", "file:///"));
        content.addObject().put("type", "text").put("text", item.prompt().userText());
        body.put("temperature", temperature).put("top_p", topP).put("max_tokens", maxTokens).put("n", n).put("seed", seed);
        return body;
    }

    @Override
    public List<List<String>> generate(List<PromptedItem> items, int n, long[] seeds, String model, double temperature) {
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<List<String>>> futures = new ArrayList<>();
            for (int i = 0; i < items.size(); i++) {
                ObjectNode body = body(items.get(i), n, seeds[i], model, temperature);
                String id = items.get(i).item().id();
                futures.add(pool.submit(() -> complete(body, n, id)));
            }
            List<List<String>> out = new ArrayList<>();
            for (Future<List<String>> f : futures) out.add(f.get());
            return out;
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("generation interrupted", e);
        }
    }

    private List<String> complete(ObjectNode body, int n, String id) throws IOException, InterruptedException {
        HttpResponse<String> r = post("/chat/completions", body);
        if (r.statusCode() / 100 != 2)
            throw new IllegalStateException(base + "/chat/completions: record '" + id + "', model " + body.get("model").asText() + ": HTTP "
                    + r.statusCode() + ": " + message(r.body()));
        JsonNode choices = JSON.readTree(r.body()).path("choices");
        String[] texts = new String[n];
        for (JsonNode c : choices) {
            int index = c.path("index").asInt(-1);
            if (index >= 0 && index < n) texts[index] = c.path("message").path("content").asText("");
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (texts[i] == null)
                throw new IllegalStateException(base + "/chat/completions: record '" + id + "': the reply has no choice " + i + " of n = " + n);
            out.add(texts[i]);
        }
        return out;
    }

    @Override
    public void useAdapter(String name, Path dir) {
        try {
            HttpResponse<String> models = http.send(HttpRequest.newBuilder(URI.create(base + "/models")).timeout(timeout).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            if (models.statusCode() / 100 == 2)
                for (JsonNode m : JSON.readTree(models.body()).path("data")) if (name.equals(m.path("id").asText())) return;
            ObjectNode body = JSON.createObjectNode().put("lora_name", name).put("lora_path", dir.toAbsolutePath().normalize().toString());
            HttpResponse<String> r = post("/load_lora_adapter", body);
            if (r.statusCode() / 100 != 2)
                throw new IllegalStateException(base + ": the server does not serve adapter " + name + " and would not load " + dir + " (HTTP "
                        + r.statusCode() + ": " + message(r.body()) + "); start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
                        + "or serve the adapter under that name, then rerun with --resume");
        } catch (IOException e) {
            throw new IllegalStateException(base + ": cannot reach the server: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private HttpResponse<String> post(String path, JsonNode body) throws IOException, InterruptedException {
        var req = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
        return http.send(req, HttpResponse.BodyHandlers.ofString());
    }

    private static String message(String body) {
        try {
            JsonNode e = JSON.readTree(body).path("error");
            if (e.isObject()) return e.path("message").asText(body);
            if (e.isTextual()) return e.asText();
        } catch (IOException ignored) {
            // not JSON: the raw body says it
        }
        return body.length() > 500 ? body.substring(0, 500) + "…" : body;
    }
}

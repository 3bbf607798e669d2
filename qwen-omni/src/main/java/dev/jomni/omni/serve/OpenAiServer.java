package dev.jomni.omni.serve;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.omni.text.DecodeStream;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An OpenAI-compatible HTTP front of a {@link GenerationEngine}, on the JDK's own server
 * ({@code com.sun.net.httpserver}, one virtual thread per exchange): no dependency beyond the JDK,
 * and the chat API needs no more than plain request/response and server-sent events.
 *
 * <ul>
 *   <li>{@code POST /v1/chat/completions}: {@code model} (the base model's name or an adapter's),
 *       {@code messages} (system/user/assistant; content a string or parts {@code text},
 *       {@code input_audio} {data: base64 WAV, format: wav}, {@code audio_url} {url: file://…
 *       under the allowed media root, or data:…;base64,…}), {@code max_tokens} /
 *       {@code max_completion_tokens}, {@code temperature}, {@code top_p}, {@code top_k}, {@code min_p} and
 *       {@code repetition_penalty} (vLLM's extensions; each left out takes {@link Config#sampling()}),
 *       {@code seed}, {@code n}, {@code stop} (string or list), {@code logprobs} (of the chosen tokens under
 *       the model's raw distribution; no {@code top_logprobs} yet), {@code stream} (server-sent events,
 *       ending with {@code data: [DONE]}).</li>
 *   <li>{@code GET /v1/models}: the base model and each adapter.</li>
 *   <li>{@code GET /health}, {@code GET /metrics} (Prometheus text: queue, running, KV blocks, tokens).</li>
 * </ul>
 * Errors are OpenAI's JSON error objects ({@code error.message}, {@code type}, {@code param} naming the
 * bad field): 400 for a bad request, 404 for an unknown path, 408 past the server's timeout (the
 * request's sequences are cancelled and their blocks freed), 429 when the engine's queue is full.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_N = 64;

    /**
     * What the server needs besides the engine: how to read prompts and audio, which names it answers to,
     * and the sampling a request gets for the fields it leaves out.
     */
    public record Config(String baseModel, ChatEncoder encoder, LogMel logMel, Set<Long> stopTokens, Path allowedMediaRoot,
                         int defaultMaxTokens, Duration timeout, SamplingDefaults sampling) {
        /** OpenAI's sampling defaults. */
        public Config(String baseModel, ChatEncoder encoder, LogMel logMel, Set<Long> stopTokens, Path allowedMediaRoot,
                      int defaultMaxTokens, Duration timeout) {
            this(baseModel, encoder, logMel, stopTokens, allowedMediaRoot, defaultMaxTokens, timeout, SamplingDefaults.OPENAI);
        }
    }

    /**
     * The {@code temperature}, {@code top_p}, {@code top_k}, {@code min_p} and {@code repetition_penalty}
     * of a request that sets none: OpenAI's, or a model's {@code generation_config.json} (as vLLM's
     * {@code --generation-config auto}). topK 0 is no top-k filter.
     */
    public record SamplingDefaults(double temperature, double topP, int topK, double minP, double repetitionPenalty) {
        public static final SamplingDefaults OPENAI = new SamplingDefaults(1.0, 1.0, 0, 0.0, 1.0);
    }

    private final GenerationEngine engine;
    private final Config config;
    private final HttpServer http;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final long started = System.currentTimeMillis() / 1000;

    private OpenAiServer(GenerationEngine engine, Config config, HttpServer http) {
        this.engine = engine;
        this.config = config;
        this.http = http;
    }

    /** Binds {@code host:port} (port 0: a free one) and starts serving; the engine must be running ({@link GenerationEngine#start}). */
    public static OpenAiServer start(GenerationEngine engine, Config config, String host, int port) throws IOException {
        HttpServer http = HttpServer.create(new InetSocketAddress(host, port), 64);
        var server = new OpenAiServer(engine, config, http);
        http.createContext("/", server::handle);
        http.setExecutor(server.executor);
        http.start();
        return server;
    }

    public int port() { return http.getAddress().getPort(); }

    @Override
    public void close() {
        http.stop(0);
        executor.shutdownNow();
    }

    /** A request the client got wrong: HTTP status, OpenAI error type, the field. */
    static final class ApiError extends RuntimeException {
        final int status;
        final String type, param;

        ApiError(int status, String type, String param, String message) {
            super(message);
            this.status = status;
            this.type = type;
            this.param = param;
        }

        static ApiError bad(String param, String message) { return new ApiError(400, "invalid_request_error", param, message); }
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getPath(), method = ex.getRequestMethod();
            try {
                switch (path) {
                    case "/health" -> { requireMethod(method, "GET"); send(ex, 200, "application/json", "{\"status\":\"ok\"}"); }
                    case "/v1/models" -> { requireMethod(method, "GET"); send(ex, 200, "application/json", JSON.writeValueAsString(models())); }
                    case "/metrics" -> { requireMethod(method, "GET"); send(ex, 200, "text/plain; version=0.0.4", metrics()); }
                    case "/v1/chat/completions" -> { requireMethod(method, "POST"); chat(ex); }
                    case "/v1/load_lora_adapter" -> { requireMethod(method, "POST"); loadAdapter(ex); }
                    default -> throw new ApiError(404, "invalid_request_error", null, "no route " + method + " " + path);
                }
            } catch (ApiError e) {
                sendError(ex, e.status, e.type, e.param, e.getMessage());
            } catch (GenerationEngine.QueueFullException e) {
                sendError(ex, 429, "rate_limit_error", null, e.getMessage());
            } catch (IOException e) {
                throw e;                                            // the client went away; nothing to answer
            } catch (RuntimeException e) {
                sendError(ex, 500, "server_error", null, String.valueOf(e.getMessage()));
            }
        }
    }

    private static void requireMethod(String method, String want) {
        if (!method.equals(want)) throw new ApiError(405, "invalid_request_error", null, "method " + method + " not allowed; use " + want);
    }

    private ObjectNode models() {
        ObjectNode root = JSON.createObjectNode().put("object", "list");
        ArrayNode data = root.putArray("data");
        List<String> names = new ArrayList<>();
        names.add(config.baseModel());
        names.addAll(engine.adapters());
        for (String n : names)
            data.addObject().put("id", n).put("object", "model").put("created", started).put("owned_by", "jomni")
                    .put("root", config.baseModel()).put("parent", n.equals(config.baseModel()) ? null : config.baseModel());
        return root;
    }

    private String metrics() {
        var s = engine.stats();
        return "# HELP jomni_queue_depth Requests waiting for admission.\n# TYPE jomni_queue_depth gauge\njomni_queue_depth " + s.waiting() + "\n"
                + "# HELP jomni_running_sequences Sequences in the running batch.\n# TYPE jomni_running_sequences gauge\njomni_running_sequences " + s.running() + "\n"
                + "# HELP jomni_kv_blocks_used KV cache blocks in use.\n# TYPE jomni_kv_blocks_used gauge\njomni_kv_blocks_used " + s.blocksUsed() + "\n"
                + "# HELP jomni_kv_blocks_total KV cache blocks in the pool.\n# TYPE jomni_kv_blocks_total gauge\njomni_kv_blocks_total " + s.blocksTotal() + "\n"
                + "# HELP jomni_generated_tokens_total Tokens generated since start.\n# TYPE jomni_generated_tokens_total counter\njomni_generated_tokens_total " + s.generatedTokens() + "\n";
    }

    /**
     * vLLM's runtime adapter loading, {@code POST /v1/load_lora_adapter {lora_name, lora_path}}: ReST's later iterations
     * ask for the adapter the previous one trained. The folder must lie under the allowed media root, as audio files do.
     */
    private void loadAdapter(HttpExchange ex) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(ex.getRequestBody().readAllBytes());
        } catch (JacksonException e) {
            throw ApiError.bad(null, "the body is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw ApiError.bad(null, "the body must be a JSON object");
        String name = text(root, "lora_name", true), path = text(root, "lora_path", true);
        if (config.allowedMediaRoot() == null) throw ApiError.bad("lora_path", "lora_path: the server was started without an allowed local path");
        Path dir = Path.of(path).toAbsolutePath().normalize();
        if (!dir.startsWith(config.allowedMediaRoot()))
            throw ApiError.bad("lora_path", "lora_path: " + dir + " is outside the allowed root " + config.allowedMediaRoot());
        if (name.equals(config.baseModel()) || engine.adapters().contains(name)) throw ApiError.bad("lora_name", "lora_name: " + name + " is already served");
        try {
            engine.loadAdapter(name, dir);
        } catch (RuntimeException e) {
            throw ApiError.bad("lora_path", "lora_path: " + e.getMessage());
        }
        send(ex, 200, "application/json", JSON.writeValueAsString(JSON.createObjectNode().put("status", "ok").put("lora_name", name)));
    }

    // ------------------------------------------------------------------ chat completions

    /** A parsed request: the engine requests (one per choice), the stop strings, streaming. */
    private record Chat(String model, GenerationEngine.Request request, int n, List<String> stops, boolean stream, int promptTokens, boolean logprobs) {}

    private void chat(HttpExchange ex) throws IOException {
        Chat chat = parse(ex.getRequestBody().readAllBytes());
        String id = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        int n = chat.n();
        var events = new LinkedBlockingQueue<Event>();
        List<GenerationEngine.Handle> handles = new ArrayList<>();
        List<Choice> choices = new ArrayList<>();
        for (int i = 0; i < n; i++) choices.add(new Choice(i, config.encoder().tokenizer().decodeStream(true), chat.stops()));
        try {
            handles.addAll(engine.submit(chat.request(), n, index -> new GenerationEngine.Listener() {
                @Override public void token(long token) { token(token, Double.NaN); }
                @Override public void token(long token, double logprob) { events.add(new Event(index, token, logprob, null)); }
                @Override public void finished(GenerationEngine.Result r) { events.add(new Event(index, -1, Double.NaN, r)); }
            }));
        } catch (IllegalArgumentException e) {
            throw ApiError.bad(param(e.getMessage()), e.getMessage());
        }
        OutputStream out = null;
        if (chat.stream()) {
            ex.getResponseHeaders().set("Content-Type", "text/event-stream");
            ex.getResponseHeaders().set("Cache-Control", "no-cache");
            ex.sendResponseHeaders(200, 0);
            out = ex.getResponseBody();
            for (int i = 0; i < n; i++) {
                ObjectNode first = chunk(id, created, chat.model());
                first.withArray("choices").addObject().put("index", i).putNull("finish_reason").putObject("delta").put("role", "assistant").put("content", "");
                sse(out, first);
            }
        }
        int open = n, completionTokens = 0;
        long deadline = System.nanoTime() + config.timeout().toNanos();
        try {
            while (open > 0) {
                Event e = events.poll(Math.max(1, Math.min(deadline - System.nanoTime(), 1_000_000_000L)), TimeUnit.NANOSECONDS);
                if (e == null && System.nanoTime() >= deadline) {   // past its time: free its blocks, answer 408
                    handles.forEach(GenerationEngine.Handle::cancel);
                    String message = "the request took longer than the server's timeout of " + config.timeout().toMillis() + " ms";
                    if (out == null) throw new ApiError(408, "timeout_error", null, message);
                    ObjectNode err = JSON.createObjectNode();
                    err.putObject("error").put("message", message).put("type", "timeout_error").putNull("param");
                    sse(out, err);
                    break;
                }
                if (e == null) continue;
                Choice c = choices.get(e.index());
                if (e.result() == null) {
                    if (c.done) continue;
                    completionTokens++;
                    String delta = c.token(e.token(), config.stopTokens());
                    ObjectNode lp = chat.logprobs() ? logprob(e.token(), e.logprob()) : null;
                    if (lp != null) c.logprobs.add(lp);
                    if (c.done) handles.get(e.index()).cancel();         // a stop string: the engine frees it at its next step
                    if (out != null && (!delta.isEmpty() || lp != null)) {
                        ObjectNode ch = deltaChunk(id, created, chat.model(), c.index, delta, null);
                        if (lp != null) ((ObjectNode) ch.get("choices").get(0)).putObject("logprobs").putArray("content").add(lp);
                        sse(out, ch);
                    }
                    if (out != null && c.done) sse(out, deltaChunk(id, created, chat.model(), c.index, null, "stop"));
                } else {
                    open--;
                    if (c.done) continue;
                    var r = e.result();
                    if (r.finish() == GenerationEngine.Finish.ERROR) {
                        handles.forEach(GenerationEngine.Handle::cancel);
                        if (out == null) throw ApiError.bad("messages", r.error());
                        ObjectNode err = JSON.createObjectNode();
                        err.putObject("error").put("message", r.error()).put("type", "invalid_request_error").putNull("param");
                        sse(out, err);
                        break;
                    }
                    String rest = c.finish();
                    c.reason = r.finish() == GenerationEngine.Finish.LENGTH ? "length" : "stop";
                    if (out != null && !rest.isEmpty()) sse(out, deltaChunk(id, created, chat.model(), c.index, rest, null));
                    if (out != null) sse(out, deltaChunk(id, created, chat.model(), c.index, null, c.reason));
                }
            }
            if (out != null) {
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
                return;
            }
        } catch (IOException e) {                                   // the client disconnected mid-stream: free its sequences
            handles.forEach(GenerationEngine.Handle::cancel);
            throw e;
        } catch (InterruptedException e) {
            handles.forEach(GenerationEngine.Handle::cancel);
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        ObjectNode root = JSON.createObjectNode().put("id", id).put("object", "chat.completion").put("created", created).put("model", chat.model());
        ArrayNode array = root.putArray("choices");
        for (Choice c : choices) {
            ObjectNode o = array.addObject().put("index", c.index);
            o.putObject("message").put("role", "assistant").put("content", c.text.toString());
            if (chat.logprobs()) o.putObject("logprobs").putArray("content").addAll(c.logprobs);
            else o.putNull("logprobs");
            o.put("finish_reason", c.reason);
        }
        root.putObject("usage").put("prompt_tokens", chat.promptTokens()).put("completion_tokens", completionTokens)
                .put("total_tokens", chat.promptTokens() + completionTokens);
        send(ex, 200, "application/json", JSON.writeValueAsString(root));
    }

    private record Event(int index, long token, double logprob, GenerationEngine.Result result) {}

    /** OpenAI's token log-probability entry: the token's text, its bytes, its logprob (no alternatives). */
    private ObjectNode logprob(long token, double logprob) {
        String text = config.encoder().tokenizer().decode(new int[] {(int) token}, false);
        ObjectNode o = JSON.createObjectNode().put("token", text).put("logprob", logprob);
        ArrayNode bytes = o.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xFF);
        o.putArray("top_logprobs");
        return o;
    }

    /** One choice's text as it grows: stop tokens dropped, stop strings cut, text held back while it may begin a stop string. */
    private static final class Choice {
        final int index;
        final DecodeStream decode;
        final List<String> stops;
        final StringBuilder text = new StringBuilder();
        final List<ObjectNode> logprobs = new ArrayList<>();
        int sent;
        boolean done;
        String reason = "stop";

        Choice(int index, DecodeStream decode, List<String> stops) {
            this.index = index;
            this.decode = decode;
            this.stops = stops;
        }

        /** Adds a token; returns the text that can be sent now. */
        String token(long token, Set<Long> stopTokens) {
            if (!stopTokens.contains(token)) text.append(decode.step((int) token));
            for (String s : stops) {
                int at = text.indexOf(s);
                if (at >= 0) {
                    text.setLength(at);
                    done = true;
                    return take(text.length());
                }
            }
            int hold = 0;                                           // a tail that could still grow into a stop string
            for (String s : stops)
                for (int k = Math.min(s.length() - 1, text.length()); k > hold; k--)
                    if (text.substring(text.length() - k).equals(s.substring(0, k))) hold = k;
            return take(text.length() - hold);
        }

        String finish() {
            text.append(decode.flush());
            done = true;
            return take(text.length());
        }

        private String take(int upTo) {
            if (upTo <= sent) return "";
            String s = text.substring(sent, upTo);
            sent = upTo;
            return s;
        }
    }

    private static ObjectNode chunk(String id, long created, String model) {
        return JSON.createObjectNode().put("id", id).put("object", "chat.completion.chunk").put("created", created).put("model", model);
    }

    private static ObjectNode deltaChunk(String id, long created, String model, int index, String content, String finish) {
        ObjectNode o = chunk(id, created, model);
        ObjectNode c = o.putArray("choices").addObject().put("index", index);
        ObjectNode delta = c.putObject("delta");
        if (content != null) delta.put("content", content);
        if (finish != null) c.put("finish_reason", finish);
        else c.putNull("finish_reason");
        return o;
    }

    private static void sse(OutputStream out, JsonNode event) throws IOException {
        out.write(("data: " + JSON.writeValueAsString(event) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    // ------------------------------------------------------------------ parsing

    private Chat parse(byte[] body) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JacksonException e) {
            throw ApiError.bad(null, "the body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiError.bad(null, "the body cannot be read: " + e.getMessage());
        }
        if (root == null || !root.isObject()) throw ApiError.bad(null, "the body must be a JSON object");
        String model = text(root, "model", true);
        String adapter = null;
        if (!model.equals(config.baseModel())) {
            if (!engine.adapters().contains(model))
                throw new ApiError(400, "invalid_request_error", "model", "model: no model named " + model + " (served: "
                        + config.baseModel() + (engine.adapters().isEmpty() ? "" : ", " + String.join(", ", engine.adapters())) + ")");
            adapter = model;
        }
        JsonNode messages = root.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) throw ApiError.bad("messages", "messages: a non-empty array is required");
        List<ChatMessage> turns = new ArrayList<>();
        List<float[]> clips = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) turns.add(message(messages.get(i), "messages[" + i + "]", clips));

        int maxTokens = root.has("max_completion_tokens") ? integer(root, "max_completion_tokens", 1, Integer.MAX_VALUE, config.defaultMaxTokens())
                : integer(root, "max_tokens", 1, Integer.MAX_VALUE, config.defaultMaxTokens());
        SamplingDefaults d = config.sampling();
        double temperature = number(root, "temperature", 0, 2, d.temperature());
        double topP = number(root, "top_p", 0, 1, d.topP());
        if (topP == 0) throw ApiError.bad("top_p", "top_p: must be in (0, 1], got 0");
        int topK = integer(root, "top_k", -1, Integer.MAX_VALUE, d.topK());
        if (topK < 0) topK = 0;                                     // vLLM's -1: no top-k
        int n = integer(root, "n", 1, MAX_N, 1);
        double minP = number(root, "min_p", 0, 1, d.minP());
        double repetitionPenalty = number(root, "repetition_penalty", 0, 10, d.repetitionPenalty());
        if (repetitionPenalty == 0) throw ApiError.bad("repetition_penalty", "repetition_penalty: must be positive, got 0");
        long seed = root.has("seed") && !root.get("seed").isNull() ? longValue(root, "seed") : new java.util.Random().nextLong();
        boolean stream = bool(root, "stream", false);
        boolean logprobs = bool(root, "logprobs", false);
        if (integer(root, "top_logprobs", 0, 20, 0) > 0) throw ApiError.bad("top_logprobs", "top_logprobs: alternatives are not reported yet; only 0");
        List<String> stops = new ArrayList<>();
        JsonNode stop = root.get("stop");
        if (stop != null && !stop.isNull()) {
            if (stop.isTextual()) stops.add(stop.asText());
            else if (stop.isArray()) for (int i = 0; i < stop.size(); i++) {
                if (!stop.get(i).isTextual()) throw ApiError.bad("stop", "stop[" + i + "]: a string is required");
                stops.add(stop.get(i).asText());
            }
            else throw ApiError.bad("stop", "stop: a string or an array of strings is required");
            for (String s : stops) if (s.isEmpty()) throw ApiError.bad("stop", "stop: empty strings are not allowed");
        }

        int[] ids;
        try {
            ids = config.encoder().encode(turns, true);
        } catch (RuntimeException e) {
            throw ApiError.bad("messages", "messages: " + e.getMessage());
        }
        long[] prompt = new long[ids.length];
        for (int i = 0; i < ids.length; i++) prompt[i] = ids[i];
        Thinker.Audio audio = null;
        if (!clips.isEmpty()) {
            LogMel.Batch b = config.logMel().batch(clips);
            audio = new Thinker.Audio(Tensor.of(b.values(), b.batch(), b.melBins(), b.frames()), b.validFrames());
        }
        // Choice i draws from its own generator seeded seed + i (the engine's n), so choice 0 equals the request with n = 1.
        var settings = new Generation.Settings(maxTokens, temperature, topK, topP, seed, config.stopTokens(), minP, repetitionPenalty);
        return new Chat(model, new GenerationEngine.Request(prompt, audio, settings, adapter, logprobs), n, stops, stream, prompt.length, logprobs);
    }

    private ChatMessage message(JsonNode m, String where, List<float[]> clips) {
        if (!m.isObject()) throw ApiError.bad(where, where + ": an object is required");
        String role = text(m, "role", true, where);
        if (!Set.of("system", "user", "assistant", "developer").contains(role))
            throw ApiError.bad(where + ".role", where + ".role: " + role + " is not one of system, user, assistant, developer");
        if (role.equals("developer")) role = "system";
        JsonNode content = m.get("content");
        if (content == null || content.isNull()) throw ApiError.bad(where + ".content", where + ".content: required");
        if (content.isTextual()) return ChatMessage.of(role, content.asText());
        if (!content.isArray()) throw ApiError.bad(where + ".content", where + ".content: a string or an array of parts is required");
        List<Content> parts = new ArrayList<>();
        for (int i = 0; i < content.size(); i++) {
            String at = where + ".content[" + i + "]";
            JsonNode p = content.get(i);
            if (!p.isObject()) throw ApiError.bad(at, at + ": an object is required");
            String type = text(p, "type", true, at);
            switch (type) {
                case "text" -> parts.add(new Content.Text(text(p, "text", true, at)));
                case "input_audio" -> {
                    JsonNode a = p.get("input_audio");
                    if (a == null || !a.isObject()) throw ApiError.bad(at + ".input_audio", at + ".input_audio: an object {data, format} is required");
                    String format = a.path("format").asText("wav");
                    if (!format.equals("wav")) throw ApiError.bad(at + ".input_audio.format", at + ".input_audio.format: only wav is read, got " + format);
                    parts.add(clip(base64(text(a, "data", true, at + ".input_audio"), at + ".input_audio.data"), at + ".input_audio.data", clips));
                }
                case "audio_url" -> {
                    JsonNode a = p.get("audio_url");
                    String url = a != null && a.isTextual() ? a.asText() : a != null && a.isObject() ? text(a, "url", true, at + ".audio_url") : null;
                    if (url == null) throw ApiError.bad(at + ".audio_url", at + ".audio_url: {url} is required");
                    parts.add(clip(fetch(url, at + ".audio_url.url"), at + ".audio_url.url", clips));
                }
                default -> throw ApiError.bad(at + ".type", at + ".type: " + type + " is not supported (text, input_audio, audio_url)");
            }
        }
        if (!role.equals("user") && parts.stream().anyMatch(c -> c instanceof Content.Audio))
            throw ApiError.bad(where + ".content", where + ".content: audio is read in user turns only");
        return new ChatMessage(role, parts);
    }

    private Content clip(byte[] wav, String field, List<float[]> clips) {
        float[] samples;
        try {
            samples = Resampler.to16k(Wav.decode(wav, field));
        } catch (RuntimeException e) {
            throw ApiError.bad(field, e.getMessage());
        }
        int frames;
        try {
            frames = config.logMel().batch(List.of(samples)).validFrames()[0];
        } catch (RuntimeException e) {
            throw ApiError.bad(field, field + ": " + e.getMessage());
        }
        clips.add(samples);
        return new Content.Audio(frames);
    }

    private byte[] fetch(String url, String field) {
        if (url.startsWith("data:")) {
            int comma = url.indexOf(',');
            if (comma < 0 || !url.substring(0, comma).endsWith(";base64")) throw ApiError.bad(field, field + ": a data URL must be base64");
            return base64(url.substring(comma + 1), field);
        }
        if (!url.startsWith("file:")) throw ApiError.bad(field, field + ": only file:// and data: URLs are read, got " + url);
        if (config.allowedMediaRoot() == null)
            throw ApiError.bad(field, field + ": file URLs are refused (start the server with --allowed-local-media-path)");
        Path file;
        try {
            file = Path.of(URI.create(url)).toRealPath();
        } catch (IOException | RuntimeException e) {
            throw ApiError.bad(field, field + ": cannot open " + url + " (" + e.getMessage() + ")");
        }
        if (!file.startsWith(config.allowedMediaRoot())) throw ApiError.bad(field, field + ": " + file + " is outside the allowed media root " + config.allowedMediaRoot());
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw ApiError.bad(field, field + ": cannot read " + file + ": " + e.getMessage());
        }
    }

    private static byte[] base64(String data, String field) {
        try {
            return Base64.getDecoder().decode(data.strip());
        } catch (IllegalArgumentException e) {
            throw ApiError.bad(field, field + ": not base64: " + e.getMessage());
        }
    }

    private static String text(JsonNode o, String field, boolean required) { return text(o, field, required, null); }

    private static String text(JsonNode o, String field, boolean required, String where) {
        String name = where == null ? field : where + "." + field;
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) {
            if (required) throw ApiError.bad(name, name + ": required");
            return null;
        }
        if (!v.isTextual()) throw ApiError.bad(name, name + ": a string is required, got " + v.getNodeType().name().toLowerCase());
        return v.asText();
    }

    private static int integer(JsonNode o, String field, int min, int max, int absent) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return absent;
        if (!v.canConvertToInt() || !v.isIntegralNumber()) throw ApiError.bad(field, field + ": an integer is required, got " + v);
        int x = v.asInt();
        if (x < min || x > max) throw ApiError.bad(field, field + ": " + x + " is outside [" + min + ", " + max + "]");
        return x;
    }

    private static long longValue(JsonNode o, String field) {
        JsonNode v = o.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiError.bad(field, field + ": an integer is required, got " + v);
        return v.asLong();
    }

    private static double number(JsonNode o, String field, double min, double max, double absent) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return absent;
        if (!v.isNumber()) throw ApiError.bad(field, field + ": a number is required, got " + v);
        double x = v.asDouble();
        if (!(x >= min && x <= max)) throw ApiError.bad(field, field + ": " + x + " is outside [" + min + ", " + max + "]");
        return x;
    }

    private static boolean bool(JsonNode o, String field, boolean absent) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return absent;
        if (!v.isBoolean()) throw ApiError.bad(field, field + ": true or false is required, got " + v);
        return v.asBoolean();
    }

    /** The field an engine refusal names ("max_tokens: …", "prompt: …", "model: …"). */
    private static String param(String message) {
        if (message == null) return null;
        int colon = message.indexOf(':');
        String head = colon > 0 ? message.substring(0, colon) : "";
        return switch (head) {
            case "max_tokens", "model", "n" -> head;
            default -> "messages";
        };
    }

    // ------------------------------------------------------------------ responses

    private static void send(HttpExchange ex, int status, String type, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static void sendError(HttpExchange ex, int status, String type, String param, String message) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode e = root.putObject("error").put("message", message).put("type", type);
        if (param != null) e.put("param", param);
        else e.putNull("param");
        e.putNull("code");
        send(ex, status, "application/json", JSON.writeValueAsString(root));
    }
}

package dev.jomni.omni.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.BadRequestException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionContentPart;
import com.openai.models.chat.completions.ChatCompletionContentPartInputAudio;
import com.openai.models.chat.completions.ChatCompletionContentPartText;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.models.Model;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The official OpenAI Java SDK against the server on the tiny model, with the tiny LoRA adapter as a second model. */
class OpenAiSdkTest {
    static GenerationEngine engine;
    static OpenAiServer server;
    static OpenAIClient client;

    static Path tiny(String name) throws Exception { return Path.of(OpenAiSdkTest.class.getResource("/tiny/" + name).toURI()); }

    @BeforeAll
    static void start() throws Exception {
        Thinker thinker = Thinker.load(tiny("model"), DType.F32, Device.cpu());
        var encoder = ChatEncoder.load(tiny("tokenizer"), thinker.config.audio().nWindow());
        var config = new OpenAiServer.Config("tiny", encoder, LogMel.of(PreprocessorConfig.load(tiny("model"), thinker.config.audio())),
                Set.of(), null, 16, Duration.ofSeconds(120));
        engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, 2000, 16, 256));
        engine.loadAdapter("tuned", tiny("lora/adapter"));
        engine.start();
        server = OpenAiServer.start(engine, config, "127.0.0.1", 0);
        client = OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + server.port() + "/v1").apiKey("unused")
                .timeout(Duration.ofSeconds(120)).maxRetries(0).build();
    }

    @AfterAll
    static void stop() {
        server.close();
        engine.close();
    }

    static ChatCompletionCreateParams audioQuestion(String model, long seed) throws Exception {
        String wav = Base64.getEncoder().encodeToString(Files.readAllBytes(tiny("audio0.wav")));
        var audio = ChatCompletionContentPartInputAudio.builder().inputAudio(ChatCompletionContentPartInputAudio.InputAudio.builder()
                .data(wav).format(ChatCompletionContentPartInputAudio.InputAudio.Format.WAV).build()).build();
        return ChatCompletionCreateParams.builder().model(model).maxTokens(8).temperature(1.0).seed(seed)
                .addSystemMessage("You are a helpful assistant.")
                .addUserMessageOfArrayOfContentParts(List.of(ChatCompletionContentPart.ofInputAudio(audio),
                        ChatCompletionContentPart.ofText(ChatCompletionContentPartText.builder().text("What do you hear?").build())))
                .build();
    }

    @Test
    void theSdkListsModelsCompletesAndStreams() throws Exception {
        List<String> ids = client.models().list().data().stream().map(Model::id).toList();
        assertEquals(List.of("tiny", "tuned"), ids);
        ChatCompletion c = client.chat().completions().create(audioQuestion("tiny", 5));
        ChatCompletion.Choice choice = c.choices().getFirst();
        assertEquals(ChatCompletion.Choice.FinishReason.LENGTH, choice.finishReason());
        assertEquals(8, c.usage().orElseThrow().completionTokens());
        String whole = choice.message().content().orElseThrow();
        var streamed = new StringBuilder();
        try (var stream = client.chat().completions().createStreaming(audioQuestion("tiny", 5))) {
            stream.stream().forEach((ChatCompletionChunk chunk) -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(whole, streamed.toString(), "the same seed, the same text, streamed or not");
        String tuned = client.chat().completions().create(audioQuestion("tuned", 5)).choices().getFirst().message().content().orElseThrow();
        assertTrue(!tuned.equals(whole), "the adapter changes the sample: " + tuned);
    }

    @Test
    void theSdkSeesOpenAiErrors() {
        var e = assertThrows(BadRequestException.class, () -> client.chat().completions().create(audioQuestion("nope", 1)));
        assertEquals(400, e.statusCode());
        assertEquals("model", e.param().orElseThrow());
    }

    /** 200 requests from 16 client threads, streamed and not, base and adapter: every answer well-formed, no block left behind. */
    @Test
    void aLoadOf200RequestsFrom16ThreadsIsServedWhole() throws Exception {
        var pool = Executors.newFixedThreadPool(16);
        var problems = new ConcurrentLinkedQueue<String>();
        List<Future<?>> done = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            int k = i;
            done.add(pool.submit(() -> {
                var p = ChatCompletionCreateParams.builder().model(k % 3 == 0 ? "tuned" : "tiny").maxTokens(4 + k % 5).temperature(k % 2 == 0 ? 0.0 : 0.8)
                        .seed(k).addUserMessage("Question number " + k).build();
                if (k % 4 == 0) {
                    int[] chunks = {0};
                    String[] finish = {null};
                    try (var s = client.chat().completions().createStreaming(p)) {
                        s.stream().forEach(ch -> ch.choices().forEach(c -> {
                            chunks[0]++;
                            c.finishReason().ifPresent(f -> finish[0] = f.asString());
                        }));
                    }
                    if (!"length".equals(finish[0]) || chunks[0] < 2) problems.add("stream " + k + ": finish " + finish[0] + ", " + chunks[0] + " chunks");
                } else {
                    var c = client.chat().completions().create(p);
                    long tokens = c.usage().orElseThrow().completionTokens();
                    if (tokens != 4 + k % 5 || !c.choices().getFirst().finishReason().equals(ChatCompletion.Choice.FinishReason.LENGTH))
                        problems.add("request " + k + ": " + tokens + " tokens, " + c.choices().getFirst().finishReason());
                }
                return null;
            }));
        }
        for (var f : done) f.get();
        pool.shutdown();
        assertTrue(problems.isEmpty(), String.join("\n", problems));
        assertEquals(0, engine.stats().blocksUsed());
        assertEquals(0, engine.stats().running());
    }
}

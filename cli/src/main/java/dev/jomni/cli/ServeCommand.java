package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.GenerationConfig;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.serve.OpenAiServer;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Serves the thinker over OpenAI's chat-completions API until stopped. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the thinker over an OpenAI-compatible HTTP API (POST /v1/chat/completions, GET /v1/models, /health, /metrics).")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Inference use4bit = new Use4bit.Inference();

    /** Running servers' stop signals, so that tests can end them. */
    private static final List<CountDownLatch> RUNNING = new CopyOnWriteArrayList<>();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "model folder (config.json, safetensors, preprocessor_config.json)")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "tokenizer folder (tokenizer.json, or vocab.json + merges.txt, with tokenizer_config.json); default: the model folder")
    Path tokenizer;

    @Option(names = "--adapter", paramLabel = "NAME=DIR", description = "a PEFT LoRA adapter served as model NAME (repeatable); the base stays unmerged")
    Map<String, Path> adapters = new LinkedHashMap<>();

    @Option(names = "--served-model-name", paramLabel = "NAME", description = "the base model's name in requests (default: the model folder's name)")
    String servedName;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on; 0.0.0.0 for every interface (default ${DEFAULT-VALUE})") String host;
    @Option(names = "--port", defaultValue = "8901", description = "0 for a free port (default ${DEFAULT-VALUE})") int port;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default ${DEFAULT-VALUE})") String device;
    @Option(names = "--allowed-local-media-path", paramLabel = "DIR", description = "audio_url file:// paths are read only under this folder")
    Path allowedMedia;
    @Option(names = "--max-running", defaultValue = "16", description = "sequences decoded together (default ${DEFAULT-VALUE})") int maxRunning;
    @Option(names = "--max-queued", defaultValue = "256", description = "waiting requests before 429 (default ${DEFAULT-VALUE})") int maxQueued;
    @Option(names = "--kv-blocks", defaultValue = "4096", description = "KV cache blocks (default ${DEFAULT-VALUE})") int kvBlocks;
    @Option(names = "--block-size", defaultValue = "16", description = "tokens per KV block (default ${DEFAULT-VALUE})") int blockSize;
    @Option(names = "--max-tokens", description = "max_tokens when a request sets none (" + GenerationDefaults.FROM_FILE + "max_new_tokens, else 1024);"
            + " a request's temperature, top_p, top_k, min_p and repetition_penalty default to the file's too, else OpenAI's") Integer defaultMaxTokens;
    @Mixin
    GenerationDefaults generationConfig = new GenerationDefaults();
    @Option(names = "--request-timeout", defaultValue = "600", paramLabel = "SECONDS", description = "a request still running after this gets a 408 and is cancelled (default ${DEFAULT-VALUE})") long timeoutSeconds;

    @Override
    public Integer call() throws IOException, InterruptedException {
        Device d = Device.parse(device);
        Thinker thinker = use4bit.load(model, d.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16, d);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : model, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()));
        GenerationConfig g = generationConfig.load(model, System.err);
        Set<Long> stops = new HashSet<>();
        GenerationDefaults.addStops(stops, encoder.tokenizer(), g);
        var openAi = OpenAiServer.SamplingDefaults.OPENAI;
        var sampling = new OpenAiServer.SamplingDefaults(g.temperature().orElse(openAi.temperature()), g.topP().orElse(openAi.topP()),
                g.topK().orElse(openAi.topK()), g.minP().orElse(openAi.minP()), g.repetitionPenalty().orElse(openAi.repetitionPenalty()));
        String name = servedName != null ? servedName : model.toAbsolutePath().normalize().getFileName().toString();
        Path root = allowedMedia == null ? null : allowedMedia.toRealPath();
        var stop = new CountDownLatch(1);
        try (var engine = new GenerationEngine(thinker, new GenerationEngine.Options(blockSize, kvBlocks, maxRunning, maxQueued))) {
            for (var a : adapters.entrySet()) {
                if (a.getKey().equals(name)) throw new IllegalArgumentException("--adapter " + a.getKey() + ": the base model is served under that name");
                engine.loadAdapter(a.getKey(), a.getValue());
            }
            engine.start();
            var config = new OpenAiServer.Config(name, encoder, logMel, Set.copyOf(stops), root,
                    GenerationDefaults.pick(defaultMaxTokens, g.maxNewTokens(), 1024), java.time.Duration.ofSeconds(timeoutSeconds), sampling);
            try (var server = OpenAiServer.start(engine, config, host, port)) {
                System.out.println("omni serve: http://" + host + ":" + server.port() + "/v1 serving " + name
                        + (adapters.isEmpty() ? "" : " and adapters " + String.join(", ", adapters.keySet())));
                System.out.flush();
                RUNNING.add(stop);
                Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown));
                stop.await();
            } finally {
                RUNNING.remove(stop);
            }
        }
        return 0;
    }

    /** Ends every server started in this JVM (tests). */
    static void stopAll() { RUNNING.forEach(CountDownLatch::countDown); }
}

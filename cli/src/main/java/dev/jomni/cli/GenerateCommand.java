package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.omni.text.ChatMessage;
import dev.jomni.omni.text.Content;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Answers one question about one audio clip, streaming the text as it is generated. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate an answer to a prompt about an audio file, printing tokens as they come.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Inference use4bit = new Use4bit.Inference();

    @Option(names = "--model", required = true, description = "model folder (config.json, safetensors, preprocessor_config.json)")
    Path model;

    @Option(names = "--tokenizer", description = "tokenizer folder (tokenizer.json, tokenizer_config.json); default: the model folder")
    Path tokenizer;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply to the thinker")
    Path adapter;

    @Option(names = "--audio", required = true, description = "WAV file (any rate; resampled to 16 kHz)")
    Path audio;

    @Option(names = "--prompt", required = true, description = "the question, after the audio in the user turn")
    String prompt;

    @Option(names = "--system", description = "system prompt")
    String system;

    @Option(names = "--max-new-tokens", defaultValue = "1024", paramLabel = "N",
            description = "most tokens to generate; it stops earlier at <|im_end|> or <|endoftext|> (default ${DEFAULT-VALUE})") int maxNewTokens;
    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "sampling temperature; 0 for greedy (default ${DEFAULT-VALUE})") double temperature;
    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K", description = "sample among the K likeliest tokens; 0 for no top-k filter (default ${DEFAULT-VALUE})") int topK;
    @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P",
            description = "nucleus sampling: the likeliest tokens up to probability P; 1.0 for no filter (default ${DEFAULT-VALUE})") double topP;
    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "sampling seed; the same seed gives the same answer (default ${DEFAULT-VALUE})") long seed;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default ${DEFAULT-VALUE})") String device;

    @Override
    public Integer call() {
        Device d = Device.parse(device);
        Thinker thinker = use4bit.load(model, d.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16, d);
        if (adapter != null) LoraAdapter.apply(adapter, thinker);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : model, thinker.config.audio().nWindow());
        LogMel.Batch features = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()))
                .batch(List.of(Resampler.to16k(Wav.read(audio))));
        var clip = new Thinker.Audio(Tensor.of(features.values(), 1, features.melBins(), features.frames()), features.validFrames());
        List<ChatMessage> messages = new ArrayList<>();
        if (system != null) messages.add(ChatMessage.system(system));
        messages.add(ChatMessage.user(new Content.Audio(features.validFrames()[0]), new Content.Text(prompt)));
        int[] ids = encoder.encode(messages, true);
        long[] promptIds = new long[ids.length];
        for (int i = 0; i < ids.length; i++) promptIds[i] = ids[i];
        Set<Long> stops = new HashSet<>();
        for (String t : new String[] {"<|im_end|>", "<|endoftext|>"}) encoder.tokenizer().findTokenId(t).ifPresent(id -> stops.add((long) id));
        var settings = new Generation.Settings(maxNewTokens, temperature, topK, topP, seed, stops);
        List<Integer> produced = new ArrayList<>();
        int[] printed = {0};
        Generation.generate(thinker, promptIds, clip, settings, token -> {
            if (stops.contains(token)) return;
            produced.add((int) token);
            String text = encoder.tokenizer().decode(produced.stream().mapToInt(Integer::intValue).toArray(), true);
            if (!text.endsWith("\uFFFD") && text.length() > printed[0]) {        // wait for the rest of a split UTF-8 character
                System.out.print(text.substring(printed[0]));
                System.out.flush();
                printed[0] = text.length();
            }
        });
        System.out.println();
        return 0;
    }
}

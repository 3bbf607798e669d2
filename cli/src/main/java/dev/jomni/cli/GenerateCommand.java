package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.audio.Resampler;
import dev.jomni.omni.audio.Wav;
import dev.jomni.omni.config.GenerationConfig;
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

    @Option(names = "--tokenizer", description = "tokenizer folder (tokenizer.json, or vocab.json + merges.txt, with tokenizer_config.json); default: the model folder")
    Path tokenizer;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply to the thinker")
    Path adapter;

    @Option(names = "--audio", required = true, description = "WAV file (any rate; resampled to 16 kHz)")
    Path audio;

    @Option(names = "--prompt", required = true, description = "the question, after the audio in the user turn")
    String prompt;

    @Option(names = "--system", description = "system prompt")
    String system;

    @Mixin
    GenerationDefaults generationConfig = new GenerationDefaults();

    @Option(names = "--max-new-tokens", paramLabel = "N",
            description = "most tokens to generate; it stops earlier at <|im_end|>, <|endoftext|> or the file's eos_token_id ("
                    + GenerationDefaults.FROM_FILE + "max_new_tokens, else 1024)") Integer maxNewTokens;
    @Option(names = "--temperature", paramLabel = "T", description = "sampling temperature; 0 for greedy (" + GenerationDefaults.FROM_FILE + "temperature, else 0)") Double temperature;
    @Option(names = "--top-k", paramLabel = "K", description = "sample among the K likeliest tokens; 0 for no top-k filter (" + GenerationDefaults.FROM_FILE + "top_k, else 0)") Integer topK;
    @Option(names = "--top-p", paramLabel = "P",
            description = "nucleus sampling: the likeliest tokens up to probability P; 1.0 for no filter (" + GenerationDefaults.FROM_FILE + "top_p, else 1.0)") Double topP;
    @Option(names = "--min-p", paramLabel = "P", description = "drop tokens less likely than P times the likeliest; 0 for no filter (" + GenerationDefaults.FROM_FILE + "min_p, else 0)") Double minP;
    @Option(names = "--repetition-penalty", paramLabel = "R",
            description = "penalize tokens already in the prompt or answer (a positive logit divided by R, a negative one multiplied); 1.0 for none (" + GenerationDefaults.FROM_FILE + "repetition_penalty, else 1.0)") Double repetitionPenalty;
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
        GenerationConfig g = generationConfig.load(model, System.err);
        Set<Long> stops = new HashSet<>();
        GenerationDefaults.addStops(stops, encoder.tokenizer(), g);
        var settings = new Generation.Settings(GenerationDefaults.pick(maxNewTokens, g.maxNewTokens(), 1024),
                GenerationDefaults.pick(temperature, g.temperature(), 0), GenerationDefaults.pick(topK, g.topK(), 0),
                GenerationDefaults.pick(topP, g.topP(), 1.0), seed, stops, GenerationDefaults.pick(minP, g.minP(), 0),
                GenerationDefaults.pick(repetitionPenalty, g.repetitionPenalty(), 1.0));
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

package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.GenerationConfig;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.GenerationEngine;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.rest.CandidateSource;
import dev.jomni.rest.EngineCandidates;
import dev.jomni.rest.Filter;
import dev.jomni.rest.HttpCandidates;
import dev.jomni.rest.RestOptions;
import dev.jomni.rest.RestRun;
import dev.jomni.rest.SftPolicy;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.score.Matching;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code omni rest}: ReST with rest/run_rest.py's flags and defaults, every iteration in this process. */
@Command(name = "rest", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"ReST (arXiv:2308.08998) as the original rest/run_rest.py runs it, with every iteration working: per iteration,",
                "generate --num_samples candidates per problem with the current policy, keep the correct ones (--filter_strategy),",
                "fine-tune a LoRA adapter on them at the iteration's learning rate, repeat. Generation runs in this process on the",
                "trainer's weights (iteration i samples iteration i-1's adapter), or on --generator-url (vLLM, omni serve).",
                "Writes OUT/config.json, OUT/iteration_i/{generations/generations.jsonl, filtered/filtered.json, training/},",
                "OUT/metrics.jsonl and OUT/accuracy.png, and prints a summary table per iteration."})
final class RestCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Training use4bit = new Use4bit.Training();

    @Option(names = {"--data_path", "--data-path"}, required = true, paramLabel = "FILE", description = "Problems: seed records or MMAR meta (JSON/JSONL).")
    Path dataPath;
    @Option(names = {"--audio_dir", "--audio-dir"}, paramLabel = "DIR", description = "Audio root (default: the data file's folder).")
    Path audioDir;
    @Option(names = {"--eval_data_path", "--eval-data-path"}, paramLabel = "FILE", description = "Held-out problems, answered greedily before and after each iteration.")
    Path evalDataPath;
    @Option(names = {"--output_base_dir", "--output-base-dir"}, defaultValue = "./outputs/rest", paramLabel = "DIR", description = "Output folder (default: ${DEFAULT-VALUE}).")
    Path outputBaseDir;
    @Option(names = {"--base_model", "--base-model", "--model"}, required = true, paramLabel = "DIR", description = "Model folder (config.json + safetensors).")
    Path baseModel;
    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer folder (default: the model folder).")
    Path tokenizer;
    @Option(names = "--adapter", paramLabel = "DIR", description = "Start from this PEFT adapter (e.g. an SFT warm-up) instead of the base model.")
    Path adapter;
    @Option(names = {"--num_iterations", "--num-iterations"}, defaultValue = "3", description = "Iterations (default: ${DEFAULT-VALUE}).")
    int numIterations;
    @Option(names = {"--num_samples", "--num-samples"}, defaultValue = "16", description = "Candidates per problem (default: ${DEFAULT-VALUE}).")
    int numSamples;
    @Option(names = "--temperature", description = "Sampling temperature (" + GenerationDefaults.FROM_FILE + "temperature, else 0.9).")
    Double temperature;
    @Option(names = {"--top_p", "--top-p"}, description = "Nucleus sampling (" + GenerationDefaults.FROM_FILE + "top_p, else 0.95).")
    Double topP;
    @Option(names = {"--max_tokens", "--max-tokens"}, defaultValue = "2048",
            description = "Max new tokens per candidate, a run budget that generation_config.json's max_new_tokens does not set (default: ${DEFAULT-VALUE}).")
    int maxTokens;
    @Mixin
    GenerationDefaults generationConfig = new GenerationDefaults();
    @Option(names = {"--batch_size", "--batch-size"}, defaultValue = "8", description = "Problems generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;
    @Option(names = {"--filter_strategy", "--filter-strategy"}, defaultValue = "top_k", description = "top_k, all, best, learning_zone (default: ${DEFAULT-VALUE}).")
    String filterStrategy;
    @Option(names = {"--top_k", "--top-k"}, defaultValue = "3", description = "k of top_k and learning_zone (default: ${DEFAULT-VALUE}).")
    int topK;
    @Option(names = {"--learning_zone_only", "--learning-zone-only"}, description = "learning_zone: drop challenging and almost-mastered problems.")
    boolean learningZoneOnly;
    @Option(names = {"--include_mastered", "--include-mastered"}, description = "learning_zone: keep a sample of mastered problems.")
    boolean includeMastered;
    @Option(names = {"--mastered_sample_rate", "--mastered-sample-rate"}, defaultValue = "0.1", description = "learning_zone with --include_mastered: the fraction of mastered problems kept (default: ${DEFAULT-VALUE}).")
    double masteredSampleRate;
    @Option(names = "--ignore_weights", description = "Train learning_zone samples at weight 1 (the original never read the weights).")
    boolean ignoreWeights;
    @Option(names = "--no_dedup", description = "Keep identical correct solutions (the original's behaviour); by default duplicates are dropped.")
    boolean noDedup;
    @Option(names = {"--learning_rates", "--learning-rates"}, arity = "1..*", split = ",", defaultValue = "2e-5,1e-5,5e-6",
            description = "One per iteration, the last repeated (default: ${DEFAULT-VALUE}).")
    List<Double> learningRates;
    @Option(names = {"--num_epochs", "--num-epochs"}, defaultValue = "2", description = "Epochs per iteration (default: ${DEFAULT-VALUE}).")
    double numEpochs;
    @Option(names = "--restart_from_base", description = {"Each iteration trains a fresh adapter on the base model (the ReST paper).",
            "Default: iteration i continues iteration i-1's adapter (the original's continuation)."})
    boolean restartFromBase;
    @Option(names = "--resume", description = "Continue the run in --output_base_dir where it stopped (any phase, mid-generation too).")
    boolean resume;
    @Option(names = {"--generator-url", "--generator_url", "--vllm_base_url"}, paramLabel = "URL",
            description = "Generate on an OpenAI-compatible server (e.g. http://127.0.0.1:8901/v1) instead of in process; adapters are named iteration_i.")
    String generatorUrl;
    @Option(names = {"--served-model-name", "--served_model_name"}, paramLabel = "NAME", description = "The base model's name on the server (default: the model folder's name).")
    String servedName;
    @Option(names = "--prompt", defaultValue = "rest", paramLabel = "PRESET", description = "Prompt for generation and training: rest, rest-sft, mmar-baseline, v12 (default: ${DEFAULT-VALUE}).")
    String prompt;
    @Option(names = "--matching", defaultValue = "strict", description = "strict or legacy-substring (rest/filter.py's) (default: ${DEFAULT-VALUE}).")
    String matching;
    @Option(names = "--seed", defaultValue = "42", description = "Seed for sampling, LoRA init, data order (default: ${DEFAULT-VALUE}).")
    long seed;
    @Option(names = {"--lora_r", "--lora-r"}, defaultValue = "64", description = "LoRA rank of each iteration's adapter (default: ${DEFAULT-VALUE}).") int loraR;
    @Option(names = {"--lora_alpha", "--lora-alpha"}, defaultValue = "128", description = "LoRA alpha (default: ${DEFAULT-VALUE}).") double loraAlpha;
    @Option(names = {"--lora_dropout", "--lora-dropout"}, defaultValue = "0.05", description = "Dropout on the LoRA input, Linear targets (default: ${DEFAULT-VALUE}).") double loraDropout;
    @Option(names = {"--lora_targets", "--lora-targets"}, defaultValue = "all", description = "all, attention, moe (default: ${DEFAULT-VALUE}).")
    String loraTargets;
    @Option(names = {"--per_device_train_batch_size", "--per-device-train-batch-size"}, defaultValue = "1", description = "Samples per training micro-batch (default: ${DEFAULT-VALUE}).") int trainBatchSize;
    @Option(names = {"--gradient_accumulation_steps", "--gradient-accumulation-steps"}, defaultValue = "8", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).") int gradientAccumulationSteps;
    @Option(names = {"--warmup_ratio", "--warmup-ratio"}, defaultValue = "0.1", description = "Learning-rate warmup as a fraction of each iteration's steps (default: ${DEFAULT-VALUE}).") double warmupRatio;
    @Option(names = {"--lr_scheduler_type", "--lr-scheduler-type"}, defaultValue = "linear", description = "linear, cosine, constant, constant_with_warmup (default: ${DEFAULT-VALUE}).") String lrSchedulerType;
    @Option(names = "--optim", defaultValue = "paged_adamw_8bit", description = "adamw_torch, adamw_8bit, paged_adamw_8bit (default: ${DEFAULT-VALUE}).") String optim;
    @Option(names = {"--max_length", "--max-length"}, defaultValue = "4096", description = "Longest training sample in tokens (default: ${DEFAULT-VALUE}).") int maxLength;
    @Option(names = {"--save_steps", "--save-steps"}, defaultValue = "500", description = "Checkpoint every N steps within an iteration's training (default: ${DEFAULT-VALUE}).") int saveSteps;
    @Option(names = {"--save_total_limit", "--save-total-limit"}, defaultValue = "3", description = "Keep the N newest checkpoints; 0 keeps all (default: ${DEFAULT-VALUE}).") int saveTotalLimit;
    @Option(names = {"--gradient_checkpointing", "--gradient-checkpointing"}, arity = "0..1", defaultValue = "true", fallbackValue = "true", description = "Recompute each decoder layer in backward (default: ${DEFAULT-VALUE}).") boolean gradientCheckpointing;
    @Option(names = "--kv_blocks", defaultValue = "4096", description = "KV cache blocks of 16 tokens for in-process generation (default: ${DEFAULT-VALUE}).") int kvBlocks;
    @Option(names = "--max_running", defaultValue = "64", description = "Sequences decoded together (default: ${DEFAULT-VALUE}).") int maxRunning;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu (default) or cuda[:N]: generation and training on that device;"
            + " on CUDA the base is kept in bf16, the LoRA master weights and the optimizer state f32 (or 8-bit) on the device.") String device;

    @Override
    public Integer call() throws Exception {
        Device d = Device.parse(device);
        Filter filter = Filter.parse(filterStrategy, topK, learningZoneOnly, includeMastered, masteredSampleRate, seed);
        String name = servedName != null ? servedName : baseModel.toAbsolutePath().normalize().getFileName().toString();
        GenerationConfig g = generationConfig.load(baseModel, System.err);
        double temperature = GenerationDefaults.pick(this.temperature, g.temperature(), 0.9), topP = GenerationDefaults.pick(this.topP, g.topP(), 0.95);
        var options = new RestOptions(dataPath, audioDir, evalDataPath, outputBaseDir, name, numIterations, numSamples, temperature, topP, maxTokens,
                filter, learningRates, numEpochs, restartFromBase, !noDedup, batchSize, seed, PromptPreset.byId(prompt), Matching.byId(matching),
                adapter);
        Thinker thinker = use4bit.load(baseModel, d.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16, d);
        thinker.gradientCheckpointing(gradientCheckpointing);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : baseModel, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(baseModel, thinker.config.audio()));
        var sft = new SftTrainer.Config(outputBaseDir, numEpochs, -1, trainBatchSize, gradientAccumulationSteps, learningRates.getFirst(), lrSchedulerType,
                warmupRatio, 0, 0.0, 1.0, saveSteps, saveTotalLimit, 1, seed, optim);
        var console = System.console();
        boolean tty = console != null && console.isTerminal();
        var policy = new SftPolicy(thinker, encoder, logMel, options.prompt(), maxLength, spec(), sft, restartFromBase,
                filter.weighted() && !ignoreWeights, System.err, tty);
        if (filter.weighted()) System.err.println(ignoreWeights ? "learning_zone: weights ignored (--ignore_weights), as the original did"
                : "learning_zone: each sample's loss is scaled by its weight (1.5 learning zone, 1.0 challenging, 0.5 almost mastered, 0.1 mastered)");
        GenerationEngine engine = null;
        CandidateSource source;
        if (generatorUrl != null) source = new HttpCandidates(generatorUrl, name, topP, maxTokens, Duration.ofMinutes(30));
        else {
            engine = new GenerationEngine(thinker, new GenerationEngine.Options(16, kvBlocks, maxRunning, 4096));
            source = new EngineCandidates(engine, encoder, logMel, topP, maxTokens, policy::live);
        }
        try {
            var run = new RestRun(options, source, policy, generatorUrl == null ? "in-process" : generatorUrl, System.err, tty, resume);
            System.out.print(run.run().table());
        } finally {
            if (engine != null) engine.close();
        }
        return 0;
    }

    private LoraAdapter.Spec spec() {
        List<String> all = SftCommand.ALL;
        List<String> list = switch (loraTargets) {
            case "all" -> all;
            case "attention" -> all.subList(0, 4);
            case "moe" -> all.subList(4, 7);
            default -> throw new IllegalArgumentException("--lora_targets " + loraTargets + ": known are all, attention, moe");
        };
        return new LoraAdapter.Spec(loraR, loraAlpha, loraDropout, false, list, null);
    }
}

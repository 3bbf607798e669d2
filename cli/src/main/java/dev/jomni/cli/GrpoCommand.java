package dev.jomni.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.grpo.Advantages;
import dev.jomni.grpo.GrpoLoss;
import dev.jomni.grpo.GrpoPrompt;
import dev.jomni.grpo.GrpoTrainer;
import dev.jomni.grpo.Rewards;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.GenerationConfig;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.data.PromptPreset;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code omni grpo}: GRPO of a LoRA adapter on the audio questions, with TRL GRPOConfig's flag names and train_grpo.py's settings as defaults. */
@Command(name = "grpo", mixinStandardHelpOptions = true,
        description = {"GRPO on the thinker's LoRA adapter over seed-format audio records, as TRL's GRPOTrainer computes it, with the audio",
                "in the prompt (the chat template, as eval and ReST build it). Defaults are the original train_grpo.py's settings",
                "(num_generations 4, beta 0.1, learning_rate 1e-6, 3 epochs, batch 1 x accumulation 8, warmup 0.1, temperature 0.7);",
                "TRL's own defaults differ: num_generations 8, beta 0 (no reference pass), temperature 1.0.",
                "Writes OUTPUT_DIR/checkpoint-N/, metrics.jsonl (TRL's field names) and the final adapter (PEFT's format) in OUTPUT_DIR."})
final class GrpoCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Training use4bit = new Use4bit.Training();

    @Option(names = {"--model", "--model_name_or_path"}, required = true, paramLabel = "DIR", description = "Model folder (config.json + safetensors).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer folder (default: the model folder).")
    Path tokenizer;

    @Option(names = {"--train_data_path", "--data"}, required = true, paramLabel = "FILE", description = "Records: a JSON array or JSONL with id, sound, question, answer.")
    Path data;

    @Option(names = "--audio_dir", paramLabel = "DIR", description = "Audio root (default: the data file's folder).")
    Path audioDir;

    @Option(names = "--output_dir", paramLabel = "DIR", description = "Output folder (default: models/grpo_<model>_<yyyyMMdd_HHmmss>).")
    Path outputDir;

    @Option(names = "--prompt", defaultValue = "rest", paramLabel = "PRESET", description = "Prompt preset (default: ${DEFAULT-VALUE}: think, then ANSWER:).")
    String prompt;

    @Option(names = "--num_generations", defaultValue = "4", description = "Completions per prompt, G (default: ${DEFAULT-VALUE}; TRL's is 8).")
    int numGenerations;

    @Option(names = "--beta", defaultValue = "0.1", description = "KL coefficient; 0 skips the reference pass (default: ${DEFAULT-VALUE}; TRL's is 0).")
    double beta;

    @Option(names = "--epsilon", defaultValue = "0.2", description = "Lower clipping epsilon (default: ${DEFAULT-VALUE}).")
    double epsilon;

    @Option(names = "--epsilon_high", description = "Upper clipping epsilon (default: --epsilon; DAPO recommends 0.28, cispo 5.0).")
    Double epsilonHigh;

    @Option(names = "--delta", description = "Two-sided clipping: cap the ratio at delta (default: none).")
    Double delta;

    @Option(names = "--loss_type", defaultValue = "dapo", description = "grpo, bnpo, dr_grpo, dapo, cispo, sapo (default: ${DEFAULT-VALUE}, TRL's).")
    String lossType;

    @Option(names = "--scale_rewards", defaultValue = "group", description = "group, batch, none (default: ${DEFAULT-VALUE}).")
    String scaleRewards;

    @Option(names = "--importance_sampling_level", defaultValue = "token", description = "token, or sequence (GSPO) (default: ${DEFAULT-VALUE}).")
    String importanceSamplingLevel;

    @Option(names = "--num_iterations", defaultValue = "1", description = "Optimizer steps per generation batch, mu (default: ${DEFAULT-VALUE}).")
    int numIterations;

    @Option(names = "--sapo_temperature_pos", defaultValue = "1.0", description = "sapo's tau for positive advantages (default: ${DEFAULT-VALUE}).")
    double sapoPos;

    @Option(names = "--sapo_temperature_neg", defaultValue = "1.05", description = "sapo's tau otherwise (default: ${DEFAULT-VALUE}).")
    double sapoNeg;

    @Option(names = "--mask_truncated_completions", description = "Leave completions that hit max_completion_length out of the loss.")
    boolean maskTruncated;

    @Option(names = "--temperature", description = "Sampling temperature, also dividing the training logits ("
            + GenerationDefaults.FROM_FILE + "temperature, else 0.7; TRL's is 1.0).")
    Double temperature;

    @Option(names = "--top_p", description = "Nucleus sampling (" + GenerationDefaults.FROM_FILE + "top_p, else 1.0).")
    Double topP;

    @Option(names = "--top_k", description = "Top-k sampling; 0 disables (" + GenerationDefaults.FROM_FILE + "top_k, else 0).")
    Integer topK;

    @Option(names = "--max_completion_length", defaultValue = "512",
            description = "New tokens per completion, a training budget that generation_config.json's max_new_tokens does not set (default: ${DEFAULT-VALUE}).")
    int maxCompletionLength;

    @Mixin
    GenerationDefaults generationConfig = new GenerationDefaults();

    @Option(names = "--reward_funcs", defaultValue = "original", description = "Comma-separated: original (train_grpo.py's: exact 1, letter 0.9, contained 0.8), "
            + "strict (the eval's: exactly one choice, the right one), format (a closed think block then an ANSWER: line) (default: ${DEFAULT-VALUE}).")
    String rewardFuncs;

    @Option(names = "--reward_weights", description = "Comma-separated weights, one per reward function (default: all 1).")
    String rewardWeights;

    @Option(names = "--num_train_epochs", defaultValue = "3", description = "Epochs (default: ${DEFAULT-VALUE}).")
    double numTrainEpochs;

    @Option(names = "--max_steps", defaultValue = "-1", description = "Optimizer steps; overrides the epochs when positive (default: ${DEFAULT-VALUE}).")
    int maxSteps;

    @Option(names = "--per_device_train_batch_size", defaultValue = "1", description = "Completions per micro-batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--gradient_accumulation_steps", defaultValue = "8", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).")
    int gradientAccumulationSteps;

    @Option(names = "--learning_rate", defaultValue = "1e-6", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double learningRate;

    @Option(names = "--lr_scheduler_type", defaultValue = "linear", description = "linear, cosine, constant, constant_with_warmup (default: ${DEFAULT-VALUE}).")
    String lrSchedulerType;

    @Option(names = "--warmup_ratio", defaultValue = "0.1", description = "Warmup as a fraction of the steps (default: ${DEFAULT-VALUE}).")
    double warmupRatio;

    @Option(names = "--weight_decay", defaultValue = "0.0", description = "Decoupled weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--max_grad_norm", defaultValue = "1.0", description = "Clip the global gradient norm; 0 disables (default: ${DEFAULT-VALUE}).")
    double maxGradNorm;

    @Option(names = "--save_steps", defaultValue = "500", description = "Checkpoint every N steps (at the end of a num_iterations group), and at the end (default: ${DEFAULT-VALUE}).")
    int saveSteps;

    @Option(names = "--save_total_limit", defaultValue = "3", description = "Keep the N newest checkpoints; 0 keeps all (default: ${DEFAULT-VALUE}).")
    int saveTotalLimit;

    @Option(names = "--logging_steps", defaultValue = "1", description = "Log to metrics.jsonl every N steps (default: ${DEFAULT-VALUE}).")
    int loggingSteps;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for LoRA init, prompt order, sampling and dropout (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--lora_r", defaultValue = "64", description = "LoRA rank (default: ${DEFAULT-VALUE}).")
    int loraR;

    @Option(names = "--lora_alpha", defaultValue = "128", description = "LoRA alpha (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(names = "--lora_dropout", defaultValue = "0.05", description = "Dropout on the LoRA input (default: ${DEFAULT-VALUE}).")
    double loraDropout;

    @Option(names = "--use_rslora", description = "Scale by alpha/sqrt(r) instead of alpha/r.")
    boolean useRslora;

    @Option(names = "--target_modules", paramLabel = "LIST|REGEX", description = "PEFT target_modules (default: the seven projections).")
    String targetModules;

    @Option(names = "--optim", defaultValue = "adamw_torch", description = "adamw_torch, adamw_8bit, paged_adamw_8bit (default: ${DEFAULT-VALUE}).")
    String optim;

    @Option(names = "--resume_from_checkpoint", paramLabel = "DIR|latest", description = "Continue a run exactly from a checkpoint.")
    String resumeFromCheckpoint;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu (default) or cuda[:N]: sampling and training on that device;"
            + " on CUDA the base is kept in bf16, the LoRA master weights and the optimizer state f32 (or 8-bit) on the device.")
    String device;

    @Option(names = "--bf16", description = "Keep the base weights in bf16 (LoRA master weights stay f32).")
    boolean bf16;

    @Override
    public Integer call() throws Exception {
        if (outputDir == null)
            outputDir = Path.of("models", "grpo_" + model.toAbsolutePath().normalize().getFileName() + "_"
                    + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd_HHmmss")));
        Device d = Device.parse(device);
        Thinker thinker = use4bit.load(model, bf16 || d.kind() != Device.Kind.CPU ? DType.BF16 : DType.F32, d);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : model, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()));
        Dataset dataset = Dataset.load(data, LoadOptions.defaults().withAudioDir(audioDir));
        PromptPreset preset = PromptPreset.byId(prompt);
        List<GrpoPrompt> prompts = new ArrayList<>();
        for (AudioQa item : dataset.items()) prompts.add(GrpoPrompt.of(item, preset, encoder, logMel));
        GenerationConfig g = generationConfig.load(model, System.err);
        Set<Long> stops = new HashSet<>();
        GenerationDefaults.addStops(stops, encoder.tokenizer(), g);

        Path resume = null;
        LoraAdapter adapter;
        if (resumeFromCheckpoint != null) {
            resume = SftTrainer.resolveCheckpoint(outputDir, resumeFromCheckpoint);
            int r = new ObjectMapper().readTree(resume.resolve(LoraAdapter.CONFIG).toFile()).path("r").asInt(-1);
            if (r != loraR) throw new IllegalArgumentException(resume.resolve(LoraAdapter.CONFIG) + ": field 'r' is " + r + " but --lora_r is " + loraR);
            adapter = LoraAdapter.apply(resume, thinker, DType.F32);
        } else {
            List<String> targets = targetModules == null ? SftCommand.ALL : List.of(targetModules.split("[,\\s]+"));
            adapter = LoraAdapter.create(thinker, new LoraAdapter.Spec(loraR, loraAlpha, loraDropout, useRslora, targets, null), seed);
        }
        if (!importanceSamplingLevel.equals("token") && !importanceSamplingLevel.equals("sequence"))
            throw new IllegalArgumentException("--importance_sampling_level " + importanceSamplingLevel + ": known are token, sequence");
        var loss = new GrpoLoss.Config(GrpoLoss.LossType.parse(lossType), epsilon, epsilonHigh != null ? epsilonHigh : epsilon, beta,
                importanceSamplingLevel.equals("sequence"), sapoPos, sapoNeg, maxCompletionLength, delta != null ? delta : Double.NaN);
        var config = new GrpoTrainer.Config(outputDir, numTrainEpochs, maxSteps, batchSize, gradientAccumulationSteps, numGenerations, numIterations,
                learningRate, lrSchedulerType, warmupRatio, weightDecay, maxGradNorm, saveSteps, saveTotalLimit, loggingSteps, seed, optim,
                GenerationDefaults.pick(temperature, g.temperature(), 0.7), GenerationDefaults.pick(topP, g.topP(), 1.0),
                GenerationDefaults.pick(topK, g.topK(), 0), maxCompletionLength, maskTruncated, Advantages.Scale.parse(scaleRewards), loss);
        var console = System.console();
        var trainer = new GrpoTrainer(thinker, adapter, prompts, Rewards.parse(rewardFuncs, rewardWeights), config, tokens -> {
            int[] ids = new int[tokens.length];
            for (int i = 0; i < ids.length; i++) ids[i] = (int) tokens[i];
            return encoder.tokenizer().decode(ids, true);
        }, stops, System.err, console != null && console.isTerminal());
        GrpoTrainer.Result r = trainer.train(resume);
        System.out.printf(java.util.Locale.ROOT, "grpo: %d steps, reward %.4f -> %.4f; adapter in %s%n", r.globalStep(), r.firstReward(), r.lastReward(), outputDir);
        return 0;
    }
}

package dev.jomni.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.cuda.CudaBackend;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SftData;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code omni sft}: LoRA supervised fine-tuning of the thinker, with transformers Trainer / TRL flag names and the seed's defaults. */
@Command(name = "sft", mixinStandardHelpOptions = true,
        description = {"Fine-tune a LoRA adapter on the thinker from seed-format records with a 'response' (the SFT target),",
                "as the original rest/train.py does with transformers' Trainer (defaults are its settings).",
                "Writes OUTPUT_DIR/checkpoint-N/ every --save_steps and at the end, metrics.jsonl, and the final adapter",
                "(adapter_config.json + adapter_model.safetensors, PEFT's format) in OUTPUT_DIR."})
final class SftCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Training use4bit = new Use4bit.Training();

    @Option(names = {"--model", "--model_name_or_path", "--model-name-or-path"}, required = true, paramLabel = "DIR", description = "Model folder (config.json + safetensors).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer folder (default: the model folder).")
    Path tokenizer;

    @Option(names = {"--data", "--train_data_path", "--train-data-path"}, required = true, paramLabel = "FILE",
            description = "Training records: a JSON array or JSONL with id, sound, question, answer, response.")
    Path data;

    @Option(names = {"--audio_dir", "--audio-dir"}, paramLabel = "DIR", description = "Audio root (default: the data file's folder).")
    Path audioDir;

    @Option(names = {"--output_dir", "--output-dir"}, paramLabel = "DIR", description = "Output folder (default: models/sft_<model>_<yyyyMMdd_HHmmss>).")
    Path outputDir;

    @Option(names = "--prompt", defaultValue = "rest-sft", paramLabel = "PRESET", description = "Prompt preset (default: ${DEFAULT-VALUE}, rest/train.py's).")
    String prompt;

    @Option(names = {"--max_length", "--max-length"}, defaultValue = "4096", description = "Longest sample in tokens (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = {"--num_train_epochs", "--num-train-epochs", "--num_epochs", "--num-epochs"}, defaultValue = "2", description = "Epochs (default: ${DEFAULT-VALUE}).")
    double numTrainEpochs;

    @Option(names = {"--max_steps", "--max-steps"}, defaultValue = "-1", description = "Optimizer steps; overrides the epochs when positive (default: ${DEFAULT-VALUE}).")
    int maxSteps;

    @Option(names = {"--per_device_train_batch_size", "--per-device-train-batch-size", "--batch_size"}, defaultValue = "1", description = "Samples per micro-batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"--gradient_accumulation_steps", "--gradient-accumulation-steps"}, defaultValue = "8", description = "Micro-batches per optimizer step (default: ${DEFAULT-VALUE}).")
    int gradientAccumulationSteps;

    @Option(names = {"--learning_rate", "--learning-rate"}, defaultValue = "2e-5", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double learningRate;

    @Option(names = {"--lr_scheduler_type", "--lr-scheduler-type"}, defaultValue = "linear", description = "linear, cosine, constant, constant_with_warmup (default: ${DEFAULT-VALUE}).")
    String lrSchedulerType;

    @Option(names = {"--warmup_ratio", "--warmup-ratio"}, defaultValue = "0.1", description = "Warmup as a fraction of the steps (default: ${DEFAULT-VALUE}).")
    double warmupRatio;

    @Option(names = {"--warmup_steps", "--warmup-steps"}, defaultValue = "0", description = "Warmup steps; overrides the ratio when positive (default: ${DEFAULT-VALUE}).")
    int warmupSteps;

    @Option(names = {"--weight_decay", "--weight-decay"}, defaultValue = "0.0", description = "Decoupled weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = {"--max_grad_norm", "--max-grad-norm"}, defaultValue = "1.0", description = "Clip the global gradient norm; 0 disables (default: ${DEFAULT-VALUE}).")
    double maxGradNorm;

    @Option(names = {"--save_steps", "--save-steps"}, defaultValue = "500", description = "Checkpoint every N steps, and at the end (default: ${DEFAULT-VALUE}).")
    int saveSteps;

    @Option(names = {"--save_total_limit", "--save-total-limit"}, defaultValue = "3", description = "Keep the N newest checkpoints; 0 keeps all (default: ${DEFAULT-VALUE}).")
    int saveTotalLimit;

    @Option(names = {"--logging_steps", "--logging-steps"}, defaultValue = "1", description = "Log to metrics.jsonl every N steps (default: ${DEFAULT-VALUE}).")
    int loggingSteps;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for LoRA init, data order and dropout (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = {"--lora_r", "--lora-r"}, defaultValue = "64", description = "LoRA rank (default: ${DEFAULT-VALUE}).")
    int loraR;

    @Option(names = {"--lora_alpha", "--lora-alpha"}, defaultValue = "128", description = "LoRA alpha (default: ${DEFAULT-VALUE}).")
    double loraAlpha;

    @Option(names = {"--lora_dropout", "--lora-dropout"}, defaultValue = "0.05", description = "Dropout on the LoRA input (default: ${DEFAULT-VALUE}).")
    double loraDropout;

    @Option(names = {"--use_rslora", "--use-rslora"}, description = "Scale by alpha/sqrt(r) (rsLoRA) instead of alpha/r.")
    boolean useRslora;

    @Option(names = {"--lora_targets", "--lora-targets"}, defaultValue = "all", description = "The seed's presets: all, attention, moe (default: ${DEFAULT-VALUE}); --target_modules overrides.")
    String loraTargets;

    @Option(names = {"--target_modules", "--target-modules"}, paramLabel = "LIST|REGEX",
            description = "PEFT target_modules: names separated by commas match module-name suffixes; a value with regex characters is a full-match regex.")
    String targetModules;

    @Option(names = "--optim", defaultValue = "paged_adamw_8bit", description = "adamw_torch, adamw_8bit, paged_adamw_8bit (default: ${DEFAULT-VALUE}).")
    String optim;

    @Option(names = {"--resume_from_checkpoint", "--resume-from-checkpoint"}, paramLabel = "DIR|latest", description = "Continue a run exactly from a checkpoint.")
    String resumeFromCheckpoint;

    @Option(names = "--bf16", description = "Keep the base weights in bf16 (LoRA master weights stay f32).")
    boolean bf16;

    @Option(names = {"--gradient_checkpointing", "--gradient-checkpointing"}, arity = "0..1", defaultValue = "true", fallbackValue = "true",
            description = "Recompute each decoder layer in backward (default: ${DEFAULT-VALUE}).")
    boolean gradientCheckpointing;

    @Option(names = {"--skip-bad-samples", "--skip_bad_samples"}, description = "Warn about bad records (and count them) instead of failing.")
    boolean skipBadSamples;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu (default) or cuda[:N]: on CUDA the base is kept in bf16 and computes in bf16,"
            + " the LoRA master weights and the optimizer stay f32 (or 8-bit) on the device.")
    String device;

    static final List<String> ALL = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

    /** The seed's --lora_targets presets, or --target_modules by PEFT's rules. */
    LoraAdapter.Spec spec() {
        if (targetModules != null) {
            if (targetModules.chars().anyMatch(ch -> ".*()[]|\\^$?+{}".indexOf(ch) >= 0))
                return new LoraAdapter.Spec(loraR, loraAlpha, loraDropout, useRslora, null, targetModules);
            return new LoraAdapter.Spec(loraR, loraAlpha, loraDropout, useRslora,
                    Arrays.stream(targetModules.split("[,\\s]+")).filter(t -> !t.isEmpty()).toList(), null);
        }
        List<String> list = switch (loraTargets) {
            case "all" -> ALL;
            case "attention" -> ALL.subList(0, 4);
            case "moe" -> ALL.subList(4, 7);
            default -> throw new IllegalArgumentException("--lora_targets " + loraTargets + ": known are all, attention, moe");
        };
        return new LoraAdapter.Spec(loraR, loraAlpha, loraDropout, useRslora, list, null);
    }

    @Override
    public Integer call() throws Exception {
        Device d = Device.parse(device);
        if (outputDir == null)
            outputDir = Path.of("models", "sft_" + model.toAbsolutePath().normalize().getFileName().toString().replaceAll("[/\\-]", "_") + "_"
                    + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd_HHmmss")));
        Thinker thinker = use4bit.load(model, bf16 || d.kind() != Device.Kind.CPU ? DType.BF16 : DType.F32, d);
        thinker.gradientCheckpointing(gradientCheckpointing);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : model, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()));
        Dataset dataset = Dataset.load(data, LoadOptions.defaults().withAudioDir(audioDir).withSkipBadRecords(skipBadSamples));
        SftData sft = new SftData(dataset, PromptPreset.byId(prompt), encoder, logMel, maxLength, skipBadSamples, System.err::println);
        if (dataset.skipped() + sft.skipped() > 0) System.err.println("warning: " + (dataset.skipped() + sft.skipped()) + " bad sample(s) skipped in all");

        Path resume = null;
        LoraAdapter adapter;
        if (resumeFromCheckpoint != null) {
            resume = SftTrainer.resolveCheckpoint(outputDir, resumeFromCheckpoint);
            Path cfg = resume.resolve(LoraAdapter.CONFIG);
            int r = new ObjectMapper().readTree(cfg.toFile()).path("r").asInt(-1);
            if (r != loraR) throw new IllegalArgumentException(cfg + ": field 'r' is " + r + " but --lora_r is " + loraR);
            adapter = LoraAdapter.apply(resume, thinker, DType.F32);
        } else adapter = LoraAdapter.create(thinker, spec(), seed);

        var config = new SftTrainer.Config(outputDir, numTrainEpochs, maxSteps, batchSize, gradientAccumulationSteps, learningRate,
                lrSchedulerType, warmupRatio, warmupSteps, weightDecay, maxGradNorm, saveSteps, saveTotalLimit, loggingSteps, seed, optim);
        var console = System.console();
        var trainer = new SftTrainer(thinker, adapter, sft, config, System.err, console != null && console.isTerminal());
        if (d.kind() == Device.Kind.CUDA) CudaBackend.resetPeakMemory(d);
        SftTrainer.Result r = trainer.train(resume);
        if (d.kind() == Device.Kind.CUDA)
            System.err.printf(java.util.Locale.ROOT, "peak device memory on %s: %.1f MiB allocated (%.1f MiB reserved)%n", d,
                    CudaBackend.memoryStats(d).peakAllocatedBytes() / 1048576.0, CudaBackend.memoryStats(d).peakReservedBytes() / 1048576.0);
        System.out.printf(java.util.Locale.ROOT, "sft: %d steps, loss %.4f -> %.4f, optimizer state %d bytes; adapter in %s%n",
                r.globalStep(), r.firstLoss(), r.lastLoss(), r.optimizerStateBytes(), outputDir);
        return 0;
    }
}

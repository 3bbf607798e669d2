package dev.jomni.cli;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.GenerationConfig;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.model.Generation;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.train.Progress;
import dev.jomni.train.eval.ThinkerAnswers;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.eval.AnswerGenerator;
import dev.jomni.train.eval.EvalOptions;
import dev.jomni.train.eval.Evaluation;
import dev.jomni.train.eval.Submission;
import dev.jomni.train.eval.Vote;
import dev.jomni.train.score.Matching;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code omni eval}: generate answers for a dataset, write the submission and report accuracy.
 * Answers come from the thinker ({@link ThinkerAnswers}); tests may pass another {@link AnswerGenerator}.
 */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Answer every record of a dataset, write result.jsonl (the challenge's format), generations.jsonl "
                + "and metrics.json, and print accuracy overall and by category and sub-category with 95%% intervals.")
final class EvalCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Inference use4bit = new Use4bit.Inference();

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model folder (config.json + safetensors).")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply to the thinker")
    Path adapter;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Dataset: JSON array or JSONL, seed or MMAR records.")
    Path data;

    @Option(names = {"--audio-dir", "--audio_dir"}, paramLabel = "DIR", description = "Audio root (default: the data file's folder).")
    Path audioDir;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder.")
    Path out;

    @Option(names = "--prompt", defaultValue = "rest", paramLabel = "PRESET",
            description = "Prompt preset: rest (default), rest-sft, mmar-baseline, v12.")
    String prompt;

    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N", description = "Records per generation batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--num-samples", defaultValue = "1", paramLabel = "N", description = "Completions per record (default: ${DEFAULT-VALUE}).")
    int numSamples;

    @Option(names = "--vote", defaultValue = "majority", paramLabel = "RULE",
            description = "How samples become one answer: majority (default) or first.")
    String vote;

    @Option(names = "--matching", defaultValue = "strict", paramLabel = "MODE",
            description = "strict (default) or legacy-substring (the original filter.py rule, for comparison only).")
    String matching;

    @Option(names = "--skip-bad-records", description = "Warn about bad records and leave them out instead of failing.")
    boolean skipBadRecords;

    @Option(names = "--keep-unscored",
        description = "Keep records whose answer is missing or none of the choices, without a ground truth (warned, not scored).")
    boolean keepUnscored;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer folder (default: the model folder).")
    Path tokenizer;

    @Mixin
    GenerationDefaults generationConfig = new GenerationDefaults();

    @Option(names = "--max-new-tokens", paramLabel = "N", description = "Generation length limit (" + GenerationDefaults.FROM_FILE + "max_new_tokens, else 1024).")
    Integer maxNewTokens;

    @Option(names = "--temperature", description = "0 for greedy (" + GenerationDefaults.FROM_FILE + "temperature, else 0).")
    Double temperature;

    @Option(names = "--top-k", description = "0 disables top-k (" + GenerationDefaults.FROM_FILE + "top_k, else 0).")
    Integer topK;

    @Option(names = "--top-p", description = "Nucleus sampling mass (" + GenerationDefaults.FROM_FILE + "top_p, else 1.0).")
    Double topP;

    @Option(names = "--min-p", description = "Drop tokens less likely than P times the likeliest; 0 disables (" + GenerationDefaults.FROM_FILE + "min_p, else 0).")
    Double minP;

    @Option(names = "--repetition-penalty", description = "Penalty on tokens already in the prompt or answer; 1.0 disables ("
            + GenerationDefaults.FROM_FILE + "repetition_penalty, else 1.0).")
    Double repetitionPenalty;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE}).")
    String device;

    private final AnswerGenerator generator;

    /** The command line's constructor: answers come from the model named by --model. */
    EvalCommand() {
        generator = null;
    }

    EvalCommand(AnswerGenerator generator) {
        this.generator = Objects.requireNonNull(generator, "generator");
    }

    private AnswerGenerator thinkerAnswers() {
        Device d = Device.parse(device);
        Thinker thinker = use4bit.load(model, d.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16, d);
        if (adapter != null) LoraAdapter.apply(adapter, thinker);
        ChatEncoder encoder = ChatEncoder.load(tokenizer != null ? tokenizer : model, thinker.config.audio().nWindow());
        LogMel logMel = LogMel.of(PreprocessorConfig.load(model, thinker.config.audio()));
        GenerationConfig g = generationConfig.load(model, System.err);
        var settings = new Generation.Settings(GenerationDefaults.pick(maxNewTokens, g.maxNewTokens(), 1024),
                GenerationDefaults.pick(temperature, g.temperature(), 0), GenerationDefaults.pick(topK, g.topK(), 0),
                GenerationDefaults.pick(topP, g.topP(), 1.0), seed, Set.copyOf(g.eosTokenIds()), GenerationDefaults.pick(minP, g.minP(), 0),
                GenerationDefaults.pick(repetitionPenalty, g.repetitionPenalty(), 1.0));
        return new ThinkerAnswers(thinker, encoder, logMel, settings);   // it adds the chat's end tokens to the stops
    }

    @Override
    public Integer call() throws Exception {
        // Everything that can be checked without the model is checked first: a bad output path or an empty
        // dataset found after loading the model and answering every record wastes the whole run.
        if (Files.exists(out) && !Files.isDirectory(out))
            throw new IllegalArgumentException("--out " + out + ": exists and is not a directory (it is where result.jsonl, "
                    + "generations.jsonl and metrics.json go)");
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new IllegalArgumentException("--out " + out + ": cannot create the output folder: " + e, e);
        }
        if (!Files.isWritable(out)) throw new IllegalArgumentException("--out " + out + ": the output folder is not writable");
        var options = new EvalOptions(PromptPreset.byId(prompt), batchSize, numSamples, Vote.byId(vote), Matching.byId(matching));
        Dataset d = Dataset.load(data, LoadOptions.defaults().withAudioDir(audioDir).withSkipBadRecords(skipBadRecords)
                .withRequireAnswers(!keepUnscored));
        if (d.size() == 0)
            throw new IllegalArgumentException("--data " + data + ": no records to evaluate"
                    + (d.skipped() > 0 ? " (all " + d.skipped() + " were bad and skipped)" : ""));
        AnswerGenerator generator = this.generator != null ? this.generator : thinkerAnswers();
        Evaluation run = Evaluation.run(d, generator, options, Progress.start("eval", d.size()));
        run.write(out);
        System.out.print(run.report().table());
        Submission.Check check = Submission.check(out.resolve(Submission.ENTRY), Dataset.readIds(data));
        System.out.println("wrote " + out.resolve(Submission.ENTRY) + " (" + check.records() + " records; prompt " + options.prompt().id()
                + "), generations.jsonl, metrics.json");
        // Records skipped as bad are missing from the submission by design; anything else is a bug worth showing.
        if (!check.valid() && d.skipped() == 0) for (String p : check.problems()) System.out.println("submission problem: " + p);
        return 0;
    }
}

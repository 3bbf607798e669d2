package dev.jomni.rest;

import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.model.LoraAdapter;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatEncoder;
import dev.jomni.tensor.DType;
import dev.jomni.train.SftTrainer;
import dev.jomni.train.data.Dataset;
import dev.jomni.train.data.LoadOptions;
import dev.jomni.train.data.PromptPreset;
import dev.jomni.train.data.SftData;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The policy over the SFT trainer ({@link SftTrainer}, {@code rest/train.py}'s recipe) on the thinker the engine
 * generates with. Each iteration either restarts from the base with a fresh adapter (the ReST paper) or continues the
 * previous iteration's adapter (the original, whose iteration i trained on top of iteration i−1's model), with a fresh
 * optimizer and schedule at the iteration's learning rate. The trained adapter stays in memory, detached, for
 * {@link EngineCandidates} ({@link #live}); after a restart of the process it is read back from its folder.
 */
public final class SftPolicy implements Policy {
    private final Thinker thinker;
    private final ChatEncoder encoder;
    private final LogMel logMel;
    private final PromptPreset prompt;
    private final int maxLength;
    private final LoraAdapter.Spec spec;
    private final SftTrainer.Config template;
    private final boolean restartFromBase, useWeights;
    private final PrintStream log;
    private final boolean tty;
    private final Map<Path, LoraAdapter> live = new HashMap<>();

    /**
     * @param template   the trainer's settings; its output folder, learning rate and epochs are set per iteration
     * @param useWeights scale each sample's loss by its {@code weight} (learning_zone's 1.5 / 0.5 / 0.1)
     */
    public SftPolicy(Thinker thinker, ChatEncoder encoder, LogMel logMel, PromptPreset prompt, int maxLength, LoraAdapter.Spec spec,
                     SftTrainer.Config template, boolean restartFromBase, boolean useWeights, PrintStream log, boolean tty) {
        this.thinker = thinker;
        this.encoder = encoder;
        this.logMel = logMel;
        this.prompt = prompt;
        this.maxLength = maxLength;
        this.spec = spec;
        this.template = template;
        this.restartFromBase = restartFromBase;
        this.useWeights = useWeights;
        this.log = log;
        this.tty = tty;
    }

    /** The adapter trained into {@code dir} in this process, or null. */
    public LoraAdapter live(Path dir) { return live.get(key(dir)); }

    @Override
    public Trained train(int iteration, Path filteredJson, Path audioRoot, Path outputDir, double learningRate, Path previous) {
        Dataset data = Dataset.load(filteredJson, LoadOptions.defaults().withAudioDir(audioRoot));
        SftData sft = new SftData(data, prompt, encoder, logMel, maxLength, false, log::println);
        if (useWeights) sft = sft.weighted();
        Path resume = null;
        try {
            resume = SftTrainer.resolveCheckpoint(outputDir, "latest");
        } catch (IllegalArgumentException none) {
            // no checkpoint: a fresh start
        }
        LoraAdapter adapter;
        if (resume != null) {
            log.println("iteration " + iteration + ": resuming training from " + resume);
            adapter = LoraAdapter.apply(resume, thinker, DType.F32);
        } else if (!restartFromBase && previous != null) {
            adapter = live.remove(key(previous));
            if (adapter == null) adapter = LoraAdapter.apply(previous, thinker, DType.F32);
            else adapter.attach();
            log.println("iteration " + iteration + ": continuing the adapter of " + previous);
        } else {
            adapter = LoraAdapter.create(thinker, spec, template.seed() + iteration);
            log.println("iteration " + iteration + ": a fresh adapter on the base model (r " + spec.r() + ", alpha " + spec.alpha() + ")");
        }
        var c = template;
        var config = new SftTrainer.Config(outputDir, template.numTrainEpochs(), c.maxSteps(), c.perDeviceTrainBatchSize(), c.gradientAccumulationSteps(),
                learningRate, c.lrSchedulerType(), c.warmupRatio(), c.warmupSteps(), c.weightDecay(), c.maxGradNorm(), c.saveSteps(), c.saveTotalLimit(),
                c.loggingSteps(), c.seed(), c.optim());
        SftTrainer.Result r;
        try {
            r = new SftTrainer(thinker, adapter, sft, config, log, tty).train(resume);
        } finally {
            adapter.detach();                                   // the engine attaches it for its own rows only
            for (var p : adapter.parameters()) p.requiresGrad(false);
        }
        live.put(key(outputDir), adapter);
        return new Trained(r.globalStep(), r.firstLoss(), r.lastLoss());
    }

    private static Path key(Path p) { return p.toAbsolutePath().normalize(); }
}

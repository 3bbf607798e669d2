package dev.jomni.train;

import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.Tensor;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * An optimizer over a fixed list of parameters, named as Hugging Face's {@code optim} names them:
 * {@code adamw_torch} ({@link AdamW}, f32 state), {@code adamw_8bit} and {@code paged_adamw_8bit}
 * ({@link AdamW8bit}). Its whole state round-trips through {@link #state()} / {@link #loadState} bit for bit.
 */
public interface Optimizer extends AutoCloseable {
    /** One update from the parameters' current gradients; parameters without a gradient are left alone. */
    void step();

    void zeroGrad();

    /** Sets the learning rate for the next steps (schedules call this). */
    void learningRate(double lr);

    /** Updates done so far (bias correction uses it). */
    long steps();

    /** Bytes the optimizer state occupies (moments, quantisation scales), for the report. */
    long stateBytes();

    /** The state by name, for a checkpoint: everything {@link #loadState} needs to continue bit for bit. */
    Map<String, TensorData> state();

    /** Restores {@link #state()}; {@code origin} names the file for errors. */
    void loadState(Map<String, TensorData> state, String origin);

    /** Releases off-heap state; the default does nothing. */
    @Override default void close() {}

    /** Hugging Face's name for this optimizer. */
    String name();

    /** The optimizer HF's {@code --optim NAME} selects, with {@code config}'s hyper-parameters. */
    static Optimizer create(String name, List<Tensor> params, AdamW.Config config) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "adamw_torch", "adamw_torch_fused", "adamw" -> new AdamW(params, config);
            case "adamw_8bit", "adamw_bnb_8bit" -> new AdamW8bit(params, config, false);
            case "paged_adamw_8bit" -> new AdamW8bit(params, config, true);
            default -> throw new IllegalArgumentException("optim '" + name + "': known are adamw_torch, adamw_8bit, paged_adamw_8bit");
        };
    }
}

package dev.jomni.cli;

import dev.jomni.nn.io.Npy;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.model.ModelInputs;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** One forward pass of the thinker over a folder of inputs; the contract other implementations are checked against. */
@Command(name = "forward", mixinStandardHelpOptions = true,
        description = {"Run the thinker on a batch and write its logits as float32 .npy [B,T,V].",
                "The inputs folder holds input_ids.npy and attention_mask.npy (int64 [B,T]) and either",
                "input_features.npy + feature_attention_mask.npy or audio0.wav, audio1.wav, … (one per row).",
                "With labels.npy there, prints {\"loss\": …} on stdout."})
final class ForwardCommand implements Callable<Integer> {
    @Mixin
    Use4bit.Inference use4bit = new Use4bit.Inference();

    @Option(names = "--model", required = true, description = "model folder: config.json, safetensors, preprocessor_config.json")
    Path model;

    @Option(names = "--inputs", required = true, description = "folder with the .npy inputs (and WAVs)")
    Path inputs;

    @Option(names = "--out", required = true, description = "where to write the logits (.npy)")
    Path out;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply to the thinker")
    Path adapter;

    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--dtype", description = "f32 or bf16 (default: f32 on the CPU, bf16 on CUDA)")
    String dtype;

    @Override
    public Integer call() {
        Device d = Device.parse(device);
        DType t = dtype != null ? DType.valueOf(dtype.toUpperCase()) : d.kind() == Device.Kind.CPU ? DType.F32 : DType.BF16;
        try (var g = Autograd.noGrad()) {
            Thinker thinker = use4bit.load(model, t, d);
            if (adapter != null) dev.jomni.omni.model.LoraAdapter.apply(adapter, thinker);
            ModelInputs in = ModelInputs.read(inputs, model, thinker.config);
            Tensor logits = thinker.forward(in.inputIds(), in.attentionMask(), in.audio(), null).logits();
            Npy.write(out, TensorData.of(logits.to(DType.F32)));
            if (in.labels() != null) System.out.printf("{\"loss\": %s}%n", Thinker.loss(logits, in.labels()).item());
        }
        return 0;
    }
}

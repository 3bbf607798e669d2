package dev.jomni.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jomni.nn.Parameter;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.TensorData;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.omni.model.Thinker;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tiny Qwen3-Omni made on the spot for the demo: the parity fixture's configuration (the real architecture: audio
 * encoder, M-RoPE decoder with routed experts) at a few hidden units, weights drawn from N(0, 0.02) as transformers'
 * {@code _init_weights} does (norm weights 1, biases 0; the audio stem at fan-in scale, see {@link #std}), and the fixture's byte-level tokenizer. Written as a model
 * folder (config.json, model.safetensors, preprocessor_config.json, tokenizer files), so every command reads it as it
 * reads a downloaded model.
 */
final class DemoModel {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final String[] FILES = {"config.json", "preprocessor_config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"};

    /** The sizes the demo changes; everything else is the fixture's. */
    record Sizes(int hidden, int layers, int heads, int kvHeads, int headDim, int experts, int expertsPerToken, int moeIntermediate,
                 int audioDModel, int audioLayers, int audioHeads, int audioFfn, int audioWindow) {
        static Sizes demo() { return new Sizes(64, 2, 4, 2, 16, 4, 2, 64, 64, 2, 4, 128, 100); }

        Sizes withLayers(int n) {
            return new Sizes(hidden, n, heads, kvHeads, headDim, experts, expertsPerToken, moeIntermediate, audioDModel, audioLayers, audioHeads, audioFfn, audioWindow);
        }

        Sizes withAudioWindow(int w) {
            return new Sizes(hidden, layers, heads, kvHeads, headDim, experts, expertsPerToken, moeIntermediate, audioDModel, audioLayers, audioHeads, audioFfn, w);
        }
    }

    private DemoModel() {}

    /** Writes the model folder {@code dir} (created) and returns it. */
    static Path write(Path dir, Sizes s, long seed) throws IOException {
        Files.createDirectories(dir);
        for (String f : FILES)
            try (InputStream in = DemoModel.class.getResourceAsStream("demo/" + f)) {
                if (in == null) throw new IOException("the demo's resource " + f + " is missing from the jar");
                Files.write(dir.resolve(f), in.readAllBytes());
            }
        ObjectNode config = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        ObjectNode thinker = (ObjectNode) config.get("thinker_config");
        ObjectNode text = (ObjectNode) thinker.get("text_config");
        text.put("hidden_size", s.hidden()).put("num_hidden_layers", s.layers()).put("num_attention_heads", s.heads())
                .put("num_key_value_heads", s.kvHeads()).put("head_dim", s.headDim()).put("num_experts", s.experts())
                .put("num_experts_per_tok", s.expertsPerToken()).put("moe_intermediate_size", s.moeIntermediate());
        ObjectNode audio = (ObjectNode) thinker.get("audio_config");
        audio.put("d_model", s.audioDModel()).put("encoder_layers", s.audioLayers()).put("encoder_attention_heads", s.audioHeads())
                .put("encoder_ffn_dim", s.audioFfn()).put("output_dim", s.hidden())
                .put("n_window", s.audioWindow());
        JSON.writeValue(dir.resolve("config.json").toFile(), config);

        Thinker model = new Thinker(ThinkerConfig.load(dir));
        var gen = new Generator(seed);
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : model.parameters().entrySet()) {
            String name = e.getKey();
            int[] shape = e.getValue().shape();
            Tensor t;
            if (name.endsWith(".bias")) t = Tensor.zeros(DType.F32, shape);
            else if (shape.length == 1) t = Tensor.ones(DType.F32, shape);                 // the norms' scales
            else t = Tensor.randn(gen, DType.F32, shape).mul(std(name, shape));
            tensors.put("thinker." + name, TensorData.of(t));
        }
        SafeTensors.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        return dir;
    }

    /**
     * N(0, 0.02) but for the audio stem (the three convolutions and conv_out), drawn at He's fan-in scale: at 0.02
     * each of its four layers shrinks the log-mel about tenfold, so what varies over a clip left conv_out at an rms
     * near 1e-4, against 0.7 for the sinusoidal positions added to it (about 0.1 at fan-in scale).
     */
    private static double std(String name, int[] shape) {
        if (!name.startsWith("audio_tower.conv")) return 0.02;
        long fanIn = 1;
        for (int i = 1; i < shape.length; i++) fanIn *= shape[i];
        return Math.sqrt((name.startsWith("audio_tower.conv2d") ? 2.0 : 1.0) / fanIn);
    }
}

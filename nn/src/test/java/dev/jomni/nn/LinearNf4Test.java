package dev.jomni.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.nn.io.Bnb4bit;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.StoredTensor;
import dev.jomni.nn.io.TensorData;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinearNf4Test {
    @Test
    void forwardIsDequantizedLinearPlusBiasAndLora(@TempDir Path dir) {
        var gen = new Generator(21);
        int in = 128, out = 5, r = 2;
        Tensor w = Tensor.randn(gen, DType.F32, out, in), b = Tensor.randn(gen, DType.F32, out);
        var layer = new Linear(in, out, true);
        layer.weight.set(Nf4Weight.quantize("w", w));
        layer.bias.set(b);
        Tensor la = Tensor.randn(gen, DType.F32, r, in).requiresGrad(true), lb = Tensor.randn(gen, DType.F32, out, r).requiresGrad(true);
        layer.lora(new Lora(la, lb, 0.5));
        Tensor x = Tensor.randn(gen, DType.F32, 3, in).requiresGrad(true);
        Tensor y = layer.forward(x);
        var ref = new Linear(in, out, true);
        ref.weight.set(layer.weight.dense());
        ref.bias.set(b);
        ref.lora(new Lora(la.detach(), lb.detach(), 0.5));
        assertArrayEquals(ref.forward(x.detach()).toFloatArray(), y.toFloatArray(), 1e-5f);
        y.sum().backward();
        assertTrue(la.grad() != null && lb.grad() != null && x.grad() != null, "A, B and x get gradients through the frozen base");
        assertThrows(IllegalArgumentException.class, () -> layer.weight.set(Nf4Weight.quantize("w", Tensor.randn(gen, DType.F32, in, in))));
        assertTrue(layer.weight.isNf4() && layer.weight.bytes() == layer.weight.nf4().bytes(), "the weight is held in NF4");
        var e = assertThrows(IllegalStateException.class, layer.weight::value);
        assertTrue(e.getMessage().contains("weight [5, 128] is frozen NF4"), e.getMessage());
    }

    /** jomni writes bnb's six tensors per weight; reading them back gives the same bytes and offset. */
    @Test
    void bnbCheckpointWrittenByJomniReadsBackIdentical(@TempDir Path dir) {
        var gen = new Generator(22);
        Nf4Weight w = Nf4Weight.quantize("q_proj", Tensor.randn(gen, DType.BF16, 600, 64).mul(0.03));
        String key = "thinker.model.layers.0.self_attn.q_proj.weight";
        Map<String, TensorData> tensors = Bnb4bit.write(key, w);
        assertArrayEquals(new long[] {600 * 64 / 2, 1}, tensors.get(key).shape(), "packed as bnb's [(N·K+1)/2, 1]");
        String json = new String(tensors.get(key + Bnb4bit.STATE).toByteArray(), StandardCharsets.UTF_8);
        assertTrue(json.startsWith("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [600, 64], "
                + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "), json);
        Path file = dir.resolve("model.safetensors");
        SafeTensors.write(file, tensors, Map.of());
        try (var st = SafeTensors.open(file)) {
            Nf4Weight back = Bnb4bit.read(name -> st.contains(name) ? st.get(name).data() : null, key, file.toString());
            assertEquals(w.rows(), back.rows());
            assertEquals(w.cols(), back.cols());
            assertEquals(w.dtype(), back.dtype());
            assertEquals(w.offset(), back.offset());
            assertArrayEquals(w.packed().toLongArray(), back.packed().toLongArray());
            assertArrayEquals(w.absmax().toLongArray(), back.absmax().toLongArray());
            assertArrayEquals(w.nestedAbsmax().toFloatArray(), back.nestedAbsmax().toFloatArray());
            assertArrayEquals(w.nestedCode().toFloatArray(), back.nestedCode().toFloatArray());
            assertArrayEquals(w.dequantize().toFloatArray(), back.dequantize().toFloatArray());
            var missing = new HashMap<>(tensors);
            missing.remove(key + ".nested_absmax");
            var e = assertThrows(IllegalArgumentException.class, () -> Bnb4bit.read(missing::get, key, "f.safetensors"));
            assertTrue(e.getMessage().contains(key + ".nested_absmax") && e.getMessage().contains("f.safetensors"), e.getMessage());
        }
    }
}

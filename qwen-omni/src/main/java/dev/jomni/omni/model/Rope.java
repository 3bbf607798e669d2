package dev.jomni.omni.model;

import dev.jomni.omni.config.TextConfig;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.util.List;

/**
 * Interleaved multimodal rotary embedding (M-RoPE). Positions come in three streams (temporal,
 * height, width); slot j of the d/2 frequencies takes the H stream when j ≡ 1 (mod 3) and
 * j < 3·section[1], the W stream when j ≡ 2 (mod 3) and j < 3·section[2], else the T stream. Tables
 * are computed in f32 and cast to the activation dtype; the rotation, half-split (rotate_half), is the
 * coarse op {@link dev.jomni.tensor.ops.Rope}, whose backward keeps only these tables.
 */
final class Rope {
    private final Tensor cos, sin;                             // [B, T, d]

    private Rope(Tensor cos, Tensor sin) {
        this.cos = cos;
        this.sin = sin;
    }

    /** @param positions [3][B][T] position of each token in each stream */
    static Rope of(TextConfig c, long[][][] positions, DType dtype, Device device) {
        int d = c.headDim(), half = d / 2, b = positions[0].length, t = positions[0][0].length;
        List<Integer> section = c.mropeSection();
        float[] inv = new float[half];
        for (int j = 0; j < half; j++) inv[j] = 1f / (float) Math.pow(c.ropeTheta(), (float) (2 * j) / d);
        float[] cosv = new float[b * t * d], sinv = new float[b * t * d];
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
                for (int j = 0; j < half; j++) {
                    int stream = j % 3 == 1 && j < 3 * section.get(1) ? 1 : j % 3 == 2 && j < 3 * section.get(2) ? 2 : 0;
                    float phi = (float) positions[stream][bi][ti] * inv[j];
                    int at = (bi * t + ti) * d + j;
                    cosv[at] = cosv[at + half] = (float) Math.cos(phi);
                    sinv[at] = sinv[at + half] = (float) Math.sin(phi);
                }
        return new Rope(Tensor.of(cosv, b, t, d).to(dtype).to(device), Tensor.of(sinv, b, t, d).to(dtype).to(device));
    }

    /** x' = x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x[d/2:], x[:d/2]); x: [B, h, T, d]. */
    Tensor apply(Tensor x) { return dev.jomni.tensor.ops.Rope.rope(x, cos, sin); }
}

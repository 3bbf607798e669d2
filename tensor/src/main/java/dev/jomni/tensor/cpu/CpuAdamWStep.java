package dev.jomni.tensor.cpu;

import dev.jomni.tensor.spi.TensorAccess;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.AdamWStep;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * AdamWStep's CPU kernels, the reference of adamw_step.cu: scalar f32 in Java, each operation rounded as
 * written (Java has no implicit fused multiply-add), one thread so the bits depend on nothing else.
 */
final class CpuAdamWStep implements AdamWStep.Kernels {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /** The bytes of a contiguous CPU tensor from its first element. */
    private static MemorySegment memory(Tensor t) {
        MemorySegment s = ((CpuStorage) TensorAccess.storage(t)).segment;
        return s.asSlice(TensorAccess.offset(t) * t.dtype().byteSize, t.numel() * t.dtype().byteSize);
    }

    private static void store(Tensor p, float[] pv) {
        if (p.dtype() == DType.F32) {
            MemorySegment.copy(pv, 0, memory(p), F, 0, pv.length);
            return;
        }
        try (var g = Autograd.noGrad()) {
            Tensor np = Tensor.of(pv, p.shape());
            p.assign(np);                                     // bf16: rounded to nearest even, once
            np.close();
        }
    }

    @Override
    public void torch(Tensor p, Tensor g, Tensor m, Tensor v, AdamWStep.Hyper h) {
        float[] gv = g.toFloatArray(), pv = p.toFloatArray();
        MemorySegment ms = memory(m), vs = memory(v);
        float b1 = h.beta1(), b2 = h.beta2(), decay = 1f - h.lr() * h.weightDecay();
        for (int j = 0; j < gv.length; j++) {
            float s1 = ms.getAtIndex(F, j), s2 = vs.getAtIndex(F, j), gj = gv[j], pj = pv[j];
            if (h.weightDecay() != 0f) pj = pj * decay;
            s1 = s1 + (1f - b1) * (gj - s1);
            s2 = s2 * b2 + (1f - b2) * gj * gj;
            float denom = (float) Math.sqrt(s2) / h.correction() + h.eps();
            pv[j] = pj - h.stepSize() * (s1 / denom);
            ms.setAtIndex(F, j, s1);
            vs.setAtIndex(F, j, s2);
        }
        store(p, pv);
    }

    @Override
    public void bnb32(Tensor p, Tensor g, Tensor m, Tensor v, AdamWStep.Hyper h) {
        float[] gv = g.toFloatArray(), pv = p.toFloatArray();
        MemorySegment ms = memory(m), vs = memory(v);
        float b1 = h.beta1(), b2 = h.beta2(), lr = h.lr(), wd = h.weightDecay();
        for (int j = 0; j < gv.length; j++) {
            float s1 = ms.getAtIndex(F, j), s2 = vs.getAtIndex(F, j);
            s1 = s1 * b1 + (1f - b1) * gv[j];
            s2 = s2 * b2 + (1f - b2) * (gv[j] * gv[j]);
            pv[j] = pv[j] + h.stepSize() * (s1 / ((float) Math.sqrt(s2) + h.eps() * h.correction()));
            if (wd > 0f) pv[j] = pv[j] * (1f - lr * wd);
            ms.setAtIndex(F, j, s1);
            vs.setAtIndex(F, j, s2);
        }
        store(p, pv);
    }

    @Override
    public void blockwise8bit(Tensor p, Tensor g, Tensor codes1, Tensor codes2, Tensor absmax1, Tensor absmax2, Tensor qmap1, Tensor qmap2,
                              AdamWStep.Hyper h) {
        float[] gv = g.toFloatArray(), pv = p.toFloatArray(), signed = qmap1.toFloatArray(), unsigned = qmap2.toFloatArray();
        MemorySegment c1 = memory(codes1), c2 = memory(codes2), a1 = memory(absmax1), a2 = memory(absmax2);
        float b1 = h.beta1(), b2 = h.beta2(), lr = h.lr(), wd = h.weightDecay(), stepSize = h.stepSize(), correction2 = h.correction();
        final int block = AdamWStep.BLOCK;
        float[] s1 = new float[block], s2 = new float[block];
        boolean[] finite = new boolean[block];
        int n = gv.length;
        for (int b = 0, lo = 0; lo < n; b++, lo += block) {
            int len = Math.min(block, n - lo);
            float abs1 = a1.getAtIndex(F, b), abs2 = a2.getAtIndex(F, b);
            float max1 = 0f, max2 = 0f;
            for (int j = 0; j < len; j++) {
                float gj = gv[lo + j];
                finite[j] = Float.isFinite(gj);
                if (finite[j]) {
                    s2[j] = unsigned[Byte.toUnsignedInt(c2.get(ValueLayout.JAVA_BYTE, lo + j))] * abs2;
                    s2[j] = s2[j] * b2 + (1f - b2) * gj * gj;
                    s1[j] = signed[Byte.toUnsignedInt(c1.get(ValueLayout.JAVA_BYTE, lo + j))] * abs1;
                    s1[j] = s1[j] * b1 + (1f - b1) * gj;
                } else {
                    s1[j] = 0f;
                    s2[j] = 0f;
                }
                max1 = Math.max(max1, Math.abs(s1[j]));
                max2 = Math.max(max2, Math.abs(s2[j]));
            }
            a1.setAtIndex(F, b, max1);
            a2.setAtIndex(F, b, max2);
            for (int j = 0; j < len; j++) {
                if (!finite[j]) continue;
                int at = lo + j;
                pv[at] = pv[at] + stepSize * (s1[j] / ((float) Math.sqrt(s2[j]) + correction2 * h.eps()));
                if (wd > 0f) pv[at] = pv[at] * (1f - lr * wd);
            }
            for (int j = 0; j < len; j++) {
                int q1 = quantize(signed, max1 == 0f ? 0f : s1[j] / max1);
                // keep the first moment's sign: a code of the other sign moves one step towards it
                if (max1 != 0f && signBit(signed[q1]) != signBit(s1[j])) q1 += s1[j] > 0f ? 1 : -1;
                int q2 = quantize(unsigned, max2 == 0f ? 0f : s2[j] / max2);
                c1.set(ValueLayout.JAVA_BYTE, lo + j, (byte) q1);
                c2.set(ValueLayout.JAVA_BYTE, lo + j, (byte) q2);
            }
        }
        store(p, pv);
    }

    private static boolean signBit(float x) { return Float.floatToRawIntBits(x) < 0; }

    /** The index of the code value nearest to x (code sorted ascending); ties go to the lower value; NaN to 0. */
    static int quantize(float[] code, float x) {
        int lo = 0, hi = code.length - 1;
        if (!(x > code[lo])) return lo;
        if (x >= code[hi]) return hi;
        while (hi - lo > 1) {                                   // invariant: code[lo] <= x < code[hi]
            int mid = (lo + hi) >>> 1;
            if (code[mid] <= x) lo = mid;
            else hi = mid;
        }
        float midpoint = (code[lo] + code[hi]) * 0.5f;
        return x > midpoint ? hi : lo;
    }
}

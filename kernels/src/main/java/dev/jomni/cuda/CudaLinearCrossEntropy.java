package dev.jomni.cuda;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.LinearCrossEntropy;

/**
 * LinearCrossEntropy on CUDA without the [N, V] logits: the host walks token chunks × vocabulary chunks
 * (shapes only, no data read), each logit chunk [tn, tv] is one cuBLASLt product into a reused f32 scratch
 * (bf16/f16 operands, f32 output and accumulation; f64 goes through the backend's f64 matmul), and
 * linear_cross_entropy.cu's row kernels keep the online log-sum-exp and pick the target logit (forward) or
 * turn the chunk into g = (softmax − onehot)·scale (backward, scale read on the device). Backward then
 * adds dHidden += g·W_chunk and dWeight_chunk += gᵀ·hidden_chunk with cuBLASLt's beta = 1.
 *
 * <p>Unlike the CPU kernels, ignored tokens are not skipped (which they are is device data): their rows
 * are computed and masked. Targets are range-checked on the device (raised at the next synchronisation,
 * naming "linearCrossEntropy", the position and the value).
 *
 * <p>Loop order of backward: vocabulary chunks outside, token chunks inside, so a dWeight chunk is summed
 * over the tokens in one f32 [tv, H] buffer and written once, and dHidden is summed over the vocabulary in
 * place (f32, f64) or in an f32 [N, H] accumulator (16-bit), rounded once at the end. Scratch: the logit
 * chunk tn×tv f32, for 16-bit inputs g tn×tv of their dtype, the running Σexp [N] in forward, and the two
 * accumulators; never N×V.
 */
final class CudaLinearCrossEntropy implements LinearCrossEntropy.Kernels {
    static final String OP = "linearCrossEntropy";
    // A 4096 × 4096 f32 logit chunk is 64 MiB; at H = 2048 its product is 69 GFLOP, large enough that
    // cuBLASLt runs near peak, small next to the H200's memory. Chunk starts at multiples of 128 keep every
    // operand pointer 256-byte aligned whatever H, so cuBLASLt's fast kernels apply.
    static final int TOKEN_CHUNK = 4096, VOCAB_CHUNK = 4096, ALIGN = 128;
    private static final long[] UNIT = {1};

    private final CudaBackend backend;
    private final int tokenChunk, vocabChunk;

    CudaLinearCrossEntropy(CudaBackend backend) {
        this(backend, TOKEN_CHUNK, VOCAB_CHUNK);
    }

    /** Kernels with the given chunk sizes (tests use ones that divide neither N nor V); multiples of 128. */
    CudaLinearCrossEntropy(CudaBackend backend, int tokenChunk, int vocabChunk) {
        if (tokenChunk < 1 || vocabChunk < 1 || tokenChunk % ALIGN != 0 || vocabChunk % ALIGN != 0)
            throw new IllegalArgumentException("linearCrossEntropy: CUDA chunk sizes must be positive multiples of " + ALIGN
                    + " (operand alignment), got tokens " + tokenChunk + ", vocabulary " + vocabChunk);
        this.backend = backend;
        this.tokenChunk = tokenChunk;
        this.vocabChunk = vocabChunk;
    }

    @Override
    public void forward(Tensor hidden, Tensor weight, Tensor targets, long ignoreIndex, Tensor lse, Tensor rowLoss) {
        int n = hidden.size(0), hd = hidden.size(1), v = weight.size(0);
        if (n == 0) return;
        CudaDevice d = backend.on(hidden.device());
        DType work = lse.dtype();
        String f64 = work == DType.F64 ? "_f64" : "";
        backend.fill(lse, Double.NEGATIVE_INFINITY);          // running max, then lse
        backend.fill(rowLoss, 0);                             // the picked target logit, then the row's loss
        java.util.List<Tensor> scratch = new java.util.ArrayList<>();
        try {
            Tensor sum = keep(scratch, Tensor.empty(hidden.device(), work, n));   // running Σ exp
            backend.fill(sum, 0);
            if (v > 0) {
                int tn = Math.min(tokenChunk, n), tv = Math.min(vocabChunk, v);
                Tensor logits = keep(scratch, Tensor.empty(hidden.device(), work, tn * tv));
                hidden = aligned(hidden, scratch);
                weight = aligned(weight, scratch);
                for (int t0 = 0; t0 < n; t0 += tn) {
                    int len = Math.min(tn, n - t0);
                    Tensor h = hidden.narrow(0, t0, len);
                    for (int v0 = 0; v0 < v; v0 += tv) {
                        int width = Math.min(tv, v - v0);
                        Tensor x = chunk(logits, len, width);
                        logits(d, h, weight.narrow(0, v0, width), x, hd);
                        rowArgs(len, width, v0, ignoreIndex, v, x, targets.narrow(0, t0, len), lse.narrow(0, t0, len),
                                sum.narrow(0, t0, len), rowLoss.narrow(0, t0, len), d)
                                .launch(d.kernel("linear_cross_entropy", "lce_online" + f64), d.stream, len, CudaBackend.THREADS);
                    }
                }
            }
            rowArgs(n, 0, 0, ignoreIndex, v, null, targets, lse, sum, rowLoss, d)
                    .launch(d.kernel("linear_cross_entropy", "lce_finish" + f64), d.stream, Dim3.blocks(n, CudaBackend.THREADS), CudaBackend.THREADS);
        } finally {
            for (Tensor t : scratch) t.close();
        }
    }

    @Override
    public void backward(Tensor hidden, Tensor weight, Tensor targets, Tensor lse, Tensor scale, long ignoreIndex,
            Tensor dHidden, Tensor dWeight) {
        int n = hidden.size(0), hd = hidden.size(1), v = weight.size(0);
        if ((dHidden == null && dWeight == null) || hd == 0) return;   // no gradient asked for, or both empty
        if (n == 0 || v == 0) {                                          // nothing flows: zero gradients
            if (dHidden != null) backend.fill(dHidden, 0);
            if (dWeight != null) backend.fill(dWeight, 0);
            return;
        }
        CudaDevice d = backend.on(hidden.device());
        DType work = lse.dtype(), in = hidden.dtype();
        String f64 = work == DType.F64 ? "_f64" : "";
        int tn = Math.min(tokenChunk, n), tv = Math.min(vocabChunk, v);
        java.util.List<Tensor> scratch = new java.util.ArrayList<>();
        try {
            hidden = aligned(hidden, scratch);
            weight = aligned(weight, scratch);
            Tensor logits = keep(scratch, Tensor.empty(hidden.device(), work, tn * tv));
            // g is the gradient products' operand: of the inputs' dtype (cuBLASLt takes one type for A and B)
            Tensor g = in == work ? logits : keep(scratch, Tensor.empty(hidden.device(), in, tn * tv));
            Tensor dh = dHidden == null ? null : dHidden.dtype() == work ? dHidden : keep(scratch, Tensor.empty(hidden.device(), work, n, hd));
            Tensor dwAcc = dWeight == null || dWeight.dtype() == work ? null : keep(scratch, Tensor.empty(hidden.device(), work, tv * hd));
            for (int v0 = 0; v0 < v; v0 += tv) {
                int width = Math.min(tv, v - v0);
                Tensor w = weight.narrow(0, v0, width);
                Tensor dw = dWeight == null ? null : dwAcc == null ? dWeight.narrow(0, v0, width) : chunk(dwAcc, width, hd);
                for (int t0 = 0; t0 < n; t0 += tn) {
                    int len = Math.min(tn, n - t0);
                    Tensor h = hidden.narrow(0, t0, len), x = chunk(logits, len, width), gc = chunk(g, len, width);
                    logits(d, h, w, x, hd);
                    rowArgs(len, width, v0, ignoreIndex, v, x, targets.narrow(0, t0, len), lse.narrow(0, t0, len), scale, gc, d)
                            .launch(d.kernel("linear_cross_entropy", "lce_grad" + f64), d.stream, len, CudaBackend.THREADS);
                    if (dh != null) gemm(d, gc, false, w, false, dh.narrow(0, t0, len), v0 > 0);       // [len, H] += g · W_chunk
                    if (dw != null) gemm(d, gc, true, h, false, dw, t0 > 0);                          // [width, H] += gᵀ · h
                }
                if (dwAcc != null) backend.copy(dw, dWeight.narrow(0, v0, width));                   // rounded once
            }
            if (dh != null && dh != dHidden) backend.copy(dh, dHidden);
        } finally {
            for (Tensor t : scratch) t.close();
        }
    }

    /** x [len, width] = h [len, H] · wᵀ (w [width, H]); zeros when H = 0. */
    private void logits(CudaDevice d, Tensor h, Tensor w, Tensor x, int hd) {
        if (hd == 0) backend.fill(x, 0);
        else gemm(d, h, false, w, true, x, false);
    }

    /** The first len·width elements of a flat scratch, as [len, width]. */
    private static Tensor chunk(Tensor flat, int len, int width) {
        return flat.narrow(0, 0, (long) len * width).reshape(len, width);
    }

    /**
     * t, or a fresh copy where its first element is not 16-byte aligned (a view at an odd offset): chunk
     * starts are 256-byte aligned from an aligned base, and cuBLASLt's kernels need aligned operands.
     */
    private Tensor aligned(Tensor t, java.util.List<Tensor> scratch) {
        if ((CudaBackend.address(t) & 15) == 0) return t;
        Tensor c = keep(scratch, Tensor.empty(t.device(), t.dtype(), t.shape()));
        backend.copy(t, c);
        return c;
    }

    private static Tensor keep(java.util.List<Tensor> scratch, Tensor t) {
        scratch.add(t);
        return t;
    }

    /**
     * c [m, n] = op(a) · op(b), or += when accumulate: a [m, k] (stored [k, m] when transA), b [k, n]
     * (stored [n, k] when transB), all contiguous 2-D; c f32 (f64 for f64 operands).
     */
    private void gemm(CudaDevice d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, boolean accumulate) {
        int m = c.size(0), n = c.size(1), k = transA ? a.size(0) : a.size(1);
        if (a.dtype() == DType.F64) {                         // cuBLASLt has no f64 here: the backend's f64 kernel
            Tensor a3 = (transA ? a.transpose(0, 1) : a).unsqueeze(0), b3 = (transB ? b.transpose(0, 1) : b).unsqueeze(0);
            if (!accumulate) {
                backend.matmul(a3, b3, c.unsqueeze(0));
                return;
            }
            try (Tensor p = Tensor.empty(c.device(), c.dtype(), 1, m, n)) {
                backend.matmul(a3, b3, p);
                backend.addInto(c, p.reshape(m, n));
            }
            return;
        }
        DataType type = switch (a.dtype()) {
            case BF16 -> DataType.BF16;
            case F16 -> DataType.F16;
            case F32 -> DataType.F32;
            default -> throw new IllegalArgumentException("linearCrossEntropy: no CUDA product for " + a.dtype().lower());
        };
        Matmul op = new Matmul(type, m, n, k, transA, transB, 1, (long) m * k, (long) k * n, (long) m * n, Epilogue.NONE);
        d.blas().matmul(op, DataType.F32, accumulate, CudaBackend.slice(c, c.numel()), CudaBackend.slice(a, a.numel()),
                CudaBackend.slice(b, b.numel()), d.stream);
    }

    /** LceArgs {len, width, v0, ignore, vocab, logits, targets, a, b, c, error, op}; logits may be null. */
    private static Launch rowArgs(long len, long width, long v0, long ignore, long vocab, Tensor logits, Tensor targets,
            Tensor a, Tensor b, Tensor c, CudaDevice d) {
        Launch l = Launch.begin().struct().i64(len).i64(width).i64(v0).i64(ignore).i64(vocab);  // linear_cross_entropy.cu's LceArgs
        for (Tensor t : new Tensor[] {logits, targets, a, b, c})
            if (t == null) l.operand(0, UNIT, 1, DType.F32.code);
            else l.operand(CudaBackend.address(t), UNIT, 1, t.dtype().code);
        return l.i64(d.indexErrorAddress()).i32(d.opId(OP)).i32(0);
    }
}

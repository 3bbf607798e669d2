package dev.jomni.cuda;

import static dev.jomni.cuda.BackendParity.FLOATS;
import static dev.jomni.cuda.BackendParity.check;
import static dev.jomni.cuda.BackendParity.compare;
import static dev.jomni.cuda.BackendParity.gpu;
import static dev.jomni.cuda.BackendParity.index;
import static dev.jomni.cuda.BackendParity.mask;
import static dev.jomni.cuda.BackendParity.normal;
import static dev.jomni.cuda.BackendParity.typed;
import static dev.jomni.cuda.BackendParity.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Memory;
import dev.jomni.tensor.Scope;
import dev.jomni.tensor.Tensor;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Every op of the tensor core on CUDA against the CPU reference, forward and backward, f32/bf16/f16. */
@Tag("gpu")
class CudaBackendTest {
    static final int[] SIZES = {1, 31, 4097};

    private static void unary(DType t, String name, Function<Tensor, Tensor> f, double lo, double hi) {
        for (int n : SIZES) check(name + "[" + n + "]", t, x -> f.apply(x[0]), hi > lo ? uniform(lo, hi, n) : normal(n));
        // a non-contiguous view: the transpose of [31, 7]
        check(name + " of a transposed view", t, x -> f.apply(x[0].mT()), hi > lo ? uniform(lo, hi, 31, 7) : normal(31, 7));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void unaryOpsAndTheirGradientsMatchTheCpu(DType t) {
        unary(t, "neg", Tensor::neg, 0, 0);
        unary(t, "exp", Tensor::exp, -3, 3);
        unary(t, "log", Tensor::log, 0.1, 4);
        unary(t, "sqrt", Tensor::sqrt, 0.1, 4);
        unary(t, "rsqrt", Tensor::rsqrt, 0.1, 4);
        unary(t, "tanh", Tensor::tanh, 0, 0);
        unary(t, "sigmoid", Tensor::sigmoid, 0, 0);
        unary(t, "silu", Tensor::silu, 0, 0);
        unary(t, "gelu", Tensor::gelu, 0, 0);
        unary(t, "geluTanh", Tensor::geluTanh, 0, 0);
        unary(t, "relu", Tensor::relu, 0, 0);
        unary(t, "abs", Tensor::abs, 0, 0);
        unary(t, "clamp", x -> x.clamp(-0.5, 0.7), 0, 0);
        unary(t, "pow 2.5", x -> x.pow(2.5), 0.1, 3);
        unary(t, "pow 3", x -> x.pow(3), 0, 0);
        unary(t, "affine", x -> x.mul(1.5).add(0.25), 0, 0);
        unary(t, "rsub", x -> x.rsub(2), 0, 0);
        unary(t, "square", Tensor::square, 0, 0);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void binaryOpsBroadcastAndDifferentiateAsOnTheCpu(DType t) {
        List<Function<Tensor[], Tensor>> ops = List.of(x -> x[0].add(x[1]), x -> x[0].sub(x[1]), x -> x[0].mul(x[1]),
                x -> x[0].div(x[1]), x -> x[0].maximum(x[1]), x -> x[0].minimum(x[1]));
        String[] names = {"add", "sub", "mul", "div", "maximum", "minimum"};
        for (int i = 0; i < ops.size(); i++) {
            var f = ops.get(i);
            for (int n : SIZES) check(names[i] + "[" + n + "]", t, f, uniform(0.5, 2, n), uniform(-2, -0.5, n));
            check(names[i] + " [7,31] with [31]", t, f, normal(7, 31), uniform(0.5, 2, 31));
            check(names[i] + " [7,1] with [1,31]", t, f, normal(7, 1), uniform(0.5, 2, 1, 31));
            check(names[i] + " of transposed views", t, x -> f.apply(new Tensor[] {x[0].mT(), x[1].mT()}), normal(31, 7), uniform(0.5, 2, 31, 7));
        }
        check("pow", t, x -> x[0].pow(x[1]), uniform(0.5, 2, 5, 31), uniform(-1.5, 1.5, 31));
        check("maximum with ties", t, x -> x[0].maximum(x[0].mul(1)), normal(4097));
        check("x * x (both operands one tensor)", t, x -> x[0].mul(x[0]), normal(31));
        for (String c : new String[] {"eq", "ne", "lt", "le", "gt", "ge"}) {
            check(c, t, x -> switch (c) {
                case "eq" -> x[0].eq(x[1]);
                case "ne" -> x[0].ne(x[1]);
                case "lt" -> x[0].lt(x[1]);
                case "le" -> x[0].le(x[1]);
                case "gt" -> x[0].gt(x[1]);
                default -> x[0].ge(x[1]);
            }, uniform(-2, 2, 7, 31), uniform(-2, 2, 31));
        }
        check("eq of a tensor with itself", t, x -> x[0].eq(x[0].mul(1)), normal(4097));
        check("logicalAnd / logicalOr", t, x -> x[0].logicalAnd(x[1]).logicalOr(x[2]), mask(7, 31), mask(31), mask(7, 1));
        check("where", t, x -> Tensor.where(x[0], x[1], x[2]), mask(7, 31), normal(7, 31), normal(31));
        check("maskedFill", t, x -> x[1].maskedFill(x[0], -1e4), mask(7, 31), normal(7, 31));
        check("scalar ops", t, x -> x[0].div(3).sub(0.5).add(x[0].eq(0.25).to(t)), normal(4097));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void reductionsMatchTheCpu(DType t) {
        for (int n : SIZES) {
            check("sum[" + n + "]", t, x -> x[0].sum(), normal(n));
            check("max[" + n + "]", t, x -> x[0].max(), normal(n));
            check("argmax[" + n + "]", t, x -> x[0].argmax(0, false), normal(n));
        }
        check("sum dim 0", t, x -> x[0].sum(0, false), normal(7, 31, 5));
        check("sum dims 0,2 keepdim", t, x -> x[0].sum(new int[] {0, 2}, true), normal(7, 31, 5));
        check("mean dim 1", t, x -> x[0].mean(1, false), normal(7, 4097));
        check("max dim 1", t, x -> x[0].max(1, true), normal(7, 31, 5));
        check("min dim 0", t, x -> x[0].min(0, false), normal(7, 31));
        check("argmax dim 2", t, x -> x[0].argmax(2, false), normal(7, 31, 5));
        check("argmin dim 0", t, x -> x[0].argmin(0, true), normal(7, 31));
        check("logsumexp", t, x -> x[0].logsumexp(-1, false), normal(7, 4097));
        check("var", t, x -> x[0].var(1, false, 1), normal(7, 31));
        check("sum of a long column", t, x -> x[0].sum(0, false), normal(4097, 3));
        check("softmax", t, x -> x[0].softmax(-1), normal(7, 31));
        check("softmax dim 0", t, x -> x[0].softmax(0), normal(31, 7));
        check("logSoftmax", t, x -> x[0].logSoftmax(-1), normal(3, 4097));
        check("rmsNorm", t, x -> x[0].rmsNorm(x[1], 1e-6), normal(7, 31), normal(31));
        check("layerNorm", t, x -> x[0].layerNorm(x[1], x[2], 1e-5), normal(7, 31), normal(31), normal(31));
        check("crossEntropy", t, x -> x[0].crossEntropy(x[1], 3), normal(2, 9, 31), index(31, 2, 9));
    }

    @Test
    void maxAndArgmaxFollowTheCpuOnNaNAndTies() {
        Device gpu = gpu();
        double nan = Double.NaN;
        double[] v = {1, 3, 3, 2, /* */ 5, nan, 7, nan, /* */ -1, -1, -2, -2, /* */ nan, 0, 0, 0};
        for (DType t : FLOATS) {
            Tensor cpu = Tensor.fromDoubles(t, v, 4, 4), cuda = cpu.to(gpu);
            for (int dim = 0; dim < 2; dim++) {
                assertArrayEquals(cpu.argmax(dim, false).toLongArray(), cuda.argmax(dim, false).toLongArray(), "argmax " + t);
                assertArrayEquals(cpu.argmin(dim, false).toLongArray(), cuda.argmin(dim, false).toLongArray(), "argmin " + t);
                compare("max " + t, t, cuda.max(dim, false).toDoubleArray(), cpu.max(dim, false).toDoubleArray());
                assertArrayEquals(cpu.argsort(dim, true).toLongArray(), cuda.argsort(dim, true).toLongArray(), "argsort desc " + t);
                assertArrayEquals(cpu.argsort(dim, false).toLongArray(), cuda.argsort(dim, false).toLongArray(), "argsort " + t);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void matmulMatchesTheCpuForEveryLayout(DType t) {
        check("matmul [5,31]@[31,9]", t, x -> x[0].matmul(x[1]), normal(5, 31), normal(31, 9));
        check("matmul [1,1]@[1,1]", t, x -> x[0].matmul(x[1]), normal(1, 1), normal(1, 1));
        check("matmul [3,5,31]@[3,31,9]", t, x -> x[0].matmul(x[1]), normal(3, 5, 31), normal(3, 31, 9));
        check("matmul [3,5,31]@[31,9] (a linear layer)", t, x -> x[0].matmul(x[1]), normal(3, 5, 31), normal(31, 9));
        check("matmul [2,1,5,31]@[3,31,9] (broadcast batch)", t, x -> x[0].matmul(x[1]), normal(2, 1, 5, 31), normal(3, 31, 9));
        check("matmul a @ bᵀ (a Linear weight)", t, x -> x[0].matmul(x[1].mT()), normal(4, 5, 31), normal(9, 31));
        check("matmul aᵀ @ b", t, x -> x[0].mT().matmul(x[1]), normal(31, 5), normal(31, 9));
        check("matmul of column slices (copied for cuBLASLt)", t, x -> x[0].narrow(1, 3, 20).matmul(x[1].narrow(0, 1, 20)), normal(5, 31), normal(31, 9));
        check("matmul vector", t, x -> x[0].matmul(x[1]), normal(31), normal(31, 9));
        check("matmul [64,4097]@[4097,33]", t, x -> x[0].matmul(x[1]), normal(64, 4097), normal(4097, 33));
        check("attention-like permuted batch", t, x -> x[0].permute(0, 2, 1, 3).matmul(x[1].permute(0, 2, 3, 1)),
                normal(2, 7, 3, 16), normal(2, 9, 3, 16));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16"})
    void indexingSortingAndShapingMatchTheCpu(DType t) {
        check("embedding with repeated ids", t, x -> x[0].embedding(x[1]), normal(11, 31), index(11, 3, 17));
        check("indexSelect dim 1", t, x -> x[0].indexSelect(1, x[1]), normal(7, 31, 5), index(31, 40));
        check("indexAdd dim 0 (repeated indices)", t, x -> x[0].indexAdd(0, x[2], x[1]), normal(11, 31), normal(40, 31), index(11, 40));
        check("indexAdd dim 1", t, x -> x[0].indexAdd(1, x[2], x[1]), normal(3, 11, 5), normal(3, 20, 5), index(11, 20));
        check("gather dim 1", t, x -> x[0].gather(1, x[1]), normal(7, 31), index(31, 7, 45));
        check("gather dim 0 (smaller index)", t, x -> x[0].gather(0, x[1]), normal(7, 31), index(7, 5, 20));
        check("scatterAdd dim 1 (repeated indices)", t, x -> x[0].scatterAdd(1, x[2], x[1]), normal(7, 31), normal(7, 45), index(31, 7, 45));
        check("scatterAdd dim 0", t, x -> x[0].scatterAdd(0, x[2], x[1]), normal(7, 31), normal(9, 31), index(7, 9, 31));
        check("cat dim 1", t, x -> Tensor.cat(List.of(x[0], x[1].mT()), 1), normal(7, 31), normal(5, 7));
        check("stack", t, x -> Tensor.stack(List.of(x[0], x[1]), 0), normal(7, 31), normal(7, 31));
        check("split and chunk", t, x -> x[0].split(10, 1).get(3).mul(x[0].chunk(4, 1).get(0).narrow(1, 0, 1)), normal(7, 31));
        check("sort values", t, x -> x[0].sort(-1, true).values(), normal(7, 128));
        check("sort dim 0", t, x -> x[0].sort(0, false).values(), normal(31, 5));
        check("topk", t, x -> x[0].topk(8, -1, true).values(), normal(9, 128));
        check("argsort of a vocabulary row", t, x -> x[0].argsort(-1, true), normal(2, 4097));
        check("topk indices", t, x -> x[0].topk(8, -1, false).indices(), normal(9, 128));
        check("cumsum", t, x -> x[0].cumsum(-1), normal(7, 4097));
        check("cumsum dim 0", t, x -> x[0].cumsum(0), normal(31, 5));
        check("oneHot", t, x -> x[0].oneHot(9), index(9, 4, 7));
        check("slice with a step (backward adds into a strided view)", t, x -> x[0].slice(1, 1, 31, 3).exp(), normal(7, 31));
        check("expand", t, x -> x[0].expand(5, 7, 31).mul(x[1]), normal(7, 1), normal(5, 1, 31));
        check("permute + contiguous", t, x -> x[0].permute(2, 0, 1).contiguous(), normal(3, 5, 7));
        check("reshape of a permuted view", t, x -> x[0].permute(1, 0, 2).reshape(5, 21).square(), normal(3, 5, 7));
        check("pad", t, x -> x[0].pad(1, 2, 0, 3), normal(2, 7, 31));
        check("conv2d (overlapping windows in backward)", t, x -> x[0].conv2d(x[1], x[2], 2, 1), normal(2, 3, 9, 9), normal(4, 3, 3, 3), normal(4));
        check("conv2d with 16 channels (windows add up in parallel over batch and channels)", t,
                x -> x[0].conv2d(x[1], null, 2, 1), normal(3, 16, 12, 33), normal(8, 16, 3, 3));
        check("conv2d stride 1", t, x -> x[0].conv2d(x[1], null, 1, 0), normal(1, 2, 6, 31), normal(3, 2, 3, 3));
        check("asStrided sliding windows", t, x -> x[0].asStrided(new int[] {29, 3}, new long[] {1, 1}, 0).square(), normal(31));
        check("dropout", t, x -> x[0].dropout(0.25, new Generator(7), true), normal(7, 31));
        check("to other floating types and back", t, x -> x[0].to(DType.F32).to(DType.F16).to(t).mul(x[0]), normal(4097));
    }

    @Test
    void integerAndDoubleTensorsMatchTheCpu() {
        DType i64 = DType.I64;
        check("i64 add/mul", DType.F32, x -> x[0].add(x[1]).mul(x[1]), typed(i64, index(1000, 7, 31)), typed(i64, index(1000, 31)));
        check("i64 sum", DType.F32, x -> x[0].sum(1, false), typed(i64, index(1000, 7, 31)));
        check("i64 argmax", DType.F32, x -> x[0].argmax(1, false), typed(i64, index(5, 7, 31)));
        check("i64 cumsum", DType.F32, x -> x[0].cumsum(1), typed(i64, index(1000, 7, 31)));
        check("i64 cumsum of long rows", DType.F32, x -> x[0].cumsum(1), typed(i64, index(1000, 3, 4097)));
        check("i64 matmul", DType.F32, x -> x[0].matmul(x[1]), typed(i64, index(9, 5, 31)), typed(i64, index(9, 31, 4)));
        check("i32 div (true division)", DType.F32, x -> x[0].div(x[1].add(1)), typed(DType.I32, index(100, 31)), typed(DType.I32, index(9, 31)));
        check("u8 comparisons", DType.F32, x -> x[0].lt(x[1]), typed(DType.U8, index(255, 31)), typed(DType.U8, index(255, 31)));
        check("bool sum", DType.F32, x -> x[0].sum(0, false), mask(31, 3));
        check("f64 matmul and softmax", DType.F64, x -> x[0].matmul(x[1]).softmax(-1), normal(5, 31), normal(31, 9));
        check("f64 exp", DType.F64, x -> x[0].exp().sum(-1, false), normal(7, 31));
    }

    @Test
    void conversionsBetweenAllEightDtypesMatchTheCpu() {
        Device gpu = gpu();
        double[] v = {-2.7, -1, -0.5, 0, 0.5, 1.5, 2.5, 300.25, -129, 1e10, -1e10, Double.NaN,
                Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 65504, 1e-8};
        for (DType from : DType.values()) {
            Tensor cpu = Tensor.fromDoubles(from, v, v.length), cuda = cpu.to(gpu);
            for (DType to : DType.values()) {
                double[] want = cpu.to(to).toDoubleArray(), got = cuda.to(to).toDoubleArray();
                for (int i = 0; i < v.length; i++)
                    assertTrue(Double.compare(want[i], got[i]) == 0 || (want[i] == got[i]),
                            from + " -> " + to + ": element " + i + " (" + v[i] + ") is " + got[i] + ", the CPU gives " + want[i]);
            }
            // strided views through a conversion
            Tensor cs = Tensor.fromDoubles(from, v, 4, 4).mT(), gs = cs.to(gpu);
            assertArrayEquals(cs.to(DType.F32).toDoubleArray(), gs.to(DType.F32).toDoubleArray(), from + " transposed -> f32");
        }
    }

    @Test
    void scatterAndIndexAddAreDeterministic() {
        Device gpu = gpu();
        Tensor idx = Tensor.fromDoubles(DType.I64, BackendParity.draw(new java.util.SplittableRandom(1), index(3, 4097)), 4097).to(gpu);
        Tensor src = Tensor.randn(new Generator(2), DType.F32, 4097, 33).to(gpu);
        Tensor zero = Tensor.zeros(gpu, DType.F32, 3, 33);
        double[] first = zero.indexAdd(0, idx, src).toDoubleArray();
        for (int i = 0; i < 3; i++) assertArrayEquals(first, zero.indexAdd(0, idx, src).toDoubleArray(), "indexAdd run " + i);
        double[] sum = src.sum(0, false).toDoubleArray();
        for (int i = 0; i < 3; i++) assertArrayEquals(sum, src.sum(0, false).toDoubleArray(), "sum run " + i);
    }

    @Test
    void allocatorReusesFreedBlocks() {
        Device gpu = gpu();
        for (int i = 0; i < 3; i++) Tensor.zeros(gpu, DType.F32, 1000, 37).close();      // warm the size class
        AllocatorStats before = CudaBackend.memoryStats(gpu);
        for (int i = 0; i < 50; i++) Tensor.zeros(gpu, DType.F32, 1000, 37).close();
        AllocatorStats after = CudaBackend.memoryStats(gpu);
        assertEquals(before.deviceAllocations(), after.deviceAllocations(), "no cuMemAlloc in the steady state: " + after);
        assertTrue(after.cacheHits() >= before.cacheHits() + 50, "cache hits " + before + " -> " + after);
    }

    @Test
    void closingAScopeReleasesDeviceMemory() {
        Device gpu = gpu();
        Tensor w = Tensor.randn(new Generator(3), DType.BF16, 64, 64).to(gpu).requiresGrad(true);
        long allocated = CudaBackend.memoryStats(gpu).allocatedBytes();
        long mark = Memory.mark();
        try (Scope s = Scope.open()) {
            Tensor x = Tensor.randn(new Generator(4), DType.BF16, 8, 64).to(gpu);
            Tensor loss = x.matmul(w).silu().softmax(-1).sum();
            loss.backward();
            assertTrue(Memory.liveSince(mark)[0] > 0, "the step allocated on the device");
        }
        long[] live = Memory.liveSince(mark);
        assertEquals(1, live[0], "only w's gradient (owned by w) outlives the scope: " + live[1] + " bytes live");
        w.zeroGrad();
        assertEquals(0, Memory.liveSince(mark)[0], "nothing left after the gradient is dropped");
        long now = CudaBackend.memoryStats(gpu).allocatedBytes();   // the garbage collector may only lower it
        assertTrue(now <= allocated, "allocator holds " + now + " bytes, " + allocated + " before the scope");
    }

    @Test
    void readingBackWaitsForAllQueuedWork() {
        Device gpu = gpu();
        try (var g = Autograd.noGrad()) {
            Tensor x = Tensor.full(gpu, DType.F32, 1, 1 << 20);
            for (int i = 0; i < 20; i++) x = x.add(x);                      // 20 launches queued, none waited for
            assertEquals(Math.pow(2, 40), x.sum().item());
            assertEquals(Math.pow(2, 20), x.toFloatArray()[(1 << 20) - 1]);
        }
    }
}

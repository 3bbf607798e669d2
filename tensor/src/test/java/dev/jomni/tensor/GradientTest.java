package dev.jomni.tensor;

import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every differentiable op against finite differences in float64. */
class GradientTest {
    private static final Generator GEN = new Generator(7);

    private static Tensor randn(int... shape) { return Tensor.randn(GEN, DType.F64, shape); }

    /** Values in [lo, hi): keeps log/sqrt/div away from their singularities. */
    private static Tensor uniform(double lo, double hi, int... shape) {
        return Tensor.rand(GEN, DType.F64, shape).mul(hi - lo).add(lo).detach();
    }

    private static Tensor ids(long[] values, int... shape) { return Tensor.of(values, shape); }

    private static Arguments op(String name, Function<Tensor[], Tensor> f, Tensor... inputs) {
        return Arguments.of(name, f, inputs);
    }

    static Stream<Arguments> ops() {
        return Stream.of(
                op("add broadcast", x -> x[0].add(x[1]), randn(3, 4), randn(4)),
                op("sub broadcast", x -> x[0].sub(x[1]), randn(2, 1, 3), randn(4, 1)),
                op("mul broadcast", x -> x[0].mul(x[1]), randn(3, 4), randn(3, 1)),
                op("div", x -> x[0].div(x[1]), randn(3, 4), uniform(0.5, 2, 3, 4)),
                op("pow tensor", x -> x[0].pow(x[1]), uniform(0.5, 2, 5), randn(5)),
                op("pow scalar", x -> x[0].pow(3.0), randn(6)),
                op("maximum", x -> x[0].maximum(x[1]), randn(7), randn(7)),
                op("minimum", x -> x[0].minimum(x[1]), randn(7), randn(7)),
                op("scalar affine", x -> x[0].mul(2.5).add(1).rsub(3).sub(0.5).div(4.0), randn(5)),
                op("neg", x -> x[0].neg(), randn(4)),
                op("exp", x -> x[0].exp(), randn(4)),
                op("log", x -> x[0].log(), uniform(0.2, 3, 4)),
                op("sqrt", x -> x[0].sqrt(), uniform(0.2, 3, 4)),
                op("rsqrt", x -> x[0].rsqrt(), uniform(0.2, 3, 4)),
                op("tanh", x -> x[0].tanh(), randn(4)),
                op("sigmoid", x -> x[0].sigmoid(), randn(4)),
                op("silu", x -> x[0].silu(), randn(9)),
                op("gelu erf", x -> x[0].gelu(), randn(9)),
                op("gelu tanh", x -> x[0].geluTanh(), randn(9)),
                op("relu", x -> x[0].relu(), randn(9)),
                op("abs", x -> x[0].abs(), randn(9)),
                op("clamp", x -> x[0].clamp(-0.5, 0.7), randn(9)),
                op("where", x -> Tensor.where(x[0].gt(0), x[1], x[2]), randn(3, 4), randn(3, 4), randn(4)),
                op("maskedFill", x -> x[0].maskedFill(x[1].gt(0), -3), randn(3, 4), randn(3, 4)),
                op("sum dims", x -> x[0].sum(new int[] {0, 2}, false), randn(2, 3, 4)),
                op("sum keepdim", x -> x[0].sum(1, true), randn(2, 3, 4)),
                op("mean", x -> x[0].mean(-1, false), randn(2, 5)),
                op("max dim", x -> x[0].max(1, false), randn(3, 5)),
                op("min dim", x -> x[0].min(0, true), randn(3, 5)),
                op("logsumexp", x -> x[0].logsumexp(-1, false), randn(3, 5)),
                op("var", x -> x[0].var(1, true, 1), randn(3, 5)),
                op("matmul 2d", x -> x[0].matmul(x[1]), randn(3, 4), randn(4, 5)),
                op("matmul batched broadcast", x -> x[0].matmul(x[1]), randn(2, 1, 3, 4), randn(3, 4, 2)),
                op("matmul linear", x -> x[0].matmul(x[1].mT()), randn(2, 3, 4), randn(5, 4)),
                op("matmul vector", x -> x[0].matmul(x[1]), randn(4), randn(4, 3)),
                op("softmax", x -> x[0].softmax(1), randn(2, 5, 3)),
                op("logSoftmax", x -> x[0].logSoftmax(-1), randn(3, 5)),
                op("embedding", x -> x[0].embedding(ids(new long[] {2, 0, 2, 1}, 2, 2)), randn(3, 4)),
                op("indexSelect", x -> x[0].indexSelect(1, ids(new long[] {3, 3, 0}, 3)), randn(2, 4)),
                op("gather", x -> x[0].gather(1, ids(new long[] {0, 2, 2, 1}, 2, 2)), randn(2, 3)),
                op("scatterAdd", x -> x[0].scatterAdd(0, ids(new long[] {1, 0, 1}, 1, 3), x[1]), randn(2, 3), randn(1, 3)),
                op("indexAdd", x -> x[0].indexAdd(0, ids(new long[] {2, 0, 2}, 3), x[1]), randn(3, 2), randn(3, 2)),
                op("cat", x -> Tensor.cat(List.of(x[0], x[1]), 1), randn(2, 3), randn(2, 2)),
                op("stack", x -> Tensor.stack(List.of(x[0], x[1]), 0), randn(2, 3), randn(2, 3)),
                op("split", x -> x[0].split(2, 1).get(1).mul(x[0].chunk(2, 1).get(0)), randn(2, 4)),
                op("topk", x -> x[0].topk(2, -1, true).values(), randn(3, 5)),
                op("sort", x -> x[0].sort(0, false).values(), randn(4, 3)),
                op("cumsum", x -> x[0].cumsum(1), randn(2, 5)),
                op("views", x -> x[0].reshape(3, 4).transpose(0, 1).narrow(0, 1, 2).unsqueeze(0).expand(2, 2, 3)
                        .permute(2, 1, 0).contiguous().unsqueeze(1).squeeze(1).flatten(), randn(12)),
                op("slice step", x -> x[0].slice(1, 1, 6, 2), randn(2, 7)),
                op("pad", x -> x[0].pad(1, 2, 0, 1), randn(2, 3)),
                op("conv2d stride padding", x -> x[0].conv2d(x[1], x[2], 2, 1), randn(2, 3, 7, 6), randn(4, 3, 3, 3), randn(4)),
                op("conv2d no bias", x -> x[0].conv2d(x[1], null, 1, 0), randn(1, 2, 5, 5), randn(3, 2, 2, 3)),
                op("layerNorm", x -> x[0].layerNorm(x[1], x[2], 1e-5), randn(3, 6), randn(6), randn(6)),
                op("rmsNorm", x -> x[0].rmsNorm(x[1], 1e-6), randn(3, 6), randn(6)),
                op("crossEntropy", x -> x[0].crossEntropy(ids(new long[] {2, -100, 0, 4}, 4), -100), randn(4, 5)),
                op("dropout", x -> x[0].dropout(0.3, new Generator(3), true), randn(20)),
                op("checkpoint", x -> Autograd.checkpoint(in -> in[0].matmul(x[1]).tanh(), x[0]), randn(3, 4), randn(4, 2)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ops")
    void analyticGradientMatchesFiniteDifferences(String name, Function<Tensor[], Tensor> f, Tensor[] inputs) {
        GradCheck.check(name, f, inputs);
    }
}

package dev.jomni.tensor;

/** softmax and log-softmax along an axis, shifted by the row maximum; gradients in closed form. */
final class SoftmaxOp {
    private SoftmaxOp() {}

    static Tensor softmax(Tensor x, int dim, boolean log) {
        Check.floating(log ? "logSoftmax" : "softmax", x);
        int d = Check.dim(log ? "logSoftmax" : "softmax", dim, x.rank());
        Tensor y;
        try (var g = Autograd.noGrad()) {
            Tensor shifted = x.sub(x.max(d, true));
            y = log ? shifted.sub(shifted.exp().sum(d, true).log()) : shifted.exp().div(shifted.exp().sum(d, true));
        }
        Tensor out = y;
        return Autograd.record(log ? "logSoftmax" : "softmax", out, (dy, needs) -> new Tensor[] {
                log ? dy.sub(out.exp().mul(dy.sum(d, true)))            // dx = dy − softmax · Σdy
                    : out.mul(dy.sub(dy.mul(out).sum(d, true)))}, x);   // dx = y (dy − Σ dy·y)
    }
}

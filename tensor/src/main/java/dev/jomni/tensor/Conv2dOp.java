package dev.jomni.tensor;

/**
 * 2-D convolution as im2col + matmul: the padded input viewed as sliding windows
 * [B, C, oh, ow, kh, kw] (a strided view, no copy), laid out as [B·oh·ow, C·kh·kw] and multiplied by
 * the weight [O, C·kh·kw]ᵀ. The window view's backward adds overlapping gradients (col2im).
 */
final class Conv2dOp {
    private Conv2dOp() {}

    static Tensor conv2d(Tensor x, Tensor w, Tensor bias, int stride, int padding) {
        if (x.rank() != 4 || w.rank() != 4)
            throw Check.fail("conv2d", "input %s and weight %s must both be 4-D ([B,C,H,W] and [O,C,kh,kw])", Check.str(x.shape()), Check.str(w.shape()));
        int[] xs = x.shape(), ws = w.shape();
        int batch = xs[0], c = xs[1], out = ws[0], kh = ws[2], kw = ws[3];
        if (ws[1] != c) throw Check.fail("conv2d", "input %s has %d channels, weight %s expects %d", Check.str(xs), c, Check.str(ws), ws[1]);
        if (stride < 1 || padding < 0) throw Check.fail("conv2d", "stride %d, padding %d", stride, padding);
        if (bias != null && (bias.rank() != 1 || bias.shape()[0] != out))
            throw Check.fail("conv2d", "bias %s for %d output channels", Check.str(bias.shape()), out);
        int h = xs[2] + 2 * padding, wd = xs[3] + 2 * padding;
        if (h < kh || wd < kw) throw Check.fail("conv2d", "padded input %dx%d is smaller than the kernel %dx%d", h, wd, kh, kw);
        int oh = (h - kh) / stride + 1, ow = (wd - kw) / stride + 1;
        Tensor padded = (padding > 0 ? x.pad(padding, padding, padding, padding) : x).contiguous();
        long sc = (long) h * wd, sb = c * sc;
        Tensor windows = padded.asStrided(new int[] {batch, oh, ow, c, kh, kw},
                new long[] {sb, (long) stride * wd, stride, sc, wd, 1}, 0);
        Tensor cols = windows.reshape(batch * oh * ow, c * kh * kw);                     // im2col (one copy)
        Tensor y = cols.matmul(w.reshape(out, c * kh * kw).mT());                        // [B·oh·ow, O]
        if (bias != null) y = y.add(bias);
        return y.reshape(batch, oh, ow, out).permute(0, 3, 1, 2).contiguous();
    }
}

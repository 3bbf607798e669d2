package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.ref.WeakReference;
import org.junit.jupiter.api.Test;

/** What the tape keeps: Autograd.savedBytes against hand counts (f32 [3, 4] = 48 bytes). */
class SavedStateTest {
    private static final long X = 3 * 4 * 4;                 // bytes of one f32 [3, 4]
    private final Generator gen = new Generator(11);

    private Tensor param() { return Tensor.randn(gen, DType.F32, 3, 4).requiresGrad(true); }

    private Tensor data() { return Tensor.randn(gen, DType.F32, 3, 4); }

    @Test
    void addAndSubKeepNothing() {
        Tensor x = param(), y = param();
        assertEquals(0, Autograd.savedBytes(x.add(y)));
        assertEquals(0, Autograd.savedBytes(x.sub(y.narrow(0, 0, 1))));
        assertEquals(0, Autograd.savedBytes(x.neg().mul(2).add(1)));   // neg and affine keep nothing either
    }

    @Test
    void mulKeepsItsTwoInputsExpKeepsItsOutput() {
        Tensor x = param(), y = param();
        Tensor m = x.mul(y), e = m.exp(), s = e.sum();
        assertEquals(2 * X, Autograd.savedBytes(m));
        assertEquals(0, Autograd.savedBytes(m, false));               // x and y are parameters
        assertEquals(3 * X, Autograd.savedBytes(s));                  // x, y, exp's output; sum keeps shapes
        assertEquals(X, Autograd.savedBytes(s, false));
    }

    @Test
    void aStorageSavedTwiceCountsOnce() {
        Tensor x = data(), w = param();
        Tensor h = x.mul(w);
        // x·x saves x twice; narrow's view of h is saved with its whole storage, h itself once more
        Tensor y = h.mul(h).sum().add(h.narrow(1, 0, 2).mul(x.narrow(1, 1, 2)).sum());
        assertEquals(2 * X, Autograd.savedBytes(y, false));           // x and h, whatever the views
        assertEquals(3 * X, Autograd.savedBytes(y, true));
    }

    @Test
    void addOfIntermediatesKeepsOnlyWhatTheirOpsKeep() {
        Tensor x = param(), y = param();
        Tensor a = x.exp(), b = y.sigmoid(), c = a.add(b);
        assertEquals(Autograd.savedBytes(a) + Autograd.savedBytes(b), Autograd.savedBytes(c));
        assertEquals(2 * X, Autograd.savedBytes(c, false));
    }

    @Test
    void divKeepsTheDivisorAndTheOutputInputFunctionsKeepTheInput() {
        Tensor x = param(), y = data().abs().add(1);
        Tensor q = x.div(y);
        assertEquals(2 * X, Autograd.savedBytes(q, false));           // y and q
        Tensor s = y.mul(x).silu();                                   // y·x keeps y and x; silu its input y·x
        assertEquals(2 * X, Autograd.savedBytes(s, false));
        assertEquals(3 * X, Autograd.savedBytes(s, true));
        // mean = sum / n: sum keeps shapes, the division its scalar divisor (4 bytes) and its output (4)
        assertEquals(X + 4 + 4, Autograd.savedBytes(x.exp().mean(), false));
    }

    @Test
    void viewsKeepNoTensors() {
        Tensor x = param();
        Tensor v = x.reshape(4, 3).permute(1, 0).slice(0, 1, 3, 1).unsqueeze(0).expand(2, 2, 4).contiguous().to(DType.F64);
        assertEquals(0, Autograd.savedBytes(v, true));
        assertEquals(0, Autograd.savedBytes(x.pad(1, 1).cumsum(1).sum(), true));
    }

    @Test
    void matmulKeepsItsOperandsAndMaxItsArgmaxIndices() {
        Tensor a = Tensor.randn(gen, DType.F32, 2, 3), w = Tensor.randn(gen, DType.F32, 4, 3).requiresGrad(true);
        Tensor y = a.matmul(w.mT());                                 // a [2, 3]: 24 bytes; w: 48 bytes through a view
        assertEquals(24 + 48, Autograd.savedBytes(y, true));
        assertEquals(24, Autograd.savedBytes(y, false));
        Tensor m = param().max(1, false);                            // i64 argmax [3, 1]
        assertEquals(3 * 8, Autograd.savedBytes(m, false));
    }

    @Test
    void catKeepsNoInputsIndexSelectItsIndex() {
        Tensor x = param(), y = param();
        assertEquals(0, Autograd.savedBytes(Tensor.cat(java.util.List.of(x, y), 0), true));
        Tensor ids = Tensor.of(new long[] {2, 0}, 2);
        assertEquals(16, Autograd.savedBytes(x.indexSelect(0, ids), false));
    }

    @Test
    void aFreedGraphAndALeafKeepNothing() {
        Tensor x = param();
        Tensor loss = x.exp().sum();
        assertEquals(X, Autograd.savedBytes(loss));
        loss.backward();
        assertEquals(0, Autograd.savedBytes(loss));
        assertEquals(0, Autograd.savedBytes(x));
    }

    @Test
    void anUndeclaredBackwardIsAnErrorNamingTheOp() {
        Tensor x = param();
        Tensor out = x.detach().mul(3);
        Tensor y = Autograd.record("tripled", out, (dy, needs) -> new Tensor[] {dy.mul(3)}, x);
        var e = assertThrows(IllegalStateException.class, () -> Autograd.savedBytes(y.exp()));
        assertTrue(e.getMessage().contains("'tripled'") && e.getMessage().contains("not a record"), e.getMessage());
    }

    @Test
    void theTapeDoesNotKeepAnUnsavedIntermediateAlive() throws InterruptedException {
        Tensor x = param(), y = param();
        Tensor m = x.mul(y);                                         // nothing saves m: add keeps shapes only
        Tensor out = m.add(y);
        WeakReference<Tensor> ref = new WeakReference<>(m);
        m = null;
        for (int i = 0; i < 50 && ref.get() != null; i++) {
            System.gc();
            Thread.sleep(10);
        }
        assertNull(ref.get(), "x·y is still reachable from the graph of (x·y) + y");
        out.sum().backward();                                        // and backward still works through it
        assertTrue(x.grad() != null && y.grad() != null);
    }
}

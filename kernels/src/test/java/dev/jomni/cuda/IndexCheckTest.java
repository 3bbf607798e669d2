package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Index range checks on CUDA run on the device: an index op queues without a host read, a bad index is
 * raised at the next synchronisation naming the op, position, value and bound, and the device keeps
 * working afterwards. Host synchronisations are counted.
 */
@Tag("gpu")
class IndexCheckTest {
    /** I64 indices uniform in [0, bound), on the CPU. */
    static Tensor randint(Generator g, int bound, int... shape) {
        long[] v = new long[Math.toIntExact(Tensor.numel(shape))];
        for (int k = 0; k < v.length; k++) v[k] = g.nextInt(bound);
        return Tensor.of(v, shape);
    }

    @Test
    void indexOpsQueueWithoutSynchronisingAndGoodResultsMatchTheCpu() {
        Device gpu = BackendParity.gpu();
        CudaDevice d = CudaBackend.of(gpu);
        Generator g = new Generator(Gpu.seed());
        Tensor xc = Tensor.randn(g, DType.F32, 31, 17);
        Tensor ic = randint(g, 31, 64);
        Tensor x = xc.to(gpu), i = ic.to(gpu);
        Tensor gi = randint(g, 17, 31, 5), gic = gi, gig = gi.to(gpu);
        Backend.of(gpu).synchronize(gpu);
        long before = d.hostSyncs();
        Tensor y = x.indexSelect(0, i).mul(2);               // index on the device: checked there
        Tensor z = x.gather(1, gig);
        Tensor m = x.max(1, false);                          // argmax + gather
        Tensor e = x.embedding(i.narrow(0, 0, 9));
        assertEquals(before, d.hostSyncs(), "host synchronisations while queueing index ops");
        float[] got = y.toFloatArray();
        assertEquals(before + 1, d.hostSyncs(), "toHost is one synchronisation");
        assertArrayEquals(xc.indexSelect(0, ic).mul(2).toFloatArray(), got, 0);
        assertArrayEquals(xc.gather(1, gic).toFloatArray(), z.toFloatArray(), 0);
        assertArrayEquals(xc.max(1, false).toFloatArray(), m.toFloatArray(), 0);
        assertArrayEquals(xc.embedding(ic.narrow(0, 0, 9)).toFloatArray(), e.toFloatArray(), 0);
    }

    @Test
    void aBadIndexIsRaisedAtTheNextSynchronisationNamingOpPositionValueAndBound() {
        Device gpu = BackendParity.gpu();
        Tensor x = Tensor.randn(new Generator(Gpu.seed()), DType.F32, 5, 3).to(gpu);
        long[] bad = {0, 4, 1, 7, 2};                       // position 3 holds 7; the axis has 5 rows
        Tensor i = Tensor.of(bad, bad.length).to(gpu);
        Tensor y = x.indexSelect(0, i);                      // queued: no exception yet
        Tensor w = x.mul(3);                                 // later work still queues
        var err = assertThrows(IllegalArgumentException.class, y::toFloatArray);
        String msg = err.getMessage();
        assertTrue(msg.startsWith("indexSelect: index 7 is out of range for an axis of size 5"), msg);
        assertTrue(msg.contains("position 3") && msg.contains("cuda:0"), msg);
        // reported once; the context did not fault: the device goes on computing correctly
        float[] xs = x.toFloatArray(), ws = w.toFloatArray();
        for (int k = 0; k < xs.length; k++) assertEquals(3 * xs[k], ws[k], Math.ulp(ws[k]), "element " + k);
        Tensor ok = Tensor.of(new long[] {4, 0}, 2).to(gpu);
        assertArrayEquals(Tensor.of(xs, 5, 3).indexSelect(0, Tensor.of(new long[] {4, 0}, 2)).toFloatArray(),
                x.indexSelect(0, ok).toFloatArray(), 0);
    }

    @Test
    void theFirstFailingOpInStreamOrderIsTheOneReported() {
        Device gpu = BackendParity.gpu();
        Tensor x = Tensor.randn(new Generator(Gpu.seed()), DType.F32, 4, 6).to(gpu);
        Tensor negative = Tensor.of(new long[] {-1, 0, 0, 0, 0, 0, 0, 0}, 4, 2).to(gpu);
        Tensor tooLarge = Tensor.of(new long[] {9}, 1).to(gpu);
        x.gather(1, negative);
        x.indexSelect(0, tooLarge);
        var err = assertThrows(IllegalArgumentException.class, () -> Backend.of(gpu).synchronize(gpu));
        assertTrue(err.getMessage().startsWith("gather: index -1 is out of range for an axis of size 6"), err.getMessage());
        assertTrue(err.getMessage().contains("position 0"), err.getMessage());
        Backend.of(gpu).synchronize(gpu);                      // cleared: nothing more to report
    }

    @Test
    void aCpuIndexIsStillCheckedAtOnce() {
        Device gpu = BackendParity.gpu();
        Tensor x = Tensor.randn(new Generator(Gpu.seed()), DType.F32, 2, 3).to(gpu);
        var err = assertThrows(IllegalArgumentException.class, () -> x.indexSelect(0, Tensor.of(new long[] {2}, 1)));
        assertTrue(err.getMessage().contains("index 2 is out of range for an axis of size 2"), err.getMessage());
    }
}

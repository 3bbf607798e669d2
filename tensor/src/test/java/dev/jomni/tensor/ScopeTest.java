package dev.jomni.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ScopeTest {
    @Test
    void forwardAndBackwardInAScopeLeaveOnlyTheGradients() {
        Generator g = new Generator(11);
        Tensor w = Tensor.randn(g, DType.F32, 8, 16).requiresGrad(true), b = Tensor.randn(g, DType.F32, 16).requiresGrad(true);
        Tensor x = Tensor.randn(g, DType.F32, 4, 8);
        long mark = Memory.mark();
        double kept;
        try (var scope = Scope.open()) {
            Tensor h = x.matmul(w).add(b).silu().softmax(-1);
            Tensor loss = h.logsumexp(-1, false).mean().add(h.square().sum());
            loss.backward();
            kept = scope.keep(loss.detach()).item();
            assertTrue(scope.size() > 10, "the scope owned the activations");
        }
        assertTrue(Double.isFinite(kept));
        // What is live now: the two gradients (owned by their leaves) and the kept loss.
        assertArrayEquals(new long[] {3, 4L * (8 * 16 + 16) + 4}, Memory.liveSince(mark));
        long wBytes = Memory.liveBytes();
        w.close();
        b.close();
        assertArrayEquals(new long[] {1, 4}, Memory.liveSince(mark), "closing a leaf frees its gradient");
        assertTrue(Memory.liveBytes() <= wBytes - 4L * (2 * (8 * 16 + 16)));
    }

    @Test
    void backwardReleasesIntermediateGradientsAndTemporariesAsItGoes() {
        Tensor x = Tensor.randn(new Generator(3), DType.F32, 64).requiresGrad(true);
        try (var scope = Scope.open()) {
            long mark = Memory.mark();
            Tensor y = x;
            for (int i = 0; i < 50; i++) y = y.tanh().mul(1.01).add(y.sigmoid());
            Tensor loss = y.sum();
            long afterForward = Memory.liveSince(mark)[0];
            loss.backward();
            // Only the leaf's gradient is new: each op's temporaries and each consumed gradient were freed.
            assertEquals(afterForward + 1, Memory.liveSince(mark)[0]);
            assertEquals(64, x.grad().numel());
        }
    }

    @Test
    void usingATensorAfterItsScopeClosedIsAnError() {
        Tensor t;
        try (var scope = Scope.open()) {
            t = Tensor.ones(DType.F32, 3);
        }
        var e = assertThrows(IllegalStateException.class, t::toFloatArray);
        assertTrue(e.getMessage().contains("released"), e.getMessage());
    }

    @Test
    void keptTensorsMoveToTheEnclosingScope() {
        long mark = Memory.mark();
        try (var outer = Scope.open()) {
            Tensor kept;
            try (var inner = Scope.open()) {
                kept = inner.keep(Tensor.ones(DType.F32, 2).mul(3));
            }
            assertArrayEquals(new float[] {3, 3}, kept.toFloatArray());
            assertEquals(1, Memory.liveSince(mark)[0]);
        }
        assertEquals(0, Memory.liveSince(mark)[0]);
    }

    @Test
    void viewsKeepTheirStorageAliveUntilTheLastCloses() {
        Tensor base = Tensor.ones(DType.F32, 4);
        Tensor view = base.narrow(0, 1, 2);
        long mark = Memory.mark() - 1;                     // base's storage is the last allocated
        base.close();
        assertEquals(1, Memory.liveSince(mark)[0]);
        assertArrayEquals(new float[] {1, 1}, view.toFloatArray());
        view.close();
        assertEquals(0, Memory.liveSince(mark)[0]);
    }
}

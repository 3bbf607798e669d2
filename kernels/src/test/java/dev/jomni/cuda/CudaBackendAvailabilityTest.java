package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.spi.Backend;
import org.junit.jupiter.api.Test;

/** The backend's CPU-side pieces: availability errors, dimension merging, overlap detection. */
class CudaBackendAvailabilityTest {
    @Test
    void askingForCudaWithoutAGpuSaysWhyAndLeavesTheCpuWorking() {
        assumeFalse(Cuda.available(), "this machine has a GPU");
        var e = assertThrows(IllegalStateException.class, () -> Device.cuda(0));
        assertTrue(e.getMessage().startsWith("CUDA backend unavailable: "), e.getMessage());
        assertTrue(e.getMessage().length() > "CUDA backend unavailable: ".length() + 20, "a reason is given: " + e.getMessage());
        Tensor x = Tensor.of(new float[] {1, 2, 3}, 3);
        assertArrayEquals(new double[] {2, 4, 6}, x.add(x).toDoubleArray());
        assertEquals(Device.Kind.CPU, Backend.of(Device.cpu()).kind());
    }

    @Test
    void theBackendIsRegisteredForCuda() throws java.io.IOException {
        // On the module path through module-info's provides, on the class path through META-INF/services.
        Module kernels = CudaBackend.class.getModule();
        if (kernels.isNamed())
            assertTrue(kernels.getDescriptor().provides().stream().anyMatch(p -> p.service().equals(Backend.class.getName())
                    && p.providers().equals(java.util.List.of(CudaBackend.class.getName()))), kernels.getDescriptor().provides().toString());
        long listed = 0;
        for (var url : java.util.Collections.list(ClassLoader.getSystemClassLoader().getResources("META-INF/services/" + Backend.class.getName())))
            try (var in = url.openStream()) {
                listed += new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines()
                        .filter(l -> l.strip().equals(CudaBackend.class.getName())).count();
            }
        assertEquals(1, listed, "META-INF/services/" + Backend.class.getName() + " lists " + CudaBackend.class.getName() + " once");
        assertEquals(Device.Kind.CUDA, new CudaBackend().kind());
    }

    @Test
    void contiguousAxesMergeAndBroadcastAxesStay() {
        // [2, 3, 4] contiguous with a [4] operand broadcast over the first two axes
        var d = CudaBackend.Dims.coalesce(new int[] {2, 3, 4}, new long[] {12, 4, 1}, new long[] {0, 0, 1});
        assertEquals(2, d.rank());
        assertArrayEquals(new long[] {6, 4}, java.util.Arrays.copyOf(d.size(), 2));
        assertArrayEquals(new long[] {4, 1}, java.util.Arrays.copyOf(d.strides()[0], 2));
        assertArrayEquals(new long[] {0, 1}, java.util.Arrays.copyOf(d.strides()[1], 2));
        var all = CudaBackend.Dims.coalesce(new int[] {2, 1, 3, 4}, new long[] {12, 12, 4, 1});
        assertEquals(1, all.rank());
        assertEquals(24, all.size()[0]);
        var scalar = CudaBackend.Dims.coalesce(new int[] {}, new long[] {});
        assertEquals(1, scalar.rank());
        assertEquals(1, scalar.size()[0]);
    }

    @Test
    void overlappingViewsAreDetected() {
        assertFalse(CudaBackend.overlaps(new int[] {3, 4}, new long[] {4, 1}));
        assertFalse(CudaBackend.overlaps(new int[] {4, 3}, new long[] {1, 4}));
        assertFalse(CudaBackend.overlaps(new int[] {3, 4}, new long[] {12, 3}));    // every third column
        assertTrue(CudaBackend.overlaps(new int[] {29, 3}, new long[] {1, 1}));      // sliding windows
        assertTrue(CudaBackend.overlaps(new int[] {3, 4}, new long[] {0, 1}));       // broadcast
        assertFalse(CudaBackend.overlaps(new int[] {1, 4}, new long[] {0, 1}));
    }

    @Test
    void windowsOfAConvolutionAddUpInParallelOnlyOverBatchAndChannels() {
        // conv2d's im2col view [B, oh, ow, C, kh, kw] of a padded [2, 3, 11, 11] input, stride 2, 3x3 kernel
        int h = 11, w = 11, c = 3;
        long sc = (long) h * w, sb = c * sc;
        boolean[] p = CudaBackend.disjointAxes(new int[] {2, 5, 5, 3, 3, 3}, new long[] {sb, 2L * w, 2, sc, w, 1});
        assertArrayEquals(new boolean[] {true, false, false, true, false, false}, p);
        // sliding windows of one vector: nothing can run in parallel
        assertArrayEquals(new boolean[] {false, false}, CudaBackend.disjointAxes(new int[] {29, 3}, new long[] {1, 1}));
        // a broadcast axis runs serially (all its elements share one), the axis above it in parallel
        assertArrayEquals(new boolean[] {false, true}, CudaBackend.disjointAxes(new int[] {4, 3}, new long[] {0, 1}));
        // non-overlapping axes above an overlapping pair
        assertArrayEquals(new boolean[] {true, false, false}, CudaBackend.disjointAxes(new int[] {6, 29, 3}, new long[] {31, 1, 1}));
    }

    @Test
    void allTypesOfTheTensorCoreHaveKernelCodes() {
        // tensor.cuh numbers dtypes by DType ordinal
        assertEquals(8, DType.values().length);
        assertEquals(0, DType.F64.ordinal());
        assertEquals(7, DType.BOOL.ordinal());
    }
}

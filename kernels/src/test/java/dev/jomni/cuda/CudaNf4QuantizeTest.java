package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import dev.jomni.tensor.spi.Backend;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** nf4_quantize.cu against the host quantizer (Nf4Weight.Builder) on fresh random weights: every part bit-identical. */
@Tag("gpu")
class CudaNf4QuantizeTest {
    @BeforeAll
    static void onTheDevice() { System.setProperty(Nf4Weight.DEVICE_QUANTIZE, "true"); }   // off by default: the kernels under test

    @AfterAll
    static void back() { System.clearProperty(Nf4Weight.DEVICE_QUANTIZE); }

    /**
     * Shapes: one block; block counts below, at and across 256 (a partial last nested block); a scaled-down expert stack
     * slice of the 30B model ([4·1536, 2048] of gate_up's [128·1536, 2048], [2048·2, 768] of down's); a row of 8192.
     */
    @ParameterizedTest(name = "[{0}, {1}] {2} ×{3}")
    @CsvSource({
        "1,64,BF16,1", "3,192,F32,0.02", "7,4160,BF16,0.02", "257,64,F16,0.5", "256,64,BF16,0.02", "4,8192,F64,0.03",
        "6144,2048,BF16,0.02", "4096,768,BF16,0.02", "1000,128,F16,0.01", "33,320,F32,3"})
    void matchesTheHostQuantizer(int rows, int cols, DType t, double scale) {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Tensor w = Tensor.randn(new Generator(seed), DType.F32, rows, cols).mul(scale).to(t);
        assertSame(Nf4Weight.quantize("w", w), Nf4Weight.quantize("w", w.to(gpu)), gpu, "[" + rows + ", " + cols + "] " + t + " seed " + seed);
    }

    /**
     * Rows scaled by 2^−60 … 2^60 in f32: the absmax sum needs far more than 53 bits, so the device's sum is not taken
     * (its order could round) and the host sums the absmax in order; the offset and codes must still be the host's.
     */
    @Test
    void magnitudesTooWideForAnExactSumFallBackToTheHostSum() {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Generator g = new Generator(seed);
        int rows = 300, cols = 128;
        float[] x = Tensor.randn(g, DType.F32, rows, cols).toFloatArray();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) x[r * cols + c] = Math.scalb(x[r * cols + c], (r * 37) % 121 - 60);
        Tensor w = Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x), rows, cols);
        assertSame(Nf4Weight.quantize("w", w), Nf4Weight.quantize("w", w.to(gpu)), gpu, "wide magnitudes, seed " + seed);
    }

    /** A view starting 4 bf16 elements past an allocation (the kernel's unaligned loads) and a transposed one (copied first). */
    @Test
    void unalignedAndStridedInputs() {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        Tensor flat = Tensor.randn(new Generator(seed), DType.F32, 4 + 96 * 192).mul(0.05).to(DType.BF16);
        Tensor host = flat.narrow(0, 4, 96 * 192).reshape(96, 192), dev = flat.to(gpu).narrow(0, 4, 96 * 192).reshape(96, 192);
        assertSame(Nf4Weight.quantize("w", host), Nf4Weight.quantize("w", dev), gpu, "offset view, seed " + seed);
        Tensor wide = Tensor.randn(new Generator(seed + 1), DType.F32, 128, 64).to(DType.BF16);
        assertSame(Nf4Weight.quantize("w", wide.mT()), Nf4Weight.quantize("w", wide.to(gpu).mT()), gpu, "transposed, seed " + seed);
    }

    /** A NaN in one block and an infinity in another: the codes and NaN-ness of every part as on the host. */
    @Test
    void nanAndInfinityAsTheHost() {
        Device gpu = BackendParity.gpu();
        float[] x = Tensor.randn(new Generator(Gpu.seed()), DType.F32, 8, 128).toFloatArray();
        x[70] = Float.NaN;
        x[300] = Float.POSITIVE_INFINITY;
        Tensor w = Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x.clone()), 8, 128);
        x[70] = 0.5f;
        Tensor inf = Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x.clone()), 8, 128);
        assertSame(Nf4Weight.quantize("w", w), Nf4Weight.quantize("w", w.to(gpu)), gpu, "a NaN and an infinity");
        assertSame(Nf4Weight.quantize("w", inf), Nf4Weight.quantize("w", inf.to(gpu)), gpu, "an infinity");
    }

    /** Blocks of absmax 1 whose other elements sit exactly on the f32 midpoints of the NF4 levels: a tie takes the lower level. */
    @Test
    void tiesTakeTheLowerLevelAsTheHost() {
        Device gpu = BackendParity.gpu();
        float[] x = new float[4 * 128];
        for (int i = 0; i < x.length; i++) x[i] = i % 64 == 0 ? 1f : (Nf4Weight.CODE[i % 15] + Nf4Weight.CODE[i % 15 + 1]) / 2;
        Tensor w = Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x), 4, 128);
        assertSame(Nf4Weight.quantize("w", w), Nf4Weight.quantize("w", w.to(gpu)), gpu, "ties");
    }

    /** The kernels on their own, outputs poisoned: amax, the sum and the lowest set bit as computed here from the values. */
    @Test
    void kernelsWritePoisonedOutputs() {
        Device gpu = BackendParity.gpu();
        long seed = Gpu.seed();
        int rows = 70, cols = 256, blocks = rows * cols / 64;
        Tensor w = Tensor.randn(new Generator(seed), DType.F32, rows, cols).mul(0.03);
        float[] x = w.toFloatArray(), amax = new float[blocks];
        double sum = 0;
        int lowest = Integer.MAX_VALUE;
        for (int b = 0; b < blocks; b++) {
            for (int j = 0; j < 64; j++) amax[b] = Math.max(amax[b], Math.abs(x[b * 64 + j]));
            sum += amax[b];
            int bits = Float.floatToRawIntBits(amax[b]);
            lowest = Math.min(lowest, Math.getExponent(amax[b]) - 23 + Integer.numberOfTrailingZeros(bits & 0x7fffff | 0x800000));
        }
        var k = Backend.of(gpu).kernels(Nf4Weight.Kernels.class);
        Tensor packed = Tensor.full(gpu, DType.U8, 0xAB, rows * cols / 2), am = Tensor.full(gpu, DType.F32, Float.NaN, blocks);
        Tensor stats = Tensor.full(gpu, DType.F64, Double.NaN, 2);
        k.quantizeBlocks(w.to(gpu), packed, am);
        k.absmaxStats(am, stats);
        assertArrayEquals(amax, am.toFloatArray(), "amax, seed " + seed);
        double[] s = stats.toDoubleArray();
        assertEquals(sum, s[0], "absmax sum (exact at these magnitudes), seed " + seed);
        assertEquals(lowest, (int) s[1], "lowest set bit, seed " + seed);
        Nf4Weight ref = Nf4Weight.quantize("w", w);
        assertArrayEquals(ref.packed().toLongArray(), packed.toLongArray(), "packed codes, seed " + seed);
        Tensor qabs = Tensor.full(gpu, DType.U8, 0xCD, blocks), nabs = Tensor.full(gpu, DType.F32, Float.NaN, (int) ref.nestedAbsmax().numel());
        k.quantizeAbsmax(am, ref.offset(), ref.nestedCode().to(gpu), qabs, nabs);
        assertArrayEquals(ref.absmax().toLongArray(), qabs.toLongArray(), "absmax codes, seed " + seed);
        assertArrayEquals(ref.nestedAbsmax().toFloatArray(), nabs.toFloatArray(), "nested absmax, seed " + seed);
    }

    private static void assertSame(Nf4Weight want, Nf4Weight got, Device gpu, String what) {
        assertEquals(gpu, got.device(), what + ": the parts' device");
        assertEquals(want.rows(), got.rows(), what);
        assertEquals(want.cols(), got.cols(), what);
        assertEquals(want.dtype(), got.dtype(), what);
        assertEquals(Float.floatToIntBits(want.offset()), Float.floatToIntBits(got.offset()), what + ": offset " + want.offset() + " vs " + got.offset());
        assertArrayEquals(want.packed().toLongArray(), got.packed().toLongArray(), what + ": packed codes");
        assertArrayEquals(want.absmax().toLongArray(), got.absmax().toLongArray(), what + ": absmax codes");
        assertArrayEquals(want.nestedAbsmax().toFloatArray(), got.nestedAbsmax().toFloatArray(), what + ": nested absmax");
        assertArrayEquals(want.nestedCode().toFloatArray(), got.nestedCode().toFloatArray(), what + ": nested map");
        want.close();
        got.close();
    }
}

import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Generator;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The emulated nf4_quantize.cu (nf4_quantize_harness.cpp) against the Java host quantizer, Nf4Weight.quantize on the
 * CPU: every part byte for byte, on fresh random weights of several shapes and dtypes, rows of wide magnitudes (the host
 * sum path), a NaN and an infinity. Run by nf4_quantize.sh.
 */
public class Nf4QuantizeCheck {
    public static void main(String[] args) throws Exception {
        Path harness = Path.of(args[0]), tmp = Files.createTempDirectory("nf4q");
        long seed = System.nanoTime();
        int fails = 0;
        Object[][] cases = {
            {1, 64, DType.BF16, 0.02, 1}, {3, 192, DType.F32, 0.02, 1}, {7, 4160, DType.BF16, 0.02, 3}, {257, 64, DType.F16, 0.5, 2},
            {256, 64, DType.BF16, 0.02, 1}, {4, 8192, DType.F64, 0.03, 2}, {96, 2048, DType.BF16, 0.02, 4}, {64, 768, DType.F16, 0.01, 2},
            {33, 320, DType.F32, 3.0, 1}};
        for (Object[] c : cases) {
            int rows = (int) c[0], cols = (int) c[1];
            DType t = (DType) c[2];
            Tensor w = Tensor.randn(new Generator(seed++), DType.F32, rows, cols).mul((double) c[3]).to(t);
            fails += check(harness, tmp, w, (int) c[4], "[" + rows + ", " + cols + "] " + t + " ×" + c[3]);
        }
        float[] x = Tensor.randn(new Generator(seed++), DType.F32, 300, 128).toFloatArray();
        for (int r = 0; r < 300; r++) for (int k = 0; k < 128; k++) x[r * 128 + k] = Math.scalb(x[r * 128 + k], (r * 37) % 121 - 60);
        fails += check(harness, tmp, Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x.clone()), 300, 128), 2, "[300, 128] f32 rows ×2^-60..2^60");
        float[] y = Tensor.randn(new Generator(seed++), DType.F32, 8, 128).toFloatArray();
        y[300] = Float.POSITIVE_INFINITY;
        fails += check(harness, tmp, Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(y.clone()), 8, 128), 1, "[8, 128] f32 with an infinity");
        y[70] = Float.NaN;
        fails += check(harness, tmp, Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(y.clone()), 8, 128), 1, "[8, 128] f32 with a NaN and an infinity");
        float[] tiny = Tensor.randn(new Generator(seed++), DType.F32, 4, 128).toFloatArray();
        for (int i = 0; i < tiny.length; i++) tiny[i] = Math.scalb(tiny[i], i < 256 ? -135 : -20);   // subnormal blocks: the 1e-38 floor
        fails += check(harness, tmp, Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(tiny), 4, 128), 1, "[4, 128] f32 with subnormal blocks");
        fails += check(harness, tmp, ties(), 1, "[4, 128] f32 on the NF4 midpoints (ties)");
        System.out.println(fails == 0 ? "all ok" : fails + " FAILED");
        System.exit(fails == 0 ? 0 : 1);
    }

    /** Blocks whose absmax is 1 and whose other elements sit exactly on the f32 midpoints of the NF4 levels (ties go down). */
    static Tensor ties() {
        float[] x = new float[4 * 128];
        for (int i = 0; i < x.length; i++) {
            int k = i % 15;
            x[i] = i % 64 == 0 ? 1f : (Nf4Weight.CODE[k] + Nf4Weight.CODE[k + 1]) / 2;
        }
        return Tensor.fromHost(Device.cpu(), DType.F32, MemorySegment.ofArray(x), 4, 128);
    }

    private static int check(Path harness, Path tmp, Tensor w, int grid, String what) throws IOException, InterruptedException {
        Nf4Weight ref = Nf4Weight.quantize("w", w);
        Path in = tmp.resolve("in"), out = tmp.resolve("out");
        byte[] raw = w.toHost(Arena.ofAuto()).toArray(ValueLayout.JAVA_BYTE);
        ByteBuffer map = ByteBuffer.allocate(256 * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : Nf4Weight.dynamicMap()) map.putFloat(f);
        byte[] all = Arrays.copyOf(raw, raw.length + 1024);
        System.arraycopy(map.array(), 0, all, raw.length, 1024);
        Files.write(in, all);
        Process p = new ProcessBuilder(harness.toString(), w.dtype().lower(), "" + w.size(0), "" + w.size(1), "" + grid, in.toString(), out.toString())
                .inheritIO().start();
        if (p.waitFor() != 0) {
            System.out.printf("%-50s harness failed%n", what);
            return 1;
        }
        ByteBuffer got = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] packed = new byte[(int) ref.packed().numel()], qabs = new byte[(int) ref.absmax().numel()];
        got.get(packed).get(qabs);
        float[] nabs = new float[(int) ref.nestedAbsmax().numel()];
        for (int i = 0; i < nabs.length; i++) nabs[i] = got.getFloat();
        float offset = got.getFloat();
        boolean devicePath = got.get() == 1;
        String bad = !Arrays.equals(packed, ref.packed().toHost(Arena.ofAuto()).toArray(ValueLayout.JAVA_BYTE)) ? "packed codes"
                : !Arrays.equals(qabs, ref.absmax().toHost(Arena.ofAuto()).toArray(ValueLayout.JAVA_BYTE)) ? "absmax codes"
                : !Arrays.equals(nabs, ref.nestedAbsmax().toFloatArray()) ? "nested absmax"
                : Float.floatToIntBits(offset) != Float.floatToIntBits(ref.offset()) ? "offset " + offset + " vs " + ref.offset() : null;
        System.out.printf("%-50s %s (sum %s)%n", what, bad == null ? "bit-identical" : "DIFFERS: " + bad, devicePath ? "device" : "host");
        return bad == null ? 0 : 1;
    }
}

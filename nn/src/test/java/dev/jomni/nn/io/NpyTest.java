package dev.jomni.nn.io;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyTest {
    @TempDir Path dir;

    @Test
    void roundTripsEveryNumpyType() {
        float[] f = {1.5f, -2.25f, 3e-8f, Float.MAX_VALUE, -0f, 7f};
        var cases = new TensorData[] {
            TensorData.ofFloats(f, 2, 3),
            TensorData.ofDoubles(new double[] {Math.PI, -1e300, 0.1}, 3),
            TensorData.ofLongs(new long[] {Long.MIN_VALUE, -1, 0, 1, Long.MAX_VALUE, 42}, 3, 1, 2),
            TensorData.ofInts(new int[] {Integer.MIN_VALUE, 5, Integer.MAX_VALUE, -7}, 4),
            TensorData.ofF16(new float[] {0.5f, -65504f, 1f / 3}, 3),
            TensorData.ofBytes(StoredDType.U8, new long[] {4}, new byte[] {0, 1, (byte) 200, (byte) 255}),
            TensorData.ofBytes(StoredDType.BOOL, new long[] {2, 2}, new byte[] {0, 1, 1, 0}),
            TensorData.ofBytes(StoredDType.I8, new long[] {2}, new byte[] {-128, 127}),
            TensorData.ofBytes(StoredDType.I16, new long[] {1}, new byte[] {1, (byte) 0x80}),
        };
        for (int i = 0; i < cases.length; i++) {
            Path file = dir.resolve("a" + i + ".npy");
            Npy.write(file, cases[i]);
            var back = Npy.read(file);
            assertEquals(cases[i], back, "case " + cases[i]);
        }
    }

    @Test
    void accessorsConvertValues() {
        var bools = Npy.decode(npyBytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", new byte[] {1, 0, 1}), "x");
        assertArrayEquals(new long[] {1, 0, 1}, bools.toLongs());
        assertArrayEquals(new float[] {1, 0, 1}, bools.toFloats());
        var longs = TensorData.ofLongs(new long[] {3, -4}, 2);
        assertArrayEquals(new int[] {3, -4}, longs.toInts());
        assertArrayEquals(new float[] {3, -4}, longs.toFloats());
        var floats = TensorData.ofFloats(new float[] {0.5f}, 1);
        assertThrows(IllegalStateException.class, floats::toLongs, "floats are not silently truncated to longs");
        assertThrows(ArithmeticException.class, () -> TensorData.ofLongs(new long[] {1L << 40}, 1).toInts());
    }

    @Test
    void writesTheHeaderNumpyWrites() throws IOException {
        Path file = dir.resolve("h.npy");
        Npy.write(file, TensorData.ofFloats(new float[6], 2, 3));
        byte[] bytes = Files.readAllBytes(file);
        assertEquals((byte) 0x93, bytes[0]);
        assertEquals("NUMPY", new String(bytes, 1, 5, StandardCharsets.US_ASCII));
        assertEquals(1, bytes[6]);
        assertEquals(0, bytes[7]);
        int headerLength = ByteBuffer.wrap(bytes, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort() & 0xFFFF;
        assertEquals(0, (10 + headerLength) % 64, "data starts on a 64-byte boundary");
        String header = new String(bytes, 10, headerLength, StandardCharsets.US_ASCII);
        assertEquals("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", header.strip());
        assertTrue(header.endsWith("\n"));
        assertEquals(10 + headerLength + 24, bytes.length);

        Npy.write(file, TensorData.ofLongs(new long[] {9}, 1));
        assertTrue(new String(Files.readAllBytes(file), StandardCharsets.US_ASCII).contains("'shape': (1,), }"));
        Npy.write(file, TensorData.ofLongs(new long[] {9}));
        assertTrue(new String(Files.readAllBytes(file), StandardCharsets.US_ASCII).contains("'shape': (), }"));
        assertArrayEquals(new long[0], Npy.read(file).shape());
        assertArrayEquals(new long[] {9}, Npy.read(file).toLongs());
    }

    @Test
    void readsVersion2And3Headers() {
        byte[] data = new byte[8];
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.25f).putFloat(-3f);
        for (int version : new int[] {2, 3}) {
            var t = Npy.decode(npyBytes(version, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", data), "v" + version);
            assertArrayEquals(new long[] {1, 2}, t.shape());
            assertArrayEquals(new float[] {1.25f, -3f}, t.toFloats());
        }
    }

    @Test
    void refusesFortranOrderBigEndianAndUnknownTypesNamingTheFile() {
        var fortran = assertThrows(Npy.NpyException.class, () -> Npy.decode(
                npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new byte[16]), "f.npy"));
        assertTrue(fortran.getMessage().startsWith("f.npy: ") && fortran.getMessage().contains("fortran_order"), fortran.getMessage());
        var big = assertThrows(Npy.NpyException.class, () -> Npy.decode(
                npyBytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", new byte[8]), "b.npy"));
        assertTrue(big.getMessage().startsWith("b.npy: ") && big.getMessage().contains("big-endian"), big.getMessage());
        var complex = assertThrows(Npy.NpyException.class, () -> Npy.decode(
                npyBytes(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", new byte[16]), "c.npy"));
        assertTrue(complex.getMessage().contains("'<c8'"), complex.getMessage());
        var truncated = assertThrows(Npy.NpyException.class, () -> Npy.decode(
                npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", new byte[16]), "t.npy"));
        assertTrue(truncated.getMessage().contains("needs 24"), truncated.getMessage());
        var notNpy = assertThrows(Npy.NpyException.class, () -> Npy.decode(new byte[20], "z.npy"));
        assertTrue(notNpy.getMessage().startsWith("z.npy: "));
        var missing = assertThrows(Npy.NpyException.class, () -> Npy.read(dir.resolve("none.npy")));
        assertTrue(missing.getMessage().contains("none.npy"));
        assertThrows(Npy.NpyException.class, () -> Npy.write(dir.resolve("bf.npy"), TensorData.ofBf16(new float[2], 2)));
    }

    /** A .npy file built by hand, as NumPy lays it out, independent of {@link Npy#write}. */
    static byte[] npyBytes(int version, String dict, byte[] data) {
        int prefix = version == 1 ? 10 : 12;
        int total = (prefix + dict.length() + 1 + 63) / 64 * 64;
        var b = ByteBuffer.allocate(total + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) version).put((byte) 0);
        if (version == 1) b.putShort((short) (total - prefix)); else b.putInt(total - prefix);
        b.put(dict.getBytes(StandardCharsets.US_ASCII));
        while (b.position() < total - 1) b.put((byte) ' ');
        b.put((byte) '\n').put(data);
        return b.array();
    }
}

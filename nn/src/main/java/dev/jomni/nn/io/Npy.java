package dev.jomni.nn.io;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files (format spec: numpy.lib.format): the magic {@code \x93NUMPY}, a version
 * byte pair, a header length (2 bytes LE in 1.0, 4 bytes in 2.0/3.0), then an ASCII (3.0: UTF-8)
 * Python dict literal {@code {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }} padded with
 * spaces and a newline, then the raw elements.
 *
 * <p>Reads versions 1.0, 2.0 and 3.0; writes 1.0 with the header padded so the data starts at a
 * multiple of 64 bytes (as NumPy does). Element types: {@code <f2 <f4 <f8 <i1 <i2 <i4 <i8 |u1 |b1}
 * (the types of {@link StoredDType} except BF16, which NumPy cannot name), little-endian, C order.
 * Big-endian data, {@code fortran_order: True} and structured or object dtypes are refused with an
 * error naming the file. The whole array is read onto the heap, so at most 2 GiB per file.
 *
 * <p>{@code TensorData t = Npy.read(path); float[] v = t.toFloats(); long[] shape = t.shape();}
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("['\"]descr['\"]\\s*:\\s*['\"]([^'\"]*)['\"]");
    private static final Pattern FORTRAN = Pattern.compile("['\"]fortran_order['\"]\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("['\"]shape['\"]\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    public static TensorData read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new NpyException(file + ": no such .npy file");
        } catch (IOException | OutOfMemoryError e) {
            throw new NpyException(file + ": cannot read: " + e);
        }
        return decode(bytes, file.toString());
    }

    /** Decodes a whole .npy file held in memory; {@code source} names it in errors. */
    public static TensorData decode(byte[] bytes, String source) {
        var b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 10 || !ByteBuffer.wrap(bytes, 0, 6).equals(ByteBuffer.wrap(MAGIC)))
            throw new NpyException(source + ": not a .npy file (no \\x93NUMPY magic)");
        int major = bytes[6], minor = bytes[7];
        long headerLength;
        int headerStart;
        if (major == 1) {
            headerLength = b.getShort(8) & 0xFFFF;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) throw new NpyException(source + ": truncated header");
            headerLength = b.getInt(8) & 0xFFFFFFFFL;
            headerStart = 12;
        } else {
            throw new NpyException(source + ": unsupported .npy format version " + major + "." + minor + " (reads 1.0, 2.0, 3.0)");
        }
        if (headerStart + headerLength > bytes.length)
            throw new NpyException(source + ": header length " + headerLength + " exceeds the file's " + bytes.length + " bytes");
        String header = new String(bytes, headerStart, (int) headerLength,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);

        var descr = DESCR.matcher(header);
        if (!descr.find()) throw new NpyException(source + ": header has no simple 'descr' (structured dtypes are not supported): " + header.strip());
        var fortran = FORTRAN.matcher(header);
        if (!fortran.find()) throw new NpyException(source + ": header has no 'fortran_order': " + header.strip());
        var shapeMatch = SHAPE.matcher(header);
        if (!shapeMatch.find()) throw new NpyException(source + ": header has no 'shape' tuple: " + header.strip());

        StoredDType dtype = dtypeOf(descr.group(1), source);
        if (fortran.group(1).equals("True"))
            throw new NpyException(source + ": fortran_order is True; only C-order arrays are supported (save with np.ascontiguousarray)");
        long[] shape = parseShape(shapeMatch.group(1), source);

        long numel;
        try {
            numel = TensorData.numel(shape);
        } catch (ArithmeticException | IllegalArgumentException e) {
            throw new NpyException(source + ": bad shape " + shapeMatch.group(1));
        }
        long dataStart = headerStart + headerLength, need = numel * dtype.bytes();
        if (bytes.length - dataStart < need)
            throw new NpyException(source + ": " + descr.group(1) + " " + java.util.Arrays.toString(shape) + " needs " + need
                    + " data bytes, the file has " + (bytes.length - dataStart));
        var data = MemorySegment.ofArray(bytes).asSlice(dataStart, need).asReadOnly();
        return new TensorData(dtype, shape, data);
    }

    /** Writes format 1.0, replacing the file atomically. BF16 data has no NumPy type and is refused. */
    public static void write(Path file, TensorData t) {
        String descr = t.dtype().npyDescr();
        if (descr == null) throw new NpyException(file + ": NumPy has no " + t.dtype() + " type; convert to F32 first");
        var shape = new StringBuilder("(");
        for (long d : t.shape()) shape.append(d).append(", ");
        if (t.shape().length > 1) shape.setLength(shape.length() - 2);
        else if (t.shape().length == 1) shape.setLength(shape.length() - 1);
        shape.append(')');
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int total = 10 + dict.length() + 1;
        int padded = (total + 63) / 64 * 64;
        if (padded - 10 > 0xFFFF) throw new NpyException(file + ": header too long for format 1.0");
        var header = ByteBuffer.allocate(padded).order(ByteOrder.LITTLE_ENDIAN);
        header.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) (padded - 10));
        header.put(dict.getBytes(StandardCharsets.US_ASCII));
        while (header.position() < padded - 1) header.put((byte) ' ');
        header.put((byte) '\n').flip();
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            try (var ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(ch, header);
                writeSegment(ch, t.bytes());
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new NpyException(file + ": cannot write: " + e);
        }
    }

    static void writeSegment(FileChannel ch, MemorySegment data) throws IOException {
        long chunk = 1 << 26;
        for (long off = 0; off < data.byteSize(); off += chunk) {
            var slice = data.asSlice(off, Math.min(chunk, data.byteSize() - off));
            if (slice.isNative() || slice.isMapped()) writeFully(ch, slice.asByteBuffer());
            else writeFully(ch, ByteBuffer.wrap(slice.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
        }
    }

    static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    private static StoredDType dtypeOf(String descr, String source) {
        if (descr.length() >= 2 && descr.charAt(0) == '>' && !descr.endsWith("1"))
            throw new NpyException(source + ": big-endian dtype '" + descr + "' is not supported; save with "
                    + "arr.astype(arr.dtype.newbyteorder('<'))");
        String kind = descr.length() >= 2 && "<|=>".indexOf(descr.charAt(0)) >= 0 ? descr.substring(1) : descr;
        for (var t : StoredDType.values())
            if (t.npyDescr() != null && t.npyDescr().substring(1).equals(kind)) return t;
        throw new NpyException(source + ": unsupported dtype '" + descr + "' (supported: <f2 <f4 <f8 <i1 <i2 <i4 <i8 |u1 |b1)");
    }

    private static long[] parseShape(String tuple, String source) {
        var dims = new ArrayList<Long>();
        for (String part : tuple.split(",")) {
            String p = part.strip();
            if (p.isEmpty()) continue;
            if (p.endsWith("L")) p = p.substring(0, p.length() - 1);  // Python 2 longs
            try {
                dims.add(Long.parseLong(p));
            } catch (NumberFormatException e) {
                throw new NpyException(source + ": bad shape (" + tuple + ")");
            }
        }
        return dims.stream().mapToLong(Long::longValue).toArray();
    }

    /** A .npy file that cannot be read or written: the message names the file and what is wrong. */
    public static final class NpyException extends RuntimeException {
        NpyException(String message) { super(message); }
    }
}

package dev.jomni.cuda;

import java.util.Arrays;

/**
 * The 128-byte token that lets several processes form one NCCL communicator: rank 0 makes it
 * ({@link Nccl#uniqueId()}) and sends {@link #bytes()} to the others, which rebuild it with {@link #of}.
 */
public final class NcclUniqueId {
    private final byte[] bytes;

    private NcclUniqueId(byte[] bytes) {
        this.bytes = bytes;
    }

    public static NcclUniqueId of(byte[] bytes) {
        if (bytes.length != NcclLib.UNIQUE_ID_BYTES)
            throw new IllegalArgumentException("an NCCL unique id has " + NcclLib.UNIQUE_ID_BYTES + " bytes, not " + bytes.length);
        return new NcclUniqueId(bytes.clone());
    }

    public byte[] bytes() {
        return bytes.clone();
    }

    byte[] raw() {
        return bytes;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NcclUniqueId u && Arrays.equals(bytes, u.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }
}

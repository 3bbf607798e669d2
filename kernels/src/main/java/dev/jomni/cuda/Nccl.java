package dev.jomni.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * NCCL's process-wide calls: version, unique ids and group calls. Communicators are {@link NcclComm}.
 * Keep {@code NCCL_NVLS_ENABLE=0} in the environment on shared multi-GPU hosts (NVLink multicast).
 */
public final class Nccl {
    private Nccl() {}

    /** NCCL's version code, e.g. 22803 for 2.28.3. */
    public static int version() {
        Libraries.nccl();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_INT);
            NcclLib.call("ncclGetVersion", NcclLib.GET_VERSION, v);
            return v.get(JAVA_INT, 0);
        }
    }

    /** A fresh unique id, made by one rank and shared with the others before {@link NcclComm#initRank}. */
    public static NcclUniqueId uniqueId() {
        Libraries.nccl();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment id = arena.allocate(NcclLib.UNIQUE_ID);
            NcclLib.call("ncclGetUniqueId", NcclLib.GET_UNIQUE_ID, id);
            return NcclUniqueId.of(id.toArray(JAVA_BYTE));
        }
    }

    /** Starts a group: the collectives queued until {@link #groupEnd()} are launched together. */
    public static void groupStart() {
        Libraries.nccl();
        NcclLib.call("ncclGroupStart", NcclLib.GROUP_START);
    }

    public static void groupEnd() {
        NcclLib.call("ncclGroupEnd", NcclLib.GROUP_END);
    }

    /** Runs {@code body} between groupStart and groupEnd (needed when one thread drives several GPUs). */
    public static void group(Runnable body) {
        groupStart();
        try {
            body.run();
        } finally {
            groupEnd();
        }
    }
}

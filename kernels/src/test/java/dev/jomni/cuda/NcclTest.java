package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** NCCL on one GPU: a communicator of one rank, where every collective must copy its input through. */
@Tag("gpu")
class NcclTest {
    @Test
    void singleGpuCommunicatorAllReducesAndRunsGroupedCollectives() {
        CudaContext ctx = Gpu.context();
        int version = Nccl.version();
        System.out.println("NCCL version code " + version);
        assertTrue(version >= 20000, "NCCL version " + version);
        int n = 4099;
        long seed = Gpu.seed();
        float[] x = Gpu.uniform(new SplittableRandom(seed), n, -1f, 1f);
        float[] sum = new float[n], bcast = new float[n], gathered = new float[n], scattered = new float[n];
        List<NcclComm> comms = NcclComm.initAll(List.of(ctx));
        try (NcclComm comm = comms.getFirst(); Stream s = ctx.createStream(); DeviceBuffer in = ctx.allocate(4L * n);
             DeviceBuffer a = ctx.allocate(4L * n); DeviceBuffer b = ctx.allocate(4L * n); DeviceBuffer c = ctx.allocate(4L * n);
             DeviceBuffer d = ctx.allocate(4L * n)) {
            assertEquals(0, comm.rank());
            assertEquals(1, comm.size());
            in.copyFrom(x);
            for (DeviceBuffer o : List.of(a, b, c, d)) o.fill(0xFF);
            comm.allReduce(in, a, n, DataType.F32, ReduceOp.SUM, s);
            Nccl.group(() -> {
                comm.broadcast(in, b, n, DataType.F32, 0, s);
                comm.allGather(in, c, n, DataType.F32, s);
                comm.reduceScatter(in, d, n, DataType.F32, ReduceOp.MAX, s);
            });
            s.synchronize();
            a.copyTo(sum);
            b.copyTo(bcast);
            c.copyTo(gathered);
            d.copyTo(scattered);
        }
        assertArrayEquals(x, sum, "allReduce, seed " + seed);
        assertArrayEquals(x, bcast, "broadcast");
        assertArrayEquals(x, gathered, "allGather");
        assertArrayEquals(x, scattered, "reduceScatter");
    }

    @Test
    void uniqueIdFormsACommunicatorOfOneRank() {
        CudaContext ctx = Gpu.context();
        NcclUniqueId id = Nccl.uniqueId();
        assertNotEquals(NcclUniqueId.of(new byte[128]), id, "a unique id of all zeros");
        int n = 31;
        float[] x = Gpu.uniform(new SplittableRandom(Gpu.seed()), n, 1f, 2f), back = new float[n];
        try (NcclComm comm = NcclComm.initRank(ctx, 1, id, 0); Stream s = ctx.createStream(); DeviceBuffer buf = ctx.allocate(4L * n)) {
            buf.copyFrom(x);
            comm.allReduce(buf, buf, n, DataType.F32, ReduceOp.AVG, s);  // in place
            s.synchronize();
            buf.copyTo(back);
        }
        assertArrayEquals(x, back);
    }
}

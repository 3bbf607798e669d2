package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.npy;
import static dev.jomni.omni.model.ThinkerParityTest.tiny;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jomni.cuda.Cuda;
import dev.jomni.cuda.CudaBackend;
import dev.jomni.cuda.CudaDevice;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A thinker forward pass of the tiny fixture (text and audio) on CUDA waits for the device nowhere
 * before its logits are read: every host synchronisation in it is counted and traced to its call
 * site. The inputs (ids, masks, audio frames) are host tensors, so reading them is not a device sync.
 */
@Tag("gpu")
class ThinkerSyncTest {
    /**
     * Call sites allowed to synchronise still, each to be removed when its rewrite lands; empty, so the
     * test demands zero. (SparseMoe.forward read the router's expert ids on the host until the
     * moeExperts op moved routing to the device; Indexing's range checks read every index until
     * checkIndex ran on the device.)
     */
    static final Set<String> STILL_SYNCS = Set.of();

    @Test
    void aForwardPassWaitsForTheDeviceNowhereBeforeTheLogitsAreRead() {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        Device gpu = Device.cuda(0);
        CudaDevice device = CudaBackend.of(gpu);
        Thinker thinker = Thinker.load(tiny("model"), DType.BF16, gpu);
        Tensor inputIds = npy("input_ids.npy"), attentionMask = npy("attention_mask.npy");
        var audio = Thinker.Audio.of(npy("input_features.npy"), npy("feature_attention_mask.npy"));
        try (var g = Autograd.noGrad()) {
            thinker.forward(inputIds, attentionMask, audio, null).logits().toFloatArray();   // warm: kernels loaded, caches filled
            device.synchronize();
            device.traceSyncs(true);
            long before = device.hostSyncs();
            Thinker.Output out = thinker.forward(inputIds, attentionMask, audio, null);
            long during = device.hostSyncs() - before;
            List<String> sites = device.syncSites();
            device.traceSyncs(false);
            float[] logits = out.logits().toFloatArray();
            assertEquals(during + 1, device.hostSyncs() - before, "reading the logits is one synchronisation");
            assertTrue(logits.length > 0 && Float.isFinite(logits[0]), "logits read");
            System.out.println("thinker forward on " + gpu + ": " + during + " host synchronisations before the logits, at " + sites);
            assertEquals(during, sites.size(), "every synchronisation traced");
            List<String> unexpected = sites.stream().filter(s -> !STILL_SYNCS.contains(s.substring(0, s.lastIndexOf(':')))).toList();
            assertTrue(unexpected.isEmpty(), "host synchronisations in a forward pass at " + unexpected + " (all: " + sites + ")");
            if (STILL_SYNCS.isEmpty()) assertEquals(0, during, "host synchronisations before the logits: " + sites);
        }
    }
}

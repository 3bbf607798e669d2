package dev.jomni.cuda;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class LibrariesTest {
    @Test
    void missingLibraryErrorNamesItAndEveryPlaceLooked() {
        var e = assertThrows(CudaException.class, () -> Libraries.open("test library", "libjomni-absent.so.7"));
        String m = e.getMessage();
        assertTrue(m.contains("test library library libjomni-absent.so.7 not found"), m);
        assertTrue(m.contains("loader path"), m);
        for (Path dir : Libraries.searchFolders()) assertTrue(m.contains(dir.resolve("libjomni-absent.so.7").toString()), dir + " missing from: " + m);
        assertTrue(m.contains("/usr/local/cuda/targets/x86_64-linux/lib"), m);
        assertTrue(m.contains("/usr/lib/x86_64-linux-gnu"), m);
    }

    @Test
    void withoutADriverCudaIsUnavailableAndSaysWhy() {
        assumeFalse(Cuda.available(), "this machine has a CUDA driver and GPU");
        String why = Cuda.unavailableReason();
        assertTrue(why.contains("libcuda.so.1") || why.contains("CUDA_ERROR") || why.contains("no GPU"), why);
        var e = assertThrows(CudaException.class, () -> Cuda.context(0));
        assertTrue(e.getMessage().equals(why), e.getMessage());
    }
}

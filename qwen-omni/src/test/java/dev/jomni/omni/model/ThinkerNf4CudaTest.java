package dev.jomni.omni.model;

import static dev.jomni.omni.model.ThinkerParityTest.relError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jomni.cuda.Cuda;
import dev.jomni.nn.Parameter;
import dev.jomni.tensor.Autograd;
import dev.jomni.tensor.DType;
import dev.jomni.tensor.Device;
import dev.jomni.tensor.Tensor;
import dev.jomni.tensor.ops.Nf4Weight;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * use_4bit on CUDA: the weights are quantized on the GPU (the same bytes as the host quantizer's on the CPU), and the
 * logits match the CPU backend's NF4 thinker in the same dtype (the tiny config with I = 64, ThinkerNf4Test's); so do
 * RandomWeights.buildNf4 and omni quantize --device cuda.
 */
@Tag("gpu")
class ThinkerNf4CudaTest {
    @AfterEach
    void hostQuantizerAgain() { System.clearProperty(Nf4Weight.DEVICE_QUANTIZE); }

    /** The device quantizer, off by default (Nf4Weight.DEVICE_QUANTIZE), for the tests of it. */
    private static void quantizeOnTheDevice() { System.setProperty(Nf4Weight.DEVICE_QUANTIZE, "true"); }

    @ParameterizedTest
    @CsvSource({"BF16, 2e-2", "F32, 1e-4"})
    void nf4ThinkerOnCudaMatchesTheCpu(DType dtype, double bound, @TempDir Path dir) throws Exception {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        Path model = ThinkerNf4Test.aligned(dir.resolve("aligned"), false);
        Device gpu = Device.cuda(0);
        Thinker cuda = Thinker.load(model, dtype, gpu, true), cpu = Thinker.load(model, dtype, Device.cpu(), true);
        int nf4 = 0;
        for (var e : cuda.parameters().entrySet()) {
            Parameter p = e.getValue(), c = cpu.parameters().get(e.getKey());
            assertEquals(c.isNf4(), p.isNf4(), e.getKey());
            assertEquals(gpu, p.device(), e.getKey());
            if (!p.isNf4()) continue;
            nf4++;
            ThinkerNf4Test.assertNf4Equal(e.getKey(), c.nf4(), p.nf4().to(Device.cpu()));
        }
        assertEquals(12, nf4);
        Tensor ids = Tensor.of(new long[] {5, 17, 300, 42, 9, 990, 77, 3, 512, 64, 128, 900, 33, 2, 700, 45}, 2, 8);
        Tensor mask = Tensor.full(Device.cpu(), DType.I64, 1, 2, 8);
        try (var g = Autograd.noGrad()) {
            float[] got = cuda.forward(ids, mask, null, null).logits().toFloatArray(), want = cpu.forward(ids, mask, null, null).logits().toFloatArray();
            double e = relError(got, want);
            System.out.printf("nf4 thinker %s on CUDA vs CPU: logits relative error %.3g%n", dtype, e);
            assertTrue(e < bound, dtype + " logits relative error " + e + " (bound " + bound + ")");
        }
    }

    /** RandomWeights.buildNf4 on CUDA (the device quantizer) holds the host quantizer's bytes, on the GPU. */
    @Test
    void randomWeightsQuantizedOnCudaAreTheHostsBytes(@TempDir Path dir) throws Exception {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        quantizeOnTheDevice();
        Path config = ThinkerNf4Test.aligned(dir.resolve("aligned"), false).resolve("config.json");
        Device gpu = Device.cuda(0);
        var cuda = RandomWeights.buildNf4(config, 11, DType.BF16, gpu);
        var cpu = RandomWeights.buildNf4(config, 11, DType.BF16, Device.cpu());
        assertEquals(12, cuda.nf4Weights());
        for (var e : cuda.thinker().parameters().entrySet()) {
            Parameter p = e.getValue(), c = cpu.thinker().parameters().get(e.getKey());
            assertEquals(c.isNf4(), p.isNf4(), e.getKey());
            assertEquals(gpu, p.device(), e.getKey());
            if (p.isNf4()) ThinkerNf4Test.assertNf4Equal(e.getKey(), c.nf4(), p.nf4().to(Device.cpu()));
        }
    }

    /** omni quantize --device cuda: the files are byte for byte those the host quantizer writes. */
    @Test
    void bnbCheckpointQuantizedOnCudaIsTheHostsFiles(@TempDir Path dir) throws Exception {
        assumeTrue(Cuda.available(), () -> "no CUDA driver or GPU: " + Cuda.unavailableReason());
        quantizeOnTheDevice();
        Path model = ThinkerNf4Test.aligned(dir.resolve("aligned"), false);
        var host = Bnb4bitCheckpoint.write(model, dir.resolve("host"), 200_000, Device.cpu());
        var cuda = Bnb4bitCheckpoint.write(model, dir.resolve("cuda"), 200_000, Device.cuda(0));
        assertEquals(12, cuda.nf4Weights());
        assertEquals(host.files().size(), cuda.files().size());
        for (int i = 0; i < host.files().size(); i++)
            assertTrue(java.util.Arrays.equals(Files.readAllBytes(host.files().get(i)), Files.readAllBytes(cuda.files().get(i))),
                    host.files().get(i).getFileName() + " differs");
    }
}

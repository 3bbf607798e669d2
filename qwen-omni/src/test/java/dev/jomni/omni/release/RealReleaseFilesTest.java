package dev.jomni.omni.release;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jomni.nn.io.SafeTensors;
import dev.jomni.nn.io.SafeTensors.SafeTensorsException;
import dev.jomni.omni.audio.LogMel;
import dev.jomni.omni.config.PreprocessorConfig;
import dev.jomni.omni.config.ThinkerConfig;
import dev.jomni.omni.model.Thinker;
import dev.jomni.omni.text.ChatTemplate;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real Qwen3-Omni-30B-A3B release files (no weights; {@code qwen3-omni-real/README.md} says where
 * they come from and how they were checked), read by jomni's own loaders.
 */
class RealReleaseFilesTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path instruct() {
        try {
            return Path.of(RealReleaseFilesTest.class.getResource("/qwen3-omni-real/Qwen3-Omni-30B-A3B-Instruct").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void configValuesComeThrough() {
        ThinkerConfig c = ThinkerConfig.load(instruct());
        var t = c.text();
        assertEquals(152064, t.vocabSize());
        assertEquals(List.of(24, 20, 20), t.mropeSection());
        assertEquals(1_000_000.0, t.ropeTheta());
        assertEquals(2048, t.hiddenSize());
        assertEquals(48, t.numHiddenLayers());
        assertEquals(32, t.numAttentionHeads());
        assertEquals(4, t.numKeyValueHeads());
        assertEquals(128, t.headDim());                   // q/o width 4096 ≠ hidden 2048
        assertEquals(128, t.numExperts());
        assertEquals(8, t.numExpertsPerTok());
        assertEquals(768, t.moeIntermediateSize());
        assertTrue(t.normTopkProb());
        assertEquals(1, t.decoderSparseStep());
        assertEquals(List.of(), t.mlpOnlyLayers());
        assertEquals(1e-6, t.rmsNormEps());
        assertEquals(0.001, t.routerAuxLossCoef());
        for (int n = 0; n < 48; n++) assertTrue(t.isMoeLayer(n), "layer " + n);
        assertFalse(c.tieWordEmbeddings());
        assertEquals(151675, c.audioTokenId());
        assertEquals(151669, c.audioStartTokenId());
        assertEquals(151670, c.audioEndTokenId());
        assertEquals(Set.of(151655, 151656, 151652, 151653), c.visionTokenIds());
        var a = c.audio();
        assertEquals(128, a.numMelBins());
        assertEquals(1280, a.dModel());
        assertEquals(32, a.encoderLayers());
        assertEquals(20, a.encoderAttentionHeads());
        assertEquals(5120, a.encoderFfnDim());
        assertEquals(480, a.downsampleHiddenSize());
        assertEquals(50, a.nWindow());
        assertEquals(800, a.nWindowInfer());
        assertEquals(2048, a.outputDim());
        assertEquals(500, a.convChunksize());
        assertEquals(1500, a.maxSourcePositions());
    }

    /**
     * The index's 28,010 names: the thinker's module tree (built from the real config; parameters are
     * slots, so nothing is allocated) expects exactly its {@code thinker.*} tensors except
     * {@code thinker.visual.*}, with the 128 per-expert tensors of a layer stacked as jomni holds them.
     * Skipped by name, as {@link Thinker#load} skips them: {@code thinker.visual.} (351, the vision
     * tower), {@code talker.} (8,037) and {@code code2wav.} (230), the speech output.
     */
    @Test
    void thinkerModuleTreeExpectsExactlyTheIndexsThinkerTensors() throws IOException {
        JsonNode weightMap;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(instruct().resolve("model.safetensors.index.json.gz")))) {
            weightMap = JSON.readTree(in).get("weight_map");
        }
        var skipped = new TreeMap<String, Integer>();
        var expected = new TreeSet<String>();
        var experts = new TreeMap<String, Set<String>>();
        var expert = Pattern.compile("(thinker\\.model\\.layers\\.\\d+\\.mlp\\.experts)\\.(\\d+)\\.(gate|up|down)_proj\\.weight");
        int total = 0;
        for (var names = weightMap.fieldNames(); names.hasNext(); total++) {
            String name = names.next();
            String skip = List.of("thinker.visual.", "talker.", "code2wav.").stream().filter(name::startsWith).findFirst().orElse(null);
            if (skip != null) {
                skipped.merge(skip, 1, Integer::sum);
                continue;
            }
            assertTrue(name.startsWith("thinker."), name);
            var m = expert.matcher(name);
            if (m.matches()) experts.computeIfAbsent(m.group(1), k -> new TreeSet<>()).add(m.group(2) + "." + m.group(3));
            else expected.add(name);
        }
        assertEquals(28_010, total);
        assertEquals(Map.of("thinker.visual.", 351, "talker.", 8_037, "code2wav.", 230), skipped);
        assertEquals(48, experts.size());
        for (var e : experts.entrySet()) {
            assertEquals(128 * 3, e.getValue().size(), e.getKey());
            expected.add(e.getKey() + ".gate_up_proj");
            expected.add(e.getKey() + ".down_proj");
        }
        var thinker = new Thinker(ThinkerConfig.load(instruct()));
        var ours = new TreeSet<String>();
        thinker.parameters().keySet().forEach(n -> ours.add("thinker." + n));
        assertEquals(expected, ours);
        // the stacked experts' shapes from the config: gate_up [E, 2·I, H], down [E, H, I]
        var p = thinker.parameters();
        assertEquals(List.of(128, 2 * 768, 2048), shape(p.get("model.layers.0.mlp.experts.gate_up_proj")));
        assertEquals(List.of(128, 2048, 768), shape(p.get("model.layers.47.mlp.experts.down_proj")));
        assertEquals(List.of(152064, 2048), shape(p.get("model.embed_tokens.weight")));
        assertEquals(List.of(32 * 128, 2048), shape(p.get("model.layers.0.self_attn.q_proj.weight")));
        assertEquals(List.of(4 * 128, 2048), shape(p.get("model.layers.0.self_attn.k_proj.weight")));
    }

    private static List<Integer> shape(dev.jomni.nn.Parameter p) {
        return java.util.Arrays.stream(p.shape()).boxed().toList();
    }

    /** The index parses; without the shards it is refused, naming the first shard it lists (code2wav's, listed first) and its count. */
    @Test
    void theIndexWithoutItsShardsIsRefusedNamingAMissingShard(@TempDir Path dir) throws IOException {
        Path index = dir.resolve(SafeTensors.INDEX_FILE);
        try (InputStream in = new GZIPInputStream(Files.newInputStream(instruct().resolve("model.safetensors.index.json.gz")))) {
            Files.copy(in, index);
        }
        var e = assertThrows(SafeTensorsException.class, () -> SafeTensors.open(dir));
        assertTrue(e.getMessage().endsWith("model-00015-of-00015.safetensors: missing shard; model.safetensors.index.json maps "
                + "259 tensors to it, e.g. code2wav.code_embedding.weight"), e.getMessage());
    }

    /**
     * preprocessor_config.json has no {@code chunk_length}, so transformers' WhisperFeatureExtractor
     * keeps its 30 s default and recomputes n_samples = 480000 and nb_max_frames = 3000 (the file's
     * 4800000 and 30000 are overwritten): the same extractor as the tiny fixture's, which says
     * chunk_length 30 and n_samples 480000 outright, and whose features LogMelTest checks against
     * transformers. Image-processor keys in the same file are ignored.
     */
    @Test
    void preprocessorConfigGivesTheFeatureExtractorTheFixturesGoldensWereMadeWith() {
        var audio = ThinkerConfig.load(instruct()).audio();
        var real = PreprocessorConfig.load(instruct(), audio);
        assertEquals(new PreprocessorConfig(128, 16000, 400, 160), real);
        Path tiny;
        try {
            tiny = Path.of(RealReleaseFilesTest.class.getResource("/tiny/model/preprocessor_config.json").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        assertEquals(real, PreprocessorConfig.load(tiny, audio));
    }

    /**
     * Longer audio: Qwen3OmniMoeProcessor calls the extractor with padding=True, truncation=False (its
     * audio_kwargs defaults), so the 30 s chunk_length neither truncates nor pads: a 35 s clip gives
     * ⌊L/160⌋ = 3500 frames, all valid, as jomni computes them. (A bare WhisperFeatureExtractor call,
     * padding="max_length" and truncation=True, would cut it to 3000 frames; the model never sees that.)
     */
    @Test
    void audioLongerThan30SecondsIsNeitherTruncatedNorPadded() {
        var cfg = PreprocessorConfig.load(instruct(), ThinkerConfig.load(instruct()).audio());
        var random = new Random(35);
        float[] clip = new float[35 * 16000 + 77];
        for (int i = 0; i < clip.length; i++) clip[i] = (float) (0.1 * random.nextGaussian());
        var batch = LogMel.of(cfg).batch(List.of(clip));
        assertEquals(clip.length / 160, batch.frames());
        assertEquals(3500, batch.validFrames()[0]);
        assertEquals(128, batch.melBins());
    }

    /** tokenizer_config.json's special tokens and chat_template.json's template, as the chat template loader reads them. */
    @Test
    void chatTemplateAndSpecialTokensLoad() throws IOException {
        var template = ChatTemplate.load(instruct());
        assertEquals(instruct().resolve("chat_template.json").toString(), template.origin());
        assertEquals(ChatTemplate.qwen3Omni().source(), template.source());   // the bundled default is this release's
        assertEquals("<|audio_pad|>", template.namedToken("audio_token").orElseThrow());
        assertEquals("<|audio_start|>", template.namedToken("audio_bos_token").orElseThrow());
        assertEquals("<|audio_end|>", template.namedToken("audio_eos_token").orElseThrow());
        assertEquals("<|im_end|>", template.namedToken("eos_token").orElseThrow());
        assertEquals("<|endoftext|>", template.namedToken("pad_token").orElseThrow());
        assertTrue(template.namedToken("bos_token").isEmpty());              // null in the file: not a template variable
        Path thinking = instruct().resolveSibling("Qwen3-Omni-30B-A3B-Thinking");
        var thinkingTemplate = ChatTemplate.load(thinking);
        assertEquals(thinking.resolve("chat_template.json").toString(), thinkingTemplate.origin());
        assertTrue(thinkingTemplate.source().length() == 5715 && !thinkingTemplate.source().equals(template.source()));
    }
}

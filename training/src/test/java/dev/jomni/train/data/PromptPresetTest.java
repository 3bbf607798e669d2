package dev.jomni.train.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.train.Fixtures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The presets against the original's text. The SHA-256 values were computed with Python from the
 * original sources ({@code rest/generate.py} {@code SYSTEM_PROMPT} and its instruction block,
 * {@code rest/train.py}'s system text, {@code infer_vllm_baseline.py} {@code V12_SYSTEM_PROMPT} and
 * {@code BASELINE_USER_SUFFIX}); the expected user texts are written out by hand from those sources.
 */
class PromptPresetTest {
    @TempDir Path dir;
    Map<String, AudioQa> mmar, skills;

    @BeforeEach
    void load() throws IOException {
        mmar = Dataset.load(Fixtures.mmar(dir.resolve("mmar"))).byId();
        skills = Dataset.load(Fixtures.audioSkills(dir.resolve("skills"), "audioskills.json")).byId();
    }

    static String sha256(String s) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void presetTextsAreByteExactCopiesOfTheOriginal() throws NoSuchAlgorithmException {
        assertEquals("5a9430af89e928903193268787e8b8eabd8f6ab61478cee5b507fd4b1d7fac80", sha256(PromptPreset.REST_SYSTEM));
        assertEquals("1e152b8f8d7fff2d722c9d490d0c53464742455870b17877ec209309348e361c", sha256(PromptPreset.REST_INSTRUCTIONS));
        assertEquals("143a923c139c8339217c72cbb7f842199b895199f02c4240a1bec05c58b8ff04", sha256(PromptPreset.REST_SFT_SYSTEM));
        assertEquals("ca277a9af3c9125adc8e2f0803cc0d539e9829b8915dc4a7166172aff2efabf8", sha256(PromptPreset.MMAR_BASELINE_SUFFIX));
        assertEquals("78c982ad52d62be00a8f4eba9b4bf3bfdd6d1631e3ee11eee1d6a8b9cddbb8ee", sha256(PromptPreset.V12_SYSTEM));
    }

    @Test
    void restPresetOnASeedRecordIsTheCleanedQuestionThenTheInstructionBlock() {
        ChatPrompt p = PromptPreset.REST.build(skills.get("countingqa_1024"));
        assertTrue(p.system().startsWith("You are Qwen, a virtual human developed by the Qwen Team"));
        assertEquals("How many times does the dog bark in the audio?\n\nChoose the correct option:\n(A) Two times\n"
                + "(B) Four times\n(C) Three times\n(D) Once\n\nIMPORTANT INSTRUCTIONS:\n"
                + "1. Think step-by-step and analyze the audio carefully in <think>...</think> tags.\n"
                + "2. Your answer must be 100% correct - this is a critical evaluation.\n"
                + "3. After </think>, you MUST output your final answer in this EXACT format:\n"
                + "   ANSWER: <full answer text from the choices>\n\n"
                + "Example: If the correct choice is '(A) Bell ringing', output:\nANSWER: Bell ringing", p.userText());
    }

    @Test
    void restSftPresetIsTheHelpfulAssistantSystemAndTheBareQuestion() {
        ChatPrompt p = PromptPreset.REST_SFT.build(skills.get("tacos_5"));
        assertEquals("You are a helpful assistant that analyzes audio carefully. Think step by step before giving your final answer.",
                p.system());
        assertEquals("Which sound comes first?\n\nChoose the correct option:\n(A) Door slam\n(B) Footsteps\n(C) Phone ringing\n"
                + "(D) Dog barking", p.userText());
    }

    @Test
    void mmarBaselineHasNoSystemTurnAndKeepsTheRawQuestion() {
        ChatPrompt p = PromptPreset.MMAR_BASELINE.build(mmar.get("BV1o64y1G7p2_00-00-12_00-00-31"));
        assertEquals("", p.system());
        assertEquals("What type of vehicle is most likely in this audio segment?\n\n\nProvided choices:\nOn a plane\nOn a ship\n"
                + "In a car\nOn a train\n\nIMPORTANT: You MUST think step-by-step and analyze the audio carefully. "
                + "Your answer must be 100% correct - this is a critical evaluation and incorrect answers are unacceptable. "
                + "Take your time to reason through all the audio details before selecting your final answer. "
                + "Your final answer MUST be exactly one of the provided choices.", p.userText());
    }

    @Test
    void v12ListsTheChoicesAsDashedLinesThenTheFormatReminder() {
        ChatPrompt p = PromptPreset.V12.build(mmar.get("f0VchKwpMAk_00-11-10_00-11-30"));
        assertTrue(p.system().startsWith("You are an expert audio analyst.\n\nREASONING FORMAT \u2014 structure"));
        assertEquals("Determine what is producing the sound in the audio\n\nChoices:\n- Owl\n- Robot\n- Rooster\n- Parrot\n\n"
                + "Structure your reasoning as: HEARD \u2192 ANALYSIS \u2192 ANSWER. Be specific and concise. Do not repeat yourself.\n"
                + "Your visible response must be ONLY:\nANSWER: [exact choice text]", p.userText());
    }

    @Test
    void presetsThatListChoicesCutASeedQuestionsOwnOptionBlock() {
        ChatPrompt p = PromptPreset.V12.build(skills.get("countingqa_1024"));
        assertTrue(p.userText().startsWith("How many times does the dog bark in the audio?\n\nChoices:\n- Two times\n- Four times\n"),
                p.userText());
        assertEquals(1, p.userText().split("Two times", -1).length - 1, "each option is listed once");
    }

    @Test
    void restPresetOnAnMmarRecordAppendsTheOptionsInTheAudioSkillsLayout() {
        ChatPrompt p = PromptPreset.REST.build(mmar.get("f0VchKwpMAk_00-11-10_00-11-30"));
        assertTrue(p.userText().startsWith("Determine what is producing the sound in the audio\n\nChoose the correct option:\n"
                + "(A) Owl\n(B) Robot\n(C) Rooster\n(D) Parrot\n\nIMPORTANT INSTRUCTIONS:\n"), p.userText());
    }

    @Test
    void oneDefaultPresetAndIdsRoundTrip() {
        assertSame(PromptPreset.REST, PromptPreset.DEFAULT);
        for (PromptPreset p : PromptPreset.values()) assertSame(p, PromptPreset.byId(p.id()));
        var e = assertThrows(IllegalArgumentException.class, () -> PromptPreset.byId("v8"));
        assertTrue(e.getMessage().contains("rest, rest-sft, mmar-baseline, v12"), e.getMessage());
    }

    @Test
    void chatMlRendersSystemUserWithAudioThenTheAssistantPrompt() {
        var p = new ChatPrompt(PromptPreset.REST_SFT, "S", "Q");
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|>Q<|im_end|>\n"
                + "<|im_start|>assistant\n", p.chatMl());
        assertEquals("<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|>Q<|im_end|>\n<|im_start|>assistant\n",
                new ChatPrompt(PromptPreset.MMAR_BASELINE, "", "Q").chatMl());
    }

    @Test
    void sftTextKeepsTheThinkBlockAndEndsTheTurn() {
        AudioQa q = skills.get("3Rz18q3p-zY_00-00-00_00-00-21");
        SftExample ex = SftExample.of(q, PromptPreset.DEFAULT);
        assertEquals(PromptPreset.DEFAULT.build(q).chatMl(), ex.promptText());
        assertEquals(ex.promptText() + "<think>\nThe speaker repeats 'uh' and restarts the name several times.\n</think>\n\n"
                + "ANSWER: Stuttering<|im_end|>\n", ex.text());
        assertEquals("<think>\nI hear it.\n</think>\n\nANSWER: Dog", SftExample.response("I hear it.", "Dog"));
        assertThrows(IllegalArgumentException.class, () -> SftExample.of(skills.get("tacos_5"), PromptPreset.DEFAULT));
    }
}

package dev.jomni.train.data;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The original project's prompts, byte-exact, by name. One preset serves both generation and SFT
 * ({@link #DEFAULT}); the original generated under {@link #REST} and trained under {@link #REST_SFT},
 * so its model learned to answer a prompt it was never asked. Outputs record the preset's {@link #id()}.
 *
 * <p>Which question text each preset uses, so that each is byte-exact where the original used it:
 * {@link #REST} and {@link #REST_SFT} take {@link AudioQa#cleanQuestion()} (as {@code rest/generate.py}
 * and {@code rest/train.py}), which lists the options in seed records; for a record whose question does
 * not (MMAR), {@code \n\nChoose the correct option:\n(A) …} is appended in the AudioSkills layout.
 * {@link #MMAR_BASELINE} and {@link #V12} take the raw {@link AudioQa#question()} and list the choices
 * themselves (as the MMAR scripts); for a seed record the question's own option block is cut first
 * ({@code Choices#stem}), so the options are not listed twice.
 */
public enum PromptPreset {
    /** {@code rest/generate.py}: the "virtual human" system text, question + instruction block. The default. */
    REST("rest"),
    /** {@code rest/train.py}, {@code rest/evaluate.py}, {@code infer_rest_with_prompts.py basic}: bare question. */
    REST_SFT("rest-sft"),
    /** {@code infer_single_model_baseline.py}, {@code infer_vllm_baseline.py baseline}: no system turn. */
    MMAR_BASELINE("mmar-baseline"),
    /** {@code infer_vllm_baseline.py v12}, the submitted prompt (72.0 % on MMAR in the original's README). */
    V12("v12"),
    /**
     * jomni's, not the original's: the bare question (choices included), no system turn. For the embedded demo, whose
     * tiny model reads a byte-level tokenizer: every byte of system text is a token the model pays for at every step.
     */
    BARE("bare");

    /** The preset generation and training both use unless told otherwise. */
    public static final PromptPreset DEFAULT = REST;

    static final String REST_SYSTEM = """
            You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual inputs, as well as generating text and speech.

            You are an expert at analyzing audio content and answering questions about what you hear. You have exceptional abilities in:
            - Counting sounds, events, and occurrences in audio
            - Identifying different sound sources and their characteristics
            - Understanding temporal relationships and sequences in audio
            - Detecting patterns and anomalies in audio content

            When answering questions:
            1. Listen to the audio carefully and thoroughly
            2. Think step-by-step about what you hear
            3. Consider all relevant audio details before answering
            4. Provide your reasoning in <think>...</think> tags
            5. After </think>, state your final answer in this EXACT format:
               ANSWER: <full answer text from the choices>

            Example format:
            <think>I hear a dog barking followed by a cat meowing...</think>
            ANSWER: Dog barking""";

    static final String REST_INSTRUCTIONS = "\n\nIMPORTANT INSTRUCTIONS:"
            + "\n1. Think step-by-step and analyze the audio carefully in <think>...</think> tags."
            + "\n2. Your answer must be 100% correct - this is a critical evaluation."
            + "\n3. After </think>, you MUST output your final answer in this EXACT format:"
            + "\n   ANSWER: <full answer text from the choices>"
            + "\n\nExample: If the correct choice is '(A) Bell ringing', output:"
            + "\nANSWER: Bell ringing";

    static final String REST_SFT_SYSTEM =
            "You are a helpful assistant that analyzes audio carefully. Think step by step before giving your final answer.";

    static final String MMAR_BASELINE_SUFFIX = "\n\nIMPORTANT: You MUST think step-by-step and analyze the audio carefully. "
            + "Your answer must be 100% correct - this is a critical evaluation and incorrect answers are unacceptable. "
            + "Take your time to reason through all the audio details before selecting your final answer. "
            + "Your final answer MUST be exactly one of the provided choices.";

    static final String V12_SYSTEM = """
            You are an expert audio analyst.

            REASONING FORMAT \u2014 structure your thinking as follows:
            1. HEARD: Describe exactly what you hear \u2014 sounds, speech, music, tone, background noise. Be specific (e.g., "a male voice says 'come in'" not "someone speaks").
            2. ANALYSIS: Connect your observations to the question. Evaluate each choice against the evidence. Eliminate choices that contradict what you heard.
            3. ANSWER: State which choice best fits and why in one sentence.

            RULES:
            - Be specific: cite exact sounds, words, or musical elements you hear.
            - Be concise: state each point once. Do NOT repeat, revise, or second-guess yourself.
            - Counting: number each event as you hear it (1, 2, 3...). Report your count once.
            - Emotions: judge by tone, not words. Sarcasm and frustration are common.
            - Context: infer from conversational cues \u2014 people often speak indirectly.
            - Commit to your analysis. Do NOT loop back with "Wait" or "Actually".

            OUTPUT: After thinking, respond with exactly one line:
            ANSWER: [exact choice text]""";

    static final String V12_USER_SUFFIX = "\n\nStructure your reasoning as: HEARD \u2192 ANALYSIS \u2192 ANSWER. Be specific and concise."
            + " Do not repeat yourself.\nYour visible response must be ONLY:\nANSWER: [exact choice text]";

    private final String id;

    PromptPreset(String id) { this.id = id; }

    /** The name used on the command line and in output metadata. */
    public String id() { return id; }

    /** The preset called {@code id} ({@code rest}, {@code rest-sft}, {@code mmar-baseline}, {@code v12}, {@code bare}). */
    public static PromptPreset byId(String id) {
        for (PromptPreset p : values()) if (p.id.equals(id)) return p;
        throw new IllegalArgumentException("unknown prompt preset '" + id + "'; known: "
                + Arrays.stream(values()).map(PromptPreset::id).collect(Collectors.joining(", ")));
    }

    /** The system text and the user turn's text for {@code item}; the audio precedes the text in the user turn. */
    public ChatPrompt build(AudioQa item) {
        return switch (this) {
            case REST -> new ChatPrompt(this, REST_SYSTEM, withListedChoices(item) + REST_INSTRUCTIONS);
            case REST_SFT -> new ChatPrompt(this, REST_SFT_SYSTEM, withListedChoices(item));
            case BARE -> new ChatPrompt(this, "", withListedChoices(item));
            case MMAR_BASELINE -> new ChatPrompt(this, "", stemForListing(item) + "\n\nProvided choices:\n"
                    + String.join("\n", item.choices()) + MMAR_BASELINE_SUFFIX);
            case V12 -> {
                var sb = new StringBuilder(stemForListing(item)).append("\n\nChoices:");
                for (String c : item.choices()) sb.append("\n- ").append(c);
                yield new ChatPrompt(this, V12_SYSTEM, sb.append(V12_USER_SUFFIX).toString());
            }
        };
    }

    @Override
    public String toString() { return id; }

    private static String withListedChoices(AudioQa item) {
        String q = item.cleanQuestion();
        return item.choicesInQuestion() ? q : q + "\n\nChoose the correct option:\n" + Choices.lettered(item.choices());
    }

    private static String stemForListing(AudioQa item) {
        return item.choicesInQuestion() ? Choices.stem(item.cleanQuestion()) : item.question();
    }
}

package dev.jomni.train.score;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class CompletionTest {
    @Test
    void thinkBlockIsTheReasoningAndTheRestIsTheAnswerText() {
        assertEquals(new Completion("I hear a dog.", "ANSWER: Dog barking"),
                Completion.split("<think>\nI hear a dog.\n</think>\n\nANSWER: Dog barking"));
    }

    @Test
    void answerTextStartsAfterTheFirstClosingTagOfTheWholeText() {
        assertEquals(new Completion("b", "c</think>d"), Completion.split("<think>b</think>c</think>d"));
    }

    @Test
    void truncatedGenerationIsAllThinkingAndNoAnswer() {
        assertEquals(new Completion("counting the barks: 1, 2", ""), Completion.split("<think> counting the barks: 1, 2"));
    }

    @Test
    void textWithoutTagsIsAllAnswer() {
        assertEquals(new Completion("", "ANSWER: Owl"), Completion.split("  ANSWER: Owl\n"));
    }

    @Test
    void closingTagWithoutOpeningTagStillSplits() {
        assertEquals(new Completion("I hear an owl.", "ANSWER: Owl"), Completion.split("I hear an owl.\n</think>\n\nANSWER: Owl"));
    }

    @Test
    void trimsLikePythonIncludingNoBreakSpaces() {
        assertEquals(new Completion("x", "y"), Completion.split("<think>\u00a0x\u00a0</think>\u00a0y\u2003"));
    }
}

package dev.jomni.train.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jomni.train.data.AudioQa;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ScorerTest {
    static final List<String> SOUNDS = List.of("Dog barking", "Dog growling", "Cat meowing", "Bell ringing");

    static AudioQa item(List<String> choices, int answer) {
        return new AudioQa("q", Path.of("a.wav"), "Q", false, choices, answer, choices.get(answer), "", Map.of());
    }

    @Test
    void exactTextIgnoringCaseSpacesQuotesAndTrailingDots() {
        assertEquals(3, Scorer.choiceOf("bell  ringing.", SOUNDS));
        assertEquals(2, Scorer.choiceOf("\"Cat meowing\"", SOUNDS));
        assertEquals(3, Scorer.choiceOf("2040", List.of("4000", "1500", "3060 ", "2040 ")));
    }

    @Test
    void letterAloneNamesThatPosition() {
        assertEquals(1, Scorer.choiceOf("B", SOUNDS));
        assertEquals(1, Scorer.choiceOf("(b)", SOUNDS));
        assertEquals(3, Scorer.choiceOf("D.", SOUNDS));
        assertEquals(-1, Scorer.choiceOf("E", SOUNDS), "no fifth choice");
    }

    @Test
    void letterWithTextNeedsThemToAgree() {
        assertEquals(0, Scorer.choiceOf("(A) Dog barking", SOUNDS));
        assertEquals(0, Scorer.choiceOf("A. dog barking loudly", SOUNDS), "letter decides when the text names no choice");
        assertEquals(-1, Scorer.choiceOf("(A) Cat meowing", SOUNDS), "letter A, text C: contradiction");
    }

    @Test
    void choiceInsideALongerAnswerCountsWhenItIsTheOnlyOne() {
        assertEquals(2, Scorer.choiceOf("It is clearly a cat meowing in the background", SOUNDS));
        assertEquals(1, Scorer.choiceOf("grand piano", List.of("Piano", "Grand piano", "Organ", "Harp")));
        assertEquals(1, Scorer.choiceOf("the answer is grand piano", List.of("Piano", "Grand piano", "Organ", "Harp")),
                "piano occurs only inside grand piano");
        assertEquals(-1, Scorer.choiceOf("a dog barking, then a cat meowing", SOUNDS), "two choices: ambiguous");
        assertEquals(-1, Scorer.choiceOf("2 or 3", List.of("1", "2", "3", "4")));
        assertEquals(3, Scorer.choiceOf("12 beeps", List.of("2", "4", "8", "12")), "whole words: 2 is not inside 12");
    }

    @Test
    void partOfAChoiceNamesNothing() {
        assertEquals(-1, Scorer.choiceOf("dog", SOUNDS));
        assertEquals(-1, Scorer.choiceOf("barking", List.of("Dog barking", "Cat meowing", "Bell ringing", "Car horn")));
    }

    @Test
    void emptyOrMissingPredictionIsWrong() {
        AudioQa q = item(SOUNDS, 0);
        for (Matching m : Matching.values()) {
            assertFalse(Scorer.isCorrect("", q, m));
            assertFalse(Scorer.isCorrect("  ", q, m));
            assertFalse(Scorer.isCorrect(null, q, m));
        }
    }

    /** The legacy rule's known false positives (rest/filter.py steps 3–4): right under legacy, wrong under strict. */
    @Test
    void legacySubstringFalsePositivesAreWrongUnderStrict() {
        AudioQa barking = item(List.of("Dog barking", "Cat meowing", "Bell ringing", "Car horn"), 0);
        assertTrue(Scorer.isCorrect("dog", barking, Matching.LEGACY_SUBSTRING), "dog is inside dog barking");
        assertFalse(Scorer.isCorrect("dog", barking, Matching.STRICT));

        AudioQa piano = item(List.of("Piano", "Grand piano", "Organ", "Harp"), 0);
        assertTrue(Scorer.isCorrect("Grand piano", piano, Matching.LEGACY_SUBSTRING), "piano is inside grand piano");
        assertFalse(Scorer.isCorrect("Grand piano", piano, Matching.STRICT));

        AudioQa hundred = item(List.of("10", "100", "1000", "10000"), 1);
        assertTrue(Scorer.isCorrect("1000", hundred, Matching.LEGACY_SUBSTRING), "100 is inside 1000");
        assertFalse(Scorer.isCorrect("1000", hundred, Matching.STRICT));

        AudioQa one = item(List.of("One", "Two", "Three", "None"), 0);
        assertTrue(Scorer.isCorrect("none", one, Matching.LEGACY_SUBSTRING), "one is inside none");
        assertFalse(Scorer.isCorrect("none", one, Matching.STRICT));
    }

    @Test
    void legacyModeKeepsFilterPyRules() {
        AudioQa q = item(List.of("Lento", "Vivace", "Andante", "Adagio"), 1);
        assertTrue(Scorer.isCorrect("(B) vivace", q, Matching.LEGACY_SUBSTRING), "prefix stripped, case folded");
        assertTrue(Scorer.isCorrect("b. Vivace", q, Matching.LEGACY_SUBSTRING));
        assertFalse(Scorer.isCorrect("B", q, Matching.LEGACY_SUBSTRING), "a letter only counts against an '(X) text' ground truth");
        assertTrue(Scorer.legacyMatch("b", "(B) Vivace"));
        assertFalse(Scorer.legacyMatch("Ad", "Adagio"), "2 characters are too short to contain");
        assertTrue(Scorer.isCorrect("B", q, Matching.STRICT), "strict reads the letter");
    }

    @Test
    void strictIsRightOnlyForTheAnswersChoice() {
        AudioQa q = item(SOUNDS, 3);
        assertTrue(Scorer.isCorrect("Bell ringing", q, Matching.STRICT));
        assertTrue(Scorer.isCorrect("D", q, Matching.STRICT));
        assertFalse(Scorer.isCorrect("Dog barking", q, Matching.STRICT));
        assertEquals(Matching.STRICT, Matching.byId("strict"));
        assertEquals(Matching.LEGACY_SUBSTRING, Matching.byId("legacy-substring"));
    }
}

package dev.jomni.train.score;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Expected values are what the original Python function returns for each text (checked against it) from {@code rest/generate.py}'s {@code extract_final_answer}. */
class AnswerExtractorTest {
    @ParameterizedTest(name = "[{index}] {0} -> {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
            ANSWER: Dog barking                          | Dog barking
            ANSWER: Dog barking.                         | Dog barking
            ANSWER: (B) Vivace                           | Vivace
            answer: (b) vivace                           | (b) vivace
            Final ANSWER:   15 ...                       | "15 "
            The correct answer is (C) Bell ringing.      | Bell ringing
            Therefore, the answer is (A) Piano           | Piano
            I think it is (B) Cello. Or not.             | Cello
            The answer should be: (D) two dogs barking   | two dogs barking
            no answer stated here                        | ""
            ANSWER: (A)                                  | ""
            """)
    void extractsLikeTheOriginal(String text, String expected) {
        assertEquals(expected, AnswerExtractor.extract(text));
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', textBlock = """
            "ANSWER:\\n\\nDog"                       | Dog
            "ANSWER: Dog\\nbecause it barks"         | Dog
            "ANSWER:\\u00a0Owl\\u00a0"               | Owl
            "first ANSWER: Owl\\nANSWER: Robot"      | Owl
            "(B) Cello\\n"                           | Cello
            "Answer is (A) Owl (B) Robot"            | Owl
            """)
    void handlesNewlinesAndUnicodeSpacesLikePython(String escaped, String expected) {
        assertEquals(expected, AnswerExtractor.extract(unescape(escaped)));
    }

    private static String unescape(String s) {
        return s.replace("\\n", "\n").replace("\\u00a0", "\u00a0");
    }
}

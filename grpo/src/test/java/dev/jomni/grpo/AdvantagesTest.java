package dev.jomni.grpo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jomni.train.data.AudioQa;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Advantages as TRL computes them, and the reward functions, on hand-worked values. */
class AdvantagesTest {
    @Test
    void groupBatchAndNone() {
        double[] r = {1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5};                     // two groups of 4; the second has std 0
        // group 1: mean 0.5, sample std sqrt(4·0.25/3) = 0.57735
        double s = Math.sqrt(1.0 / 3);
        var g = Advantages.of(r, 4, Advantages.Scale.GROUP);
        assertArrayEquals(new double[] {0.5 / (s + 1e-4), -0.5 / (s + 1e-4), -0.5 / (s + 1e-4), 0.5 / (s + 1e-4), 0, 0, 0, 0}, g.advantages(), 1e-12);
        assertEquals(0.5, g.fracZeroStd());
        var none = Advantages.of(r, 4, Advantages.Scale.NONE);
        assertArrayEquals(new double[] {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0}, none.advantages(), 1e-15);
        assertEquals(0.5, none.fracZeroStd());
        // batch: the std of all 8 (mean 0.5; squares 4·0.25 → sqrt(1/7)), group means still subtracted
        double bs = Math.sqrt(1.0 / 7);
        var b = Advantages.of(r, 4, Advantages.Scale.BATCH);
        assertEquals(0.5 / (bs + 1e-4), b.advantages()[0], 1e-12);
        assertEquals(0, b.advantages()[5], 1e-15);
        assertEquals(0, b.fracZeroStd());
    }

    static AudioQa item() {
        return new AudioQa("x", Path.of("a.wav"), "How many beeps?", false, List.of("two", "three", "four"), 1, "three", "", Map.of());
    }

    @Test
    void rewardFunctionsOnTheAnswerAfterTheThinkBlock() {
        AudioQa it = item();
        assertEquals(1.0, Rewards.STRICT.score(it, "<think>it is two? no</think>\nANSWER: three"));
        assertEquals(0.0, Rewards.STRICT.score(it, "<think>three</think>\nANSWER: two"));       // the thinking does not count
        assertEquals(0.0, Rewards.STRICT.score(it, "<think>three"));                              // truncated: no answer
        assertEquals(1.0, Rewards.ORIGINAL.score(it, "<think>x</think> Three "));                 // exact, case folded
        assertEquals(0.8, Rewards.ORIGINAL.score(it, "<think>x</think>ANSWER: three"));           // contains
        assertEquals(0.0, Rewards.ORIGINAL.score(it, "<think>x</think>ANSWER: two"));
        assertEquals(1.0, Rewards.FORMAT.score(it, "<think>x</think>\nANSWER: two"));
        assertEquals(0.0, Rewards.FORMAT.score(it, "<think>x\nANSWER: two"));
        assertEquals(0.0, Rewards.FORMAT.score(it, "<think>x</think> two"));
        var rw = Rewards.parse("strict,format", "1.0,0.25");
        double[] per = rw.perFunction(it, "<think>x</think>\nANSWER: three");
        assertArrayEquals(new double[] {1, 1}, per);
        assertEquals(1.25, rw.total(per));
        assertArrayEquals(new double[] {1, 1}, Rewards.parse("strict,format", null).weights());
    }
}

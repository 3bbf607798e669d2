/**
 * From a generation to right or wrong: {@link dev.jomni.train.score.Completion} splits the reasoning off,
 * {@link dev.jomni.train.score.AnswerExtractor} finds the stated answer (the original's patterns), and
 * {@link dev.jomni.train.score.Scorer} maps it to exactly one choice and scores it — the one accuracy
 * definition every report uses.
 */
package dev.jomni.train.score;

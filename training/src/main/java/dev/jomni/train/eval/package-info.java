/**
 * Evaluation: {@link dev.jomni.train.eval.Evaluation} runs an {@link dev.jomni.train.eval.AnswerGenerator}
 * over a dataset (batches, N samples, {@link dev.jomni.train.eval.Vote}), {@link dev.jomni.train.eval.AccuracyReport}
 * reports accuracy overall and per field with Wilson intervals, and {@link dev.jomni.train.eval.Submission}
 * writes and checks the challenge's {@code result.jsonl}.
 */
package dev.jomni.train.eval;

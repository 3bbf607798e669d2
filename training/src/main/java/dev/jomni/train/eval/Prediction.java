package dev.jomni.train.eval;

/** One line of a submission's {@code result.jsonl}. */
public record Prediction(String id, String thinking, String answer) {}

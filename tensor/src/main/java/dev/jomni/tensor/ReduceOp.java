package dev.jomni.tensor;

/** Reductions over the last axis of a [rows, n] tensor into [rows]; ARGMAX gives I64 (first maximum). */
public enum ReduceOp { SUM, MAX, MIN, ARGMAX, ARGMIN }

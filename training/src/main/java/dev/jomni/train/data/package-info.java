/**
 * Audio reasoning data in the original project's formats: {@link dev.jomni.train.data.Dataset} (loading,
 * audio paths, errors), {@link dev.jomni.train.data.AudioQa} (one record), the prompt presets
 * ({@link dev.jomni.train.data.PromptPreset}, {@link dev.jomni.train.data.ChatPrompt},
 * {@link dev.jomni.train.data.SftExample}) and the synthetic task ({@link dev.jomni.train.data.SynthTask}).
 * Answers and scoring live in {@code dev.jomni.train.score}, evaluation and submissions in
 * {@code dev.jomni.train.eval}.
 */
package dev.jomni.train.data;

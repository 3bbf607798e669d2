package dev.jomni.train.eval;

import dev.jomni.train.data.AudioQa;
import dev.jomni.train.data.ChatPrompt;

/** A record and the prompt built for it: what an {@link AnswerGenerator} answers. */
public record PromptedItem(AudioQa item, ChatPrompt prompt) {}

/**
 * Text side of Qwen3-Omni: the byte-level BPE {@link dev.jomni.omni.text.Tokenizer} read from
 * {@code tokenizer.json} or from the slow tokenizer's {@code vocab.json} + {@code merges.txt} (the form
 * Qwen3-Omni release folders carry), the Jinja {@link dev.jomni.omni.text.ChatTemplate} rendered as
 * transformers renders it, and {@link dev.jomni.omni.text.ChatEncoder}, which turns a conversation
 * with audio parts into input ids (audio_start + N × audio_pad + audio_end per clip).
 *
 * <p>Parity: {@code src/test/resources/tokenizer} holds Hugging Face tokenizers' and transformers'
 * outputs for the Qwen3 vocabulary and template; {@code src/test/resources/jinja} holds Jinja2's
 * own renderings of feature templates, and {@code src/test/resources/chat-templates} 13 real
 * Hugging Face chat templates with 500 golden renders and expected errors. The Jinja interpreter
 * ({@code JinjaLexer}, {@code JinjaParser}, {@code JinjaTemplate}, {@code JinjaValues}) covers the
 * subset chat templates use, not the whole language.
 */
package dev.jomni.omni.text;

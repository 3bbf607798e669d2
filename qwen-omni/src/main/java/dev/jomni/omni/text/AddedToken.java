package dev.jomni.omni.text;

/**
 * One entry of {@code tokenizer.json}'s {@code added_tokens} (or of {@code tokenizer_config.json}'s
 * {@code added_tokens_decoder}): matched whole in the text before BPE.
 *
 * @param special    skipped by {@code decode(ids, true)}
 * @param normalized matched in the normalized text rather than the raw text
 * @param lstrip     the match also takes the whitespace on its left
 * @param rstrip     the match also takes the whitespace on its right
 * @param singleWord matched only where no word character touches it
 */
record AddedToken(int id, String content, boolean special, boolean normalized,
                  boolean lstrip, boolean rstrip, boolean singleWord) {}

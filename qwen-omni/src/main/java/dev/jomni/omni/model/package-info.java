/**
 * The Qwen3-Omni thinker: audio encoder, merge, MoE decoder, generation; exactly as transformers
 * computes it (see the thinker specification). Shape letters: B batch, T tokens, S keys (cache + new),
 * H hidden, nh/nkv query/key-value heads, d head_dim, E experts, K experts per token, I
 * moe_intermediate, V vocabulary, D audio d_model, O audio output_dim, R audio rows.
 */
package dev.jomni.omni.model;

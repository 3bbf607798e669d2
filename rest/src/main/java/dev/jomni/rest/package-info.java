/**
 * ReST (arXiv:2308.08998) as the original project ran it (seed-pipeline.md §2), with every iteration working
 * in one process: per iteration, generate K candidates per problem with the current policy, keep the correct
 * ones ({@link dev.jomni.rest.Filter}), fine-tune on them, repeat with the next learning rate.
 *
 * <p>The loop ({@link dev.jomni.rest.RestRun}) talks to two small interfaces: a
 * {@link dev.jomni.rest.CandidateSource} (the in-process engine or an OpenAI-compatible server) and a
 * {@link dev.jomni.rest.Policy} (the SFT trainer over the same weights). Output files keep the original's layout
 * and JSON fields so that its analysis scripts read them.
 */
package dev.jomni.rest;

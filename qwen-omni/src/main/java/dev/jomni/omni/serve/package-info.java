/** Serving: an OpenAI-compatible HTTP front of the generation engine. */
package dev.jomni.omni.serve;

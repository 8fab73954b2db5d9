/* Cutting the job's audio into utterances at pauses, with PocketSphinx's endpointer
 * (voice activity detection), so each can be decoded whole: PocketSphinx normalises
 * the cepstrum over a whole utterance better than it can while streaming, and each
 * utterance is one segment the host can show as soon as it ends. */

#ifndef PLUGIN_UTTERANCES_H
#define PLUGIN_UTTERANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called with each utterance: its 16-bit PCM and the sample of the audio it starts at.
 * Returning false stops the cutting (utterances_feed/finish return false). */
typedef bool (*utterance_fn)(void *context, const int16_t *pcm, size_t count,
                             uint64_t start_sample);

typedef struct utterances utterances_t;

/* A cutter for audio at `sample_rate`, with the endpointer's `vad_mode` (a
 * ps_vad_mode_t), or with none when `vad_mode` is negative: then the audio is cut only
 * where an utterance reaches the longest length. NULL when out of memory or when the
 * endpointer refuses the parameters. */
utterances_t *utterances_new(int vad_mode, int sample_rate, utterance_fn fn, void *context);

/* Feeds `count` samples; calls `fn` for every utterance that ends within them. */
bool utterances_feed(utterances_t *cutter, const int16_t *pcm, size_t count);

/* The end of the audio: calls `fn` for the utterance still open, if any. */
bool utterances_finish(utterances_t *cutter);

void utterances_free(utterances_t *cutter);

#endif

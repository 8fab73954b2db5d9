/* See utterances.h.
 *
 * The endpointer hands back speech one frame (30 ms) at a time, starting about 0.3 s
 * before it decides that speech began; a soft onset ("he", "and") can still fall
 * before that, so each utterance also gets up to PREROLL_MS of the audio before it,
 * from a short history, never reaching back into the previous utterance. */

#include "utterances.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pocketsphinx.h>

/* Audio kept before an utterance's detected start. */
#define PREROLL_MS 300
/* The history must hold the endpointer's queue (its 0.3 s window) and the pre-roll. */
#define HISTORY_MS 2000
/* The longest utterance: one that reaches it is cut there and decoding goes on with a
 * new one (PocketSphinx's search grows with the utterance). */
#define MAX_UTTERANCE_MS 60000

struct utterances {
    ps_endpointer_t *endpointer;
    int sample_rate;
    utterance_fn fn;
    void *context;
    /* A partial endpointer frame, kept between feeds. */
    int16_t *frame;
    size_t frame_size;
    size_t filled;
    /* The last samples given to the endpointer; `fed` counts them all. */
    int16_t *history;
    size_t history_size;
    uint64_t fed;
    /* The open utterance. */
    bool open;
    uint64_t start;
    int16_t *pcm;
    size_t len;
    size_t capacity;
    size_t max_len;
    /* Where the last utterance ended: the pre-roll never reaches before it. */
    uint64_t last_end;
};

static size_t ms_to_samples(int sample_rate, int ms) {
    return (size_t)sample_rate * (size_t)ms / 1000;
}

utterances_t *utterances_new(int vad_mode, int sample_rate, utterance_fn fn, void *context) {
    utterances_t *cutter = calloc(1, sizeof(*cutter));
    if (cutter == NULL)
        return NULL;
    cutter->sample_rate = sample_rate;
    cutter->fn = fn;
    cutter->context = context;
    cutter->max_len = ms_to_samples(sample_rate, MAX_UTTERANCE_MS);
    cutter->frame_size = 1;
    if (vad_mode >= 0) {
        cutter->endpointer =
            ps_endpointer_init(0, 0, (ps_vad_mode_t)vad_mode, sample_rate, 0);
        if (cutter->endpointer == NULL) {
            utterances_free(cutter);
            return NULL;
        }
        cutter->frame_size = ps_endpointer_frame_size(cutter->endpointer);
        cutter->history_size = ms_to_samples(sample_rate, HISTORY_MS);
        cutter->history = malloc(cutter->history_size * sizeof(int16_t));
    }
    cutter->frame = malloc(cutter->frame_size * sizeof(int16_t));
    if (cutter->frame == NULL || (cutter->endpointer != NULL && cutter->history == NULL)) {
        utterances_free(cutter);
        return NULL;
    }
    return cutter;
}

void utterances_free(utterances_t *cutter) {
    if (cutter == NULL)
        return;
    if (cutter->endpointer != NULL)
        ps_endpointer_free(cutter->endpointer);
    free(cutter->frame);
    free(cutter->history);
    free(cutter->pcm);
    free(cutter);
}

static bool append(utterances_t *cutter, const int16_t *pcm, size_t count) {
    if (cutter->len + count > cutter->capacity) {
        size_t capacity = cutter->capacity > 0 ? cutter->capacity : 16000;
        while (capacity < cutter->len + count)
            capacity *= 2;
        int16_t *grown = realloc(cutter->pcm, capacity * sizeof(int16_t));
        if (grown == NULL)
            return false;
        cutter->pcm = grown;
        cutter->capacity = capacity;
    }
    memcpy(cutter->pcm + cutter->len, pcm, count * sizeof(int16_t));
    cutter->len += count;
    return true;
}

/* Hands the open utterance to `fn` and closes it. */
static bool close_utterance(utterances_t *cutter) {
    cutter->open = false;
    if (cutter->len == 0)
        return true;
    bool ok = cutter->fn(cutter->context, cutter->pcm, cutter->len, cutter->start);
    cutter->last_end = cutter->start + cutter->len;
    cutter->len = 0;
    return ok;
}

/* Opens an utterance whose detected speech starts at `speech_start`, with the pre-roll
 * the history still holds. */
static bool open_utterance(utterances_t *cutter, uint64_t speech_start) {
    uint64_t oldest = cutter->fed > cutter->history_size ? cutter->fed - cutter->history_size : 0;
    uint64_t preroll = ms_to_samples(cutter->sample_rate, PREROLL_MS);
    uint64_t from = speech_start > preroll ? speech_start - preroll : 0;
    if (from < cutter->last_end)
        from = cutter->last_end;
    if (from < oldest)
        from = oldest;
    if (speech_start > cutter->fed)
        speech_start = cutter->fed;
    if (from > speech_start)
        from = speech_start;
    cutter->open = true;
    cutter->start = from;
    cutter->len = 0;
    for (uint64_t at = from; at < speech_start; at++) {
        if (!append(cutter, &cutter->history[at % cutter->history_size], 1))
            return false;
    }
    return true;
}

/* Speech the endpointer returned (`count` samples). */
static bool speech(utterances_t *cutter, const int16_t *pcm, size_t count) {
    if (!cutter->open) {
        double start = ps_endpointer_speech_start(cutter->endpointer);
        if (!open_utterance(cutter, (uint64_t)llround(start * cutter->sample_rate)))
            return false;
    }
    if (!append(cutter, pcm, count))
        return false;
    if (cutter->len >= cutter->max_len) {
        /* Cut here; the speech goes on in a new utterance. */
        uint64_t next = cutter->start + cutter->len;
        if (!close_utterance(cutter))
            return false;
        cutter->open = true;
        cutter->start = next;
    }
    return true;
}

/* One full endpointer frame. */
static bool endpoint(utterances_t *cutter) {
    for (size_t i = 0; i < cutter->frame_size; i++)
        cutter->history[(cutter->fed + i) % cutter->history_size] = cutter->frame[i];
    cutter->fed += cutter->frame_size;
    const int16_t *found = ps_endpointer_process(cutter->endpointer, cutter->frame);
    if (found == NULL)
        return true;
    if (!speech(cutter, found, cutter->frame_size))
        return false;
    if (!ps_endpointer_in_speech(cutter->endpointer))
        return close_utterance(cutter);
    return true;
}

bool utterances_feed(utterances_t *cutter, const int16_t *pcm, size_t count) {
    if (cutter->endpointer == NULL) {
        /* No voice activity detection: one utterance, cut only at the longest length. */
        while (count > 0) {
            if (!cutter->open) {
                cutter->open = true;
                cutter->start = cutter->fed;
            }
            size_t take = cutter->max_len - cutter->len;
            if (take > count)
                take = count;
            if (!append(cutter, pcm, take))
                return false;
            cutter->fed += take;
            pcm += take;
            count -= take;
            if (cutter->len >= cutter->max_len && !close_utterance(cutter))
                return false;
        }
        return true;
    }
    while (count > 0) {
        size_t take = cutter->frame_size - cutter->filled;
        if (take > count)
            take = count;
        memcpy(cutter->frame + cutter->filled, pcm, take * sizeof(int16_t));
        cutter->filled += take;
        pcm += take;
        count -= take;
        if (cutter->filled == cutter->frame_size) {
            cutter->filled = 0;
            if (!endpoint(cutter))
                return false;
        }
    }
    return true;
}

bool utterances_finish(utterances_t *cutter) {
    if (cutter->endpointer != NULL) {
        size_t rest = 0;
        const int16_t *found =
            ps_endpointer_end_stream(cutter->endpointer, cutter->frame, cutter->filled, &rest);
        if (found != NULL && rest > 0 && !speech(cutter, found, rest))
            return false;
    }
    return !cutter->open || close_utterance(cutter);
}

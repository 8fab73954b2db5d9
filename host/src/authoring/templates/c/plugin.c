/* {{name}}: an energy-based voice-activity detector as a sandscribe plugin, in C. It
 * emits one segment per stretch of speech, with text like "[speech 1.2–3.4 s]".
 *
 * `sandscribe plugin build .` generates the bindings of the WIT world `transcriber`
 * (transcriber.h, from the contract built into sandscribe), compiles every .c file here
 * with clang for WASI, and makes the component.
 *
 * Memory: every string in what the exports return is malloc'ed, as the bindings free
 * them after the host has copied them; arguments are the callee's to free.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transcriber.h"

#define PLUGIN_ID "{{id}}"
#define PLUGIN_VERSION "0.1.0"
#define SAMPLE_RATE 16000
/* Frames per chunk read from the host: one read per second of 20 ms frames. */
#define FRAMES_PER_CHUNK 50

/* The JSON Schema of the configuration (schema.json, embedded at build time);
 * `sandscribe plugins validate` checks it, defaults too. */
static const char SCHEMA[] = {
#embed "schema.json"
    , '\0'};

typedef transcriber_string_t string_t;
typedef sandscribe_plugin_types_segment_t segment_t;

/* The configuration a job runs with. The host checks it against SCHEMA and fills in
 * the defaults, so every key arrives set: a number after each key is all there is to
 * read (a plugin with string options would use a JSON parser, e.g. jsmn). */
typedef struct {
    double threshold_db;
    double frame_ms;
    double min_speech_ms;
    double min_silence_ms;
} config_t;

static double number_after(const char *json, const char *key, double fallback) {
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "\"%s\"", key);
    const char *at = strstr(json, quoted);
    if (at == NULL)
        return fallback;
    at = strchr(at + strlen(quoted), ':');
    return at == NULL ? fallback : strtod(at + 1, NULL);
}

static config_t parse_config(const string_t *json) {
    char *text = strndup((const char *)json->ptr, json->len);
    config_t config = {
        .threshold_db = number_after(text, "threshold_db", -35),
        .frame_ms = number_after(text, "frame_ms", 20),
        .min_speech_ms = number_after(text, "min_speech_ms", 200),
        .min_silence_ms = number_after(text, "min_silence_ms", 300),
    };
    free(text);
    return config;
}

static string_t owned_string(const char *text) {
    string_t s;
    transcriber_string_dup(&s, text);
    return s;
}

void exports_transcriber_info(transcriber_plugin_info_t *ret) {
    memset(ret, 0, sizeof(*ret));
    ret->id = owned_string(PLUGIN_ID);
    ret->name = owned_string("{{name}}");
    ret->version = owned_string(PLUGIN_VERSION);
    ret->description = owned_string("Finds the stretches of speech in the audio by their energy.");
    ret->sample_rate = SAMPLE_RATE;
    ret->capabilities.segment_timestamps = true;
    ret->config_schema = owned_string(SCHEMA);
}

/* The segments found so far. */
typedef struct {
    segment_t *items;
    size_t count, capacity;
} segments_t;

static void keep(segments_t *found, uint64_t start_ms, uint64_t end_ms) {
    if (found->count == found->capacity) {
        found->capacity = found->capacity ? found->capacity * 2 : 16;
        found->items = realloc(found->items, found->capacity * sizeof(segment_t));
    }
    char text[64];
    snprintf(text, sizeof(text), "[speech %.1f–%.1f s]", start_ms / 1000.0, end_ms / 1000.0);
    segment_t *segment = &found->items[found->count++];
    memset(segment, 0, sizeof(*segment));
    segment->start_ms = start_ms;
    segment->end_ms = end_ms;
    segment->text = owned_string(text);
    sandscribe_plugin_host_emit_segment(segment); /* shown live, while the job runs */
}

/* Turns frame levels into stretches of speech. */
typedef struct {
    double threshold, frame_ms, min_speech_ms, min_silence_ms;
    bool open;
    uint64_t start_ms, voiced_until_ms;
} detector_t;

static void close_stretch(detector_t *d, segments_t *found) {
    if (d->open && d->voiced_until_ms - d->start_ms >= d->min_speech_ms)
        keep(found, d->start_ms, d->voiced_until_ms);
    d->open = false;
}

static void push_frame(detector_t *d, uint64_t at_ms, double level, segments_t *found) {
    if (level >= d->threshold) {
        if (!d->open) {
            d->open = true;
            d->start_ms = at_ms;
        }
        d->voiced_until_ms = at_ms + (uint64_t)d->frame_ms;
    } else if (d->open && at_ms >= d->voiced_until_ms + d->min_silence_ms) {
        close_stretch(d, found);
    }
}

bool exports_transcriber_transcribe(transcriber_borrow_audio_t input, string_t *config_json,
                                    transcriber_transcript_t *ret,
                                    transcriber_plugin_error_t *err) {
    memset(ret, 0, sizeof(*ret));
    memset(err, 0, sizeof(*err));
    config_t config = parse_config(config_json);
    transcriber_string_free(config_json);

    uint64_t frames = sandscribe_plugin_audio_method_audio_frames(input);
    uint32_t rate = sandscribe_plugin_audio_method_audio_sample_rate(input);
    uint32_t frame_len = rate * (uint32_t)config.frame_ms / 1000;
    if (frame_len == 0)
        frame_len = 1;
    detector_t detector = {
        .threshold = pow(10.0, config.threshold_db / 20.0),
        .frame_ms = config.frame_ms,
        .min_speech_ms = config.min_speech_ms,
        .min_silence_ms = config.min_silence_ms,
    };
    segments_t found = {0};
    for (uint64_t offset = 0; offset < frames;) {
        if (sandscribe_plugin_host_is_cancelled()) { /* stop early when cancelled */
            for (size_t i = 0; i < found.count; i++)
                sandscribe_plugin_types_segment_free(&found.items[i]);
            free(found.items);
            err->tag = SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_CANCELLED;
            return false;
        }
        transcriber_list_f32_t chunk;
        sandscribe_plugin_audio_method_audio_read(input, offset, frame_len * FRAMES_PER_CHUNK,
                                                  &chunk);
        if (chunk.len == 0) {
            transcriber_list_f32_free(&chunk);
            break;
        }
        for (size_t start = 0; start < chunk.len; start += frame_len) {
            size_t end = start + frame_len < chunk.len ? start + frame_len : chunk.len;
            double sum = 0;
            for (size_t i = start; i < end; i++)
                sum += (double)chunk.ptr[i] * chunk.ptr[i];
            uint64_t at_ms = (offset + start) * 1000 / rate;
            push_frame(&detector, at_ms, sqrt(sum / (double)(end - start)), &found);
        }
        offset += chunk.len;
        transcriber_list_f32_free(&chunk);
        string_t stage = {(uint8_t *)"finding speech", strlen("finding speech")};
        sandscribe_plugin_host_progress((float)offset / (float)frames, &stage);
    }
    uint64_t duration_ms = frames * 1000 / rate;
    if (detector.voiced_until_ms > duration_ms)
        detector.voiced_until_ms = duration_ms;
    close_stretch(&detector, &found);

    ret->segments.ptr = found.items;
    ret->segments.len = found.count;
    /* The whole text: the segments' texts, one per line. */
    size_t len = 0;
    for (size_t i = 0; i < found.count; i++)
        len += found.items[i].text.len + 1;
    char *text = calloc(len + 1, 1);
    for (size_t i = 0; i < found.count; i++) {
        strncat(text, (const char *)found.items[i].text.ptr, found.items[i].text.len);
        if (i + 1 < found.count)
            strcat(text, "\n");
    }
    ret->text.ptr = (uint8_t *)text;
    ret->text.len = strlen(text);
    return true;
}

/* PocketSphinx 5 as a sandscribe plugin (sandscribe:plugin@0.2.0, world `transcriber`),
 * in C, through the bindings `wit-bindgen c` generates (transcriber.h).
 *
 * The host lends the job's audio as mono f32 at 16 kHz; the plugin reads it one second
 * at a time, converts it to 16-bit PCM, and cuts it into utterances at pauses
 * (utterances.c, PocketSphinx's endpointer). Each utterance is decoded whole
 * (`ps_process_raw` with `full_utt`) as soon as it ends and becomes one segment, sent to
 * the host at once, with word times from `ps_seg_*` (one frame is 10 ms) and word
 * posteriors from the lattice. Keyword spotting (`keyphrase`) makes one segment per
 * detection instead; a JSGF grammar (`jsgf`) replaces the language model. The host's
 * cancel hint is checked before every read.
 *
 * The model is read from the plugin's read-only assets, mounted at /assets:
 *   /assets/en-us/               the acoustic model (a PTM continuous-density HMM)
 *   /assets/en-us.lm.bin         the trigram language model
 *   /assets/cmudict-en-us.dict   the CMU pronouncing dictionary
 *
 * Memory: every string in what the exports return is malloc'ed, as the bindings free
 * them after the host has copied them (`cabi_post_*`); arguments are the callee's.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pocketsphinx.h>

#include "plugin_config.h"
#include "transcriber.h"
#include "utterances.h"

#define PLUGIN_ID "pocketsphinx-en-us"
#define PLUGIN_VERSION "0.1.0"
#define SAMPLE_RATE 16000
/* Samples read from the host per call (one second), so a long file is never whole in
 * plugin memory and cancellation is seen within a second of audio. */
#define CHUNK_SAMPLES 16000
/* PocketSphinx's frame rate (its `frate` default, 100 per second). */
#define MS_PER_FRAME 10

#define ACOUSTIC_MODEL "/assets/en-us"
#define LANGUAGE_MODEL "/assets/en-us.lm.bin"
#define DICTIONARY "/assets/cmudict-en-us.dict"
#define GRAMMAR_SEARCH "jsgf"

typedef transcriber_string_t string_t;
typedef sandscribe_plugin_types_segment_t segment_t;
typedef sandscribe_plugin_types_word_t word_t;

/* ---- Strings and logs --------------------------------------------------------------- */

static string_t owned_string(const char *text) {
    string_t s;
    transcriber_string_dup(&s, text);
    return s;
}

static void host_log(sandscribe_plugin_host_log_level_t level, const char *message) {
    string_t s = {(uint8_t *)message, strlen(message)};
    sandscribe_plugin_host_log(level, &s);
}

static void host_progress(float fraction, const char *stage) {
    string_t s = {(uint8_t *)stage, strlen(stage)};
    sandscribe_plugin_host_progress(fraction, &s);
}

/* PocketSphinx's last error, without its "ERROR: "file", line N: " prefix: what a
 * failed call is explained with. */
static char last_error[512];

/* PocketSphinx's log (warnings and errors: `loglevel` is WARN) goes to the job's log. */
static void forward_log(void *user_data, err_lvl_t level, const char *format, ...) {
    (void)user_data;
    char line[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (len == 0)
        return;
    sandscribe_plugin_host_log_level_t host_level =
        level >= ERR_ERROR  ? SANDSCRIBE_PLUGIN_HOST_LOG_LEVEL_ERROR
        : level == ERR_WARN ? SANDSCRIBE_PLUGIN_HOST_LOG_LEVEL_WARN
        : level == ERR_INFO ? SANDSCRIBE_PLUGIN_HOST_LOG_LEVEL_INFO
                            : SANDSCRIBE_PLUGIN_HOST_LOG_LEVEL_DEBUG;
    host_log(host_level, line);
    if (level >= ERR_ERROR) {
        const char *message = line;
        const char *located = strstr(line, "\", line ");
        const char *after = located != NULL ? strstr(located, ": ") : NULL;
        if (after != NULL)
            message = after + 2;
        snprintf(last_error, sizeof(last_error), "%s", message);
    }
}

/* ---- info() ------------------------------------------------------------------------- */

void exports_transcriber_info(transcriber_plugin_info_t *ret) {
    memset(ret, 0, sizeof(*ret));
    ret->id = owned_string(PLUGIN_ID);
    ret->name = owned_string("PocketSphinx (en-us)");
    ret->version = owned_string(PLUGIN_VERSION);
    ret->description = owned_string(
        "CMU PocketSphinx 5.1.1, compiled from C: the en-us acoustic model with a trigram "
        "language model and the CMU dictionary. Small and fast; also spots key phrases and "
        "follows JSGF grammars.");
    ret->languages.len = 1;
    ret->languages.ptr = malloc(sizeof(string_t));
    ret->languages.ptr[0] = owned_string("en");
    ret->sample_rate = SAMPLE_RATE;
    ret->capabilities.segment_timestamps = true;
    ret->capabilities.word_timestamps = true;
    ret->capabilities.language_detection = false;
    ret->capabilities.translation = false;
    ret->config_schema = owned_string(PLUGIN_CONFIG_SCHEMA);
}

/* ---- One job ------------------------------------------------------------------------ */

typedef struct {
    ps_decoder_t *decoder;
    bool spotting;
    /* Word posteriors are only computed by the lattice pass. */
    bool confidences;
    uint64_t duration_ms;
    /* Where the utterance being decoded starts. */
    uint64_t utterance_start_ms;
    segment_t *segments;
    size_t segment_count;
    size_t segment_capacity;
} job_t;

static bool is_filler(const char *word) {
    return word[0] == '<' || word[0] == '[';
}

/* The word without its pronunciation variant ("read(2)" is "read"). */
static string_t word_text(const char *word) {
    const char *variant = strchr(word, '(');
    string_t s;
    transcriber_string_dup_n(&s, word, variant != NULL ? (size_t)(variant - word) : strlen(word));
    return s;
}

static uint64_t frame_ms(const job_t *job, int frame) {
    uint64_t ms = job->utterance_start_ms + (uint64_t)(frame < 0 ? 0 : frame) * MS_PER_FRAME;
    return ms < job->duration_ms ? ms : job->duration_ms;
}

/* Texts joined by spaces (`stride` bytes apart, so it serves words and segments). */
static string_t join_texts(const string_t *first, size_t count, size_t stride) {
    size_t len = 0;
    for (size_t i = 0; i < count; i++)
        len += ((const string_t *)((const char *)first + i * stride))->len + (i > 0);
    string_t s = {len > 0 ? malloc(len) : NULL, len};
    size_t at = 0;
    for (size_t i = 0; i < count && s.ptr != NULL; i++) {
        const string_t *text = (const string_t *)((const char *)first + i * stride);
        if (i > 0)
            s.ptr[at++] = ' ';
        memcpy(s.ptr + at, text->ptr, text->len);
        at += text->len;
    }
    return s;
}

/* Sends the segment made of `words` to the host and keeps it for the transcript, which
 * takes `words` over. */
static bool add_segment(job_t *job, word_t *words, size_t count) {
    if (job->segment_count == job->segment_capacity) {
        size_t capacity = job->segment_capacity > 0 ? job->segment_capacity * 2 : 16;
        segment_t *grown = realloc(job->segments, capacity * sizeof(segment_t));
        if (grown == NULL)
            return false;
        job->segments = grown;
        job->segment_capacity = capacity;
    }
    segment_t *segment = &job->segments[job->segment_count++];
    memset(segment, 0, sizeof(*segment));
    segment->start_ms = words[0].start_ms;
    segment->end_ms = words[count - 1].end_ms;
    segment->text = join_texts(&words[0].text, count, sizeof(word_t));
    segment->words.ptr = words;
    segment->words.len = count;
    if (job->confidences) {
        /* The geometric mean of the words' posteriors. */
        double log_sum = 0.0;
        for (size_t i = 0; i < count; i++)
            log_sum += log(fmax(words[i].confidence.val, 1e-30));
        segment->confidence.is_some = true;
        segment->confidence.val = (float)exp(log_sum / (double)count);
    }
    sandscribe_plugin_host_emit_segment(segment);
    return true;
}

/* The decoded utterance's words as segments: one for the utterance, or one per
 * detection when spotting. */
static bool collect_segments(job_t *job) {
    logmath_t *logmath = ps_get_logmath(job->decoder);
    word_t *words = NULL;
    size_t count = 0, capacity = 0;
    for (ps_seg_t *seg = ps_seg_iter(job->decoder); seg != NULL; seg = ps_seg_next(seg)) {
        const char *text = ps_seg_word(seg);
        if (text == NULL || is_filler(text))
            continue;
        if (count == capacity) {
            capacity = capacity > 0 ? capacity * 2 : 16;
            word_t *grown = realloc(words, capacity * sizeof(word_t));
            if (grown == NULL) {
                ps_seg_free(seg);
                goto failed;
            }
            words = grown;
        }
        int start_frame, end_frame;
        ps_seg_frames(seg, &start_frame, &end_frame);
        word_t *word = &words[count++];
        memset(word, 0, sizeof(*word));
        word->text = word_text(text);
        word->start_ms = frame_ms(job, start_frame);
        word->end_ms = frame_ms(job, end_frame + 1);
        if (job->confidences) {
            double posterior = logmath_exp(logmath, ps_seg_prob(seg, NULL, NULL, NULL));
            word->confidence.is_some = true;
            word->confidence.val = (float)fmin(posterior, 1.0);
        }
        if (job->spotting) {
            if (!add_segment(job, words, 1)) {
                ps_seg_free(seg);
                goto failed;
            }
            words = NULL;
            count = capacity = 0;
        }
    }
    if (count > 0)
        return add_segment(job, words, count);
    free(words);
    return true;
failed:
    for (size_t i = 0; i < count; i++)
        sandscribe_plugin_types_word_free(&words[i]);
    free(words);
    return false;
}

/* Decodes one whole utterance (the cutter's callback). */
static bool decode_utterance(void *context, const int16_t *pcm, size_t count,
                             uint64_t start_sample) {
    job_t *job = context;
    job->utterance_start_ms = start_sample * 1000 / SAMPLE_RATE;
    return ps_start_utt(job->decoder) >= 0 &&
           ps_process_raw(job->decoder, pcm, count, FALSE, TRUE) >= 0 &&
           ps_end_utt(job->decoder) >= 0 && collect_segments(job);
}

/* A sample in -1..=1 as 16-bit PCM. The host decodes 16-bit audio as x / 32768, so
 * this gives such audio back exactly. */
static int16_t to_pcm16(float sample) {
    float scaled = sample * 32768.0f;
    if (!(scaled >= -32768.0f))
        return scaled != scaled ? 0 : -32768;
    if (scaled > 32767.0f)
        return 32767;
    return (int16_t)lrintf(scaled);
}

static void set_error(transcriber_plugin_error_t *err, uint8_t tag, const char *message) {
    memset(err, 0, sizeof(*err));
    err->tag = tag;
    if (tag == SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_BAD_CONFIG)
        err->val.bad_config = owned_string(message);
    else if (tag == SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_UNSUPPORTED_AUDIO)
        err->val.unsupported_audio = owned_string(message);
    else if (tag == SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL)
        err->val.internal = owned_string(message);
}

/* A PocketSphinx failure: `what` and its last error message. */
static void set_ps_error(transcriber_plugin_error_t *err, uint8_t tag, const char *what) {
    char message[768];
    if (last_error[0] != '\0')
        snprintf(message, sizeof(message), "%s: %s", what, last_error);
    else
        snprintf(message, sizeof(message), "%s", what);
    set_error(err, tag, message);
}

/* Whether every word of `keyphrase` is in the dictionary; a bad-config error if not. */
static bool check_keyphrase(ps_decoder_t *decoder, const char *keyphrase,
                            transcriber_plugin_error_t *err) {
    char word[128];
    for (const char *at = keyphrase; *at != '\0';) {
        size_t skip = strspn(at, " \t\n\r");
        at += skip;
        size_t len = strcspn(at, " \t\n\r");
        if (len == 0)
            break;
        snprintf(word, sizeof(word), "%.*s", (int)len, at);
        at += len;
        char *phones = ps_lookup_word(decoder, word);
        if (phones == NULL) {
            char message[256];
            snprintf(message, sizeof(message),
                     "keyphrase: \"%s\" is not in the pronouncing dictionary", word);
            set_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_BAD_CONFIG, message);
            return false;
        }
        free(phones);
    }
    return true;
}

/* The decoder for `config`: the language model, a key phrase, or a grammar. */
static ps_decoder_t *create_decoder(const plugin_config_t *config,
                                    transcriber_plugin_error_t *err) {
    ps_config_t *ps_config = ps_config_init(NULL);
    if (ps_config == NULL) {
        set_ps_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL,
                     "cannot create PocketSphinx's configuration");
        return NULL;
    }
    ps_config_set_str(ps_config, "hmm", ACOUSTIC_MODEL);
    ps_config_set_str(ps_config, "dict", DICTIONARY);
    if (config->keyphrase == NULL && config->jsgf == NULL)
        ps_config_set_str(ps_config, "lm", LANGUAGE_MODEL);
    ps_config_set_int(ps_config, "samprate", SAMPLE_RATE);
    ps_config_set_str(ps_config, "loglevel", "WARN");
    /* wasi-libc only emulates mmap (with a copy): read the files directly. */
    ps_config_set_bool(ps_config, "mmap", FALSE);
    plugin_config_apply(config, ps_config);

    last_error[0] = '\0';
    ps_decoder_t *decoder = ps_init(ps_config);
    ps_config_free(ps_config);
    if (decoder == NULL) {
        set_ps_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL,
                     "cannot load the PocketSphinx model from /assets");
        return NULL;
    }
    /* PocketSphinx only logs a key phrase word it cannot pronounce, and spots nothing. */
    if (config->keyphrase != NULL && !check_keyphrase(decoder, config->keyphrase, err)) {
        ps_free(decoder);
        return NULL;
    }
    if (config->jsgf != NULL) {
        last_error[0] = '\0';
        if (ps_add_jsgf_string(decoder, GRAMMAR_SEARCH, config->jsgf) < 0 ||
            ps_activate_search(decoder, GRAMMAR_SEARCH) < 0) {
            set_ps_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_BAD_CONFIG, "jsgf");
            ps_free(decoder);
            return NULL;
        }
    }
    return decoder;
}

static void free_segments(job_t *job) {
    for (size_t i = 0; i < job->segment_count; i++)
        sandscribe_plugin_types_segment_free(&job->segments[i]);
    free(job->segments);
    job->segments = NULL;
    job->segment_count = job->segment_capacity = 0;
}

/* Reads, converts and decodes all the audio. Returns false with `err` set. */
static bool run(utterances_t *cutter, transcriber_borrow_audio_t audio, uint64_t frames,
                transcriber_plugin_error_t *err) {
    int16_t *pcm = malloc(CHUNK_SAMPLES * sizeof(int16_t));
    if (pcm == NULL) {
        set_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL, "out of memory");
        return false;
    }
    last_error[0] = '\0';
    bool ok = true;
    for (uint64_t offset = 0; ok && offset < frames;) {
        if (sandscribe_plugin_host_is_cancelled()) {
            set_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_CANCELLED, NULL);
            free(pcm);
            return false;
        }
        transcriber_list_f32_t chunk;
        sandscribe_plugin_audio_method_audio_read(audio, offset, CHUNK_SAMPLES, &chunk);
        size_t count = chunk.len < CHUNK_SAMPLES ? chunk.len : CHUNK_SAMPLES;
        for (size_t i = 0; i < count; i++)
            pcm[i] = to_pcm16(chunk.ptr[i]);
        transcriber_list_f32_free(&chunk);
        if (count == 0)
            break;
        offset += count;
        ok = utterances_feed(cutter, pcm, count);
        host_progress((float)((double)offset / (double)frames), "decoding");
    }
    ok = ok && utterances_finish(cutter);
    if (!ok)
        set_ps_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL, "decoding failed");
    free(pcm);
    return ok;
}

bool exports_transcriber_transcribe(transcriber_borrow_audio_t input,
                                    transcriber_string_t *config_json,
                                    transcriber_transcript_t *ret,
                                    transcriber_plugin_error_t *err) {
    memset(ret, 0, sizeof(*ret));
    memset(err, 0, sizeof(*err));
    err_set_callback(forward_log, NULL);

    plugin_config_t config;
    char problem[512];
    bool parsed = plugin_config_parse((const char *)config_json->ptr, config_json->len,
                                      &config, problem, sizeof(problem));
    transcriber_string_free(config_json);
    if (!parsed) {
        set_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_BAD_CONFIG, problem);
        return false;
    }
    uint64_t frames = sandscribe_plugin_audio_method_audio_frames(input);
    uint32_t rate = sandscribe_plugin_audio_method_audio_sample_rate(input);
    if (frames == 0 || rate != SAMPLE_RATE) {
        set_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_UNSUPPORTED_AUDIO,
                  frames == 0 ? "the audio is empty" : "the audio is not at 16 kHz");
        plugin_config_free(&config);
        return false;
    }

    host_progress(0.0f, "loading the model");
    job_t job = {0};
    job.spotting = config.keyphrase != NULL;
    job.confidences = config.bestpath && !job.spotting;
    job.duration_ms = frames * 1000 / SAMPLE_RATE;
    job.decoder = create_decoder(&config, err);
    utterances_t *cutter = NULL;
    bool ok = job.decoder != NULL;
    if (ok) {
        cutter = utterances_new(config.vad, SAMPLE_RATE, decode_utterance, &job);
        if (cutter == NULL) {
            set_ps_error(err, SANDSCRIBE_PLUGIN_TYPES_PLUGIN_ERROR_INTERNAL,
                         "cannot create the endpointer");
            ok = false;
        }
    }
    plugin_config_free(&config);
    ok = ok && run(cutter, input, frames, err);

    utterances_free(cutter);
    if (job.decoder != NULL)
        ps_free(job.decoder);
    if (!ok) {
        free_segments(&job);
        return false;
    }
    ret->segments.ptr = job.segments;
    ret->segments.len = job.segment_count;
    ret->language.is_some = true;
    ret->language.val = owned_string("en");
    if (job.segment_count > 0)
        ret->text = join_texts(&job.segments[0].text, job.segment_count, sizeof(segment_t));
    return true;
}

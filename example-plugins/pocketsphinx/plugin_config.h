/* The job's configuration (schema.json): read from the host's JSON, checked, and
 * applied to a PocketSphinx configuration. */

#ifndef PLUGIN_CONFIG_H
#define PLUGIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <pocketsphinx.h>

/* Not a ps_vad_mode_t: decode the whole audio as one utterance. */
#define PLUGIN_VAD_OFF (-1)

typedef struct {
    /* Keyword spotting: the phrase, or NULL to transcribe. */
    char *keyphrase;
    double kws_threshold;
    /* A JSGF grammar's text, or NULL for the language model. */
    char *jsgf;
    double beam;
    double wbeam;
    double lw;
    bool bestpath;
    /* A ps_vad_mode_t, or PLUGIN_VAD_OFF. */
    int vad;
} plugin_config_t;

/* Reads `json` (an object valid against schema.json; the host has checked it and filled
 * in the defaults, but the plugin checks again). On failure writes "field: reason" into
 * `error` and returns false. */
bool plugin_config_parse(const char *json, size_t len, plugin_config_t *config,
                         char *error, size_t error_len);

/* The options that go into PocketSphinx's configuration (the search type is chosen by
 * the caller: a JSGF grammar is added to the decoder after it is created). */
void plugin_config_apply(const plugin_config_t *config, ps_config_t *ps_config);

void plugin_config_free(plugin_config_t *config);

/* The configuration schema, JSON Schema draft 2020-12 (schema.json, NUL-terminated). */
extern const char PLUGIN_CONFIG_SCHEMA[];

#endif

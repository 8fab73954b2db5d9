/* See plugin_config.h. */

#include "plugin_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const char PLUGIN_CONFIG_SCHEMA[] = {
#embed "schema.json"
    , '\0'};

/* PocketSphinx's own defaults (config_macro.h of 5.1.1), also schema.json's. */
static const plugin_config_t DEFAULTS = {
    .keyphrase = NULL,
    .kws_threshold = 1e-30,
    .jsgf = NULL,
    .beam = 1e-48,
    .wbeam = 7e-29,
    .lw = 6.5,
    .bestpath = true,
    .vad = PS_VAD_LOOSE,
};

static const struct {
    const char *name;
    int mode;
} VAD_MODES[] = {
    {"loose", PS_VAD_LOOSE},
    {"medium_loose", PS_VAD_MEDIUM_LOOSE},
    {"medium_strict", PS_VAD_MEDIUM_STRICT},
    {"strict", PS_VAD_STRICT},
    {"off", PLUGIN_VAD_OFF},
};

static bool fail(char *error, size_t error_len, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_len, format, args);
    va_end(args);
    return false;
}

/* A number field within [min, max] (min excluded when `above_min`). */
static bool read_number(const json_doc_t *doc, int value, const char *name, double min,
                        bool above_min, double max, double *out, char *error,
                        size_t error_len) {
    double number;
    if (!json_number(doc, value, &number))
        return fail(error, error_len, "%s: must be a number", name);
    if (number < min || (above_min && number == min) || number > max)
        return fail(error, error_len, "%s: must be %s %g and at most %g", name,
                    above_min ? "above" : "at least", min, max);
    *out = number;
    return true;
}

/* A string field of 1..=max_len bytes, without NUL characters. */
static bool read_string(const json_doc_t *doc, int value, const char *name, size_t max_len,
                        char **out, char *error, size_t error_len) {
    char *text = json_string(doc, value);
    if (text == NULL)
        return fail(error, error_len, "%s: must be a string (without NUL characters)", name);
    size_t len = strlen(text);
    if (len == 0 || len > max_len) {
        free(text);
        return fail(error, error_len, "%s: must have 1 to %zu characters", name, max_len);
    }
    free(*out);
    *out = text;
    return true;
}

static bool read_field(const json_doc_t *doc, int key, plugin_config_t *config, char *error,
                       size_t error_len) {
    int value = key + 1;
    if (json_is_key(doc, key, "keyphrase"))
        return read_string(doc, value, "keyphrase", 200, &config->keyphrase, error, error_len);
    if (json_is_key(doc, key, "jsgf"))
        return read_string(doc, value, "jsgf", 65536, &config->jsgf, error, error_len);
    if (json_is_key(doc, key, "kws_threshold"))
        return read_number(doc, value, "kws_threshold", 0, true, 1, &config->kws_threshold,
                           error, error_len);
    if (json_is_key(doc, key, "beam"))
        return read_number(doc, value, "beam", 0, true, 1, &config->beam, error, error_len);
    if (json_is_key(doc, key, "wbeam"))
        return read_number(doc, value, "wbeam", 0, true, 1, &config->wbeam, error, error_len);
    if (json_is_key(doc, key, "lw"))
        return read_number(doc, value, "lw", 0.1, false, 50, &config->lw, error, error_len);
    if (json_is_key(doc, key, "bestpath")) {
        if (!json_bool(doc, value, &config->bestpath))
            return fail(error, error_len, "bestpath: must be true or false");
        return true;
    }
    if (json_is_key(doc, key, "vad")) {
        char *mode = json_string(doc, value);
        for (size_t i = 0; mode != NULL && i < sizeof(VAD_MODES) / sizeof(VAD_MODES[0]); i++) {
            if (strcmp(mode, VAD_MODES[i].name) == 0) {
                config->vad = VAD_MODES[i].mode;
                free(mode);
                return true;
            }
        }
        free(mode);
        return fail(error, error_len,
                    "vad: must be one of loose, medium_loose, medium_strict, strict, off");
    }
    const jsmntok_t *token = &doc->tokens[key];
    return fail(error, error_len, "%.*s: unknown field", (int)(token->end - token->start),
                doc->text + token->start);
}

bool plugin_config_parse(const char *json, size_t len, plugin_config_t *config, char *error,
                         size_t error_len) {
    *config = DEFAULTS;
    json_doc_t doc;
    if (!json_parse(&doc, json, len) || doc.tokens[0].type != JSMN_OBJECT) {
        json_free(&doc);
        return fail(error, error_len, "the configuration must be a JSON object");
    }
    bool ok = true;
    for (int key = 1; ok && key < doc.count; key = json_next(&doc, key + 1)) {
        if (key + 1 >= doc.count)
            break;
        ok = read_field(&doc, key, config, error, error_len);
    }
    json_free(&doc);
    if (ok && config->keyphrase != NULL && config->jsgf != NULL)
        ok = fail(error, error_len, "keyphrase: cannot be used together with jsgf");
    if (!ok)
        plugin_config_free(config);
    return ok;
}

void plugin_config_apply(const plugin_config_t *config, ps_config_t *ps_config) {
    ps_config_set_float(ps_config, "beam", config->beam);
    ps_config_set_float(ps_config, "wbeam", config->wbeam);
    ps_config_set_float(ps_config, "lw", config->lw);
    ps_config_set_bool(ps_config, "bestpath", config->bestpath);
    if (config->keyphrase != NULL) {
        ps_config_set_str(ps_config, "keyphrase", config->keyphrase);
        ps_config_set_float(ps_config, "kws_threshold", config->kws_threshold);
    }
}

void plugin_config_free(plugin_config_t *config) {
    free(config->keyphrase);
    free(config->jsgf);
    config->keyphrase = NULL;
    config->jsgf = NULL;
}

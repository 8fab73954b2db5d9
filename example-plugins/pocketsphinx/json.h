/* Reading the job's configuration object: a thin layer over jsmn, the JSON tokenizer
 * PocketSphinx ships (src/jsmn.h, compiled into the library by ps_config.c). */

#ifndef PLUGIN_JSON_H
#define PLUGIN_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSMN_HEADER
#include "jsmn.h"

/* A parsed document: the text and its tokens (jsmn's, in document order). */
typedef struct {
    const char *text;
    jsmntok_t *tokens;
    int count;
} json_doc_t;

/* Tokenizes `text`; false when it is not JSON. Free with json_free. */
bool json_parse(json_doc_t *doc, const char *text, size_t len);
void json_free(json_doc_t *doc);

/* The index of the token after token `index` and everything inside it. */
int json_next(const json_doc_t *doc, int index);

/* Whether token `index` is a string equal to `name` (as written, no escapes). */
bool json_is_key(const json_doc_t *doc, int index, const char *name);

/* Token `index` as a newly allocated UTF-8 string with escapes resolved, or NULL when it
 * is not a string, is malformed, or holds a NUL character. */
char *json_string(const json_doc_t *doc, int index);

/* Token `index` as a number or a boolean; false when it is another kind. */
bool json_number(const json_doc_t *doc, int index, double *out);
bool json_bool(const json_doc_t *doc, int index, bool *out);

#endif

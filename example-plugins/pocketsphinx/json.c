/* See json.h. */

#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool json_parse(json_doc_t *doc, const char *text, size_t len) {
    jsmn_parser parser;
    memset(doc, 0, sizeof(*doc));
    jsmn_init(&parser);
    int count = jsmn_parse(&parser, text, len, NULL, 0);
    if (count <= 0)
        return false;
    doc->tokens = calloc((size_t)count, sizeof(jsmntok_t));
    if (doc->tokens == NULL)
        return false;
    jsmn_init(&parser);
    if (jsmn_parse(&parser, text, len, doc->tokens, (unsigned)count) != count) {
        json_free(doc);
        return false;
    }
    doc->text = text;
    doc->count = count;
    return true;
}

void json_free(json_doc_t *doc) {
    free(doc->tokens);
    memset(doc, 0, sizeof(*doc));
}

int json_next(const json_doc_t *doc, int index) {
    /* Tokens are in document order: the subtree ends at the first token that starts
     * after this one ends. */
    int end = doc->tokens[index].end;
    int next = index + 1;
    while (next < doc->count && doc->tokens[next].start < end)
        next++;
    return next;
}

bool json_is_key(const json_doc_t *doc, int index, const char *name) {
    const jsmntok_t *token = &doc->tokens[index];
    size_t len = (size_t)(token->end - token->start);
    return token->type == JSMN_STRING && strlen(name) == len &&
           memcmp(doc->text + token->start, name, len) == 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at `s`, or -1. */
static long hex4(const char *s, const char *end) {
    if (end - s < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(s[i]);
        if (digit < 0)
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* Writes `code` as UTF-8 at `out`; returns the bytes written. */
static size_t put_utf8(char *out, uint32_t code) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

char *json_string(const json_doc_t *doc, int index) {
    const jsmntok_t *token = &doc->tokens[index];
    if (token->type != JSMN_STRING)
        return NULL;
    const char *s = doc->text + token->start;
    const char *end = doc->text + token->end;
    /* Escapes only ever shrink the text: \uXXXX (6 bytes) is at most 3 bytes of UTF-8,
     * and a surrogate pair (12 bytes) is 4. */
    char *out = malloc((size_t)(end - s) + 1);
    if (out == NULL)
        return NULL;
    size_t len = 0;
    while (s < end) {
        char c = *s++;
        if (c != '\\') {
            if (c == '\0')
                goto bad;
            out[len++] = c;
            continue;
        }
        if (s == end)
            goto bad;
        c = *s++;
        switch (c) {
        case '"': out[len++] = '"'; break;
        case '\\': out[len++] = '\\'; break;
        case '/': out[len++] = '/'; break;
        case 'b': out[len++] = '\b'; break;
        case 'f': out[len++] = '\f'; break;
        case 'n': out[len++] = '\n'; break;
        case 'r': out[len++] = '\r'; break;
        case 't': out[len++] = '\t'; break;
        case 'u': {
            long code = hex4(s, end);
            if (code < 0)
                goto bad;
            s += 4;
            if (code >= 0xD800 && code <= 0xDBFF) {
                long low = (end - s >= 6 && s[0] == '\\' && s[1] == 'u') ? hex4(s + 2, end) : -1;
                if (low < 0xDC00 || low > 0xDFFF)
                    goto bad;
                s += 6;
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            } else if (code >= 0xDC00 && code <= 0xDFFF) {
                goto bad;
            }
            if (code == 0)
                goto bad;
            len += put_utf8(out + len, (uint32_t)code);
            break;
        }
        default:
            goto bad;
        }
    }
    out[len] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

bool json_number(const json_doc_t *doc, int index, double *out) {
    const jsmntok_t *token = &doc->tokens[index];
    size_t len = (size_t)(token->end - token->start);
    const char *s = doc->text + token->start;
    char buffer[64];
    if (token->type != JSMN_PRIMITIVE || len == 0 || len >= sizeof(buffer))
        return false;
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return false;
    memcpy(buffer, s, len);
    buffer[len] = '\0';
    char *rest;
    *out = strtod(buffer, &rest);
    return *rest == '\0';
}

bool json_bool(const json_doc_t *doc, int index, bool *out) {
    const jsmntok_t *token = &doc->tokens[index];
    size_t len = (size_t)(token->end - token->start);
    const char *s = doc->text + token->start;
    if (token->type != JSMN_PRIMITIVE)
        return false;
    if (len == 4 && memcmp(s, "true", 4) == 0) {
        *out = true;
        return true;
    }
    if (len == 5 && memcmp(s, "false", 5) == 0) {
        *out = false;
        return true;
    }
    return false;
}

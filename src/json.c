/* The one JSON writer (doubles as %.17g, so every value round-trips; non-finite
 * as null) and the one strict JSON reader used for configs, cfg.json and
 * safetensors headers. Depends on nothing above error.h. */
#include "saeval/json.h"
#include "saeval/numfmt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sv_jw_init(sv_jw *w) { memset(w, 0, sizeof *w); }
void sv_jw_free(sv_jw *w) { free(w->buf); memset(w, 0, sizeof *w); }

void sv_jw_raw(sv_jw *w, const char *s, size_t n)
{
    if (w->oom) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (w->len + n + 1 > cap) cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) { w->oom = 1; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void putf(sv_jw *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sv_jw_raw(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_string(sv_jw *w, const char *s)
{
    sv_jw_raw(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { sv_jw_raw(w, "\\", 1); sv_jw_raw(w, (const char *)p, 1); }
        else if (*p == '\n') sv_jw_raw(w, "\\n", 2);
        else if (*p < 0x20) putf(w, "\\u%04x", *p);
        else sv_jw_raw(w, (const char *)p, 1);
    }
    sv_jw_raw(w, "\"", 1);
}

/* Separator, newline/indent and key before an element. */
static void element(sv_jw *w, const char *key)
{
    int d = w->depth;
    if (d > 0) {
        if (w->count[d]++ > 0) sv_jw_raw(w, ",", 1);
        if (w->inline_[d]) {
            if (w->count[d] > 1) sv_jw_raw(w, " ", 1);
        } else {
            sv_jw_raw(w, "\n", 1);
            for (int i = 0; i < d; i++) sv_jw_raw(w, "  ", 2);
        }
    }
    if (key) {
        put_string(w, key);
        sv_jw_raw(w, ": ", 2);
    }
}

static void open_(sv_jw *w, const char *key, const char *br, int inl, int arr)
{
    element(w, key);
    sv_jw_raw(w, br, 1);
    if (w->depth < 63) w->depth++;
    w->count[w->depth] = 0;
    w->inline_[w->depth] = inl;
    w->is_arr[w->depth] = arr;
}

void sv_jw_obj(sv_jw *w, const char *key) { open_(w, key, "{", 0, 0); }
void sv_jw_arr(sv_jw *w, const char *key) { open_(w, key, "[", 1, 1); }
void sv_jw_arr_block(sv_jw *w, const char *key) { open_(w, key, "[", 0, 1); }

void sv_jw_end(sv_jw *w)
{
    int d = w->depth;
    int inl = w->inline_[d], arr = w->is_arr[d], had = w->count[d] > 0;
    if (w->depth > 0) w->depth--;
    if (!inl && had) {
        sv_jw_raw(w, "\n", 1);
        for (int i = 0; i < w->depth; i++) sv_jw_raw(w, "  ", 2);
    }
    sv_jw_raw(w, arr ? "]" : "}", 1);
}

void sv_jw_num(sv_jw *w, const char *key, double v)
{
    element(w, key);
    char t[32];
    if (isfinite(v)) sv_jw_raw(w, t, (size_t)sv_fmt_g(t, v, 17)); /* "%.17g" without printf: numfmt.h */
    else sv_jw_raw(w, "null", 4);
}

void sv_jw_int(sv_jw *w, const char *key, int64_t v)
{
    char t[24];
    element(w, key);
    sv_jw_raw(w, t, (size_t)sv_fmt_i64(t, v));
}

void sv_jw_str(sv_jw *w, const char *key, const char *s)
{
    element(w, key);
    put_string(w, s);
}

void sv_jw_bool(sv_jw *w, const char *key, int v)
{
    element(w, key);
    sv_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void sv_jw_null(sv_jw *w, const char *key)
{
    element(w, key);
    sv_jw_raw(w, "null", 4);
}

cJSON *sv_json_parse_exact(const char *text, size_t n)
{
    if (!text || n == 0) return NULL;
    /* A terminated copy, so that no parser path can run past the end. */
    char *buf = sv_malloc(n + 1);
    if (!buf) return NULL;
    memcpy(buf, text, n);
    buf[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    for (const char *p = end; root && p < buf + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            root = NULL;
        }
    free(buf);
    return root;
}

double sv_json_num_at(const cJSON *root, const char *dotted)
{
    char key[128];
    const cJSON *node = root;
    const char *p = dotted;
    while (node && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key) return NAN;
        memcpy(key, p, n);
        key[n] = '\0';
        node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, key) : NULL;
        p = dot ? dot + 1 : p + n;
    }
    return cJSON_IsNumber(node) ? node->valuedouble : NAN;
}

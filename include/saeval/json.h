/* The JSON writer (doubles as %.17g, non-finite as null; one emitter for
 * every file saeval writes) and the strict JSON reader. Depends only on
 * error.h. */
#ifndef SAEVAL_JSON_H
#define SAEVAL_JSON_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int depth;
    int count[64];   /* elements written at each depth */
    int inline_[64]; /* 1: elements on one line */
    int is_arr[64];  /* 1: array, 0: object */
    int oom;
} sv_jw;

void sv_jw_init(sv_jw *w);
void sv_jw_free(sv_jw *w);
void sv_jw_obj(sv_jw *w, const char *key);   /* key NULL at top level / in arrays */
void sv_jw_end(sv_jw *w);                    /* closes the innermost object or array */
void sv_jw_arr(sv_jw *w, const char *key);   /* arrays of scalars: one line */
void sv_jw_arr_block(sv_jw *w, const char *key); /* arrays of objects: one element per line */
void sv_jw_num(sv_jw *w, const char *key, double v);
void sv_jw_int(sv_jw *w, const char *key, int64_t v);
void sv_jw_str(sv_jw *w, const char *key, const char *s);
void sv_jw_bool(sv_jw *w, const char *key, int v);
void sv_jw_null(sv_jw *w, const char *key);
/* Append bytes verbatim (pre-formatted JSON or CSV text). */
void sv_jw_raw(sv_jw *w, const char *s, size_t n);

/* Parse exactly n bytes of JSON (text need not be NUL-terminated). NULL
 * when it is not valid JSON or anything but whitespace follows the value:
 * the one reader of cfg.json, configs and safetensors headers. */
struct cJSON *sv_json_parse_exact(const char *text, size_t n);
/* The number at a dotted path ("metrics.sparsity.l0") under root, NaN when
 * absent, null or not a number (merge and the report read results this way). */
double sv_json_num_at(const struct cJSON *root, const char *dotted);

#endif

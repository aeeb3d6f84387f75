/* Result writers: a small JSON emitter (doubles as %.17g, non-finite as
 * null), atomic file replacement, per-pair result objects and the
 * all_eval_results.json/.csv summaries. */
#ifndef SAEVAL_OUTPUT_H
#define SAEVAL_OUTPUT_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/sae.h"
#include "saeval/config.h"
#include "saeval/geometry.h"

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

/* Write buf to path via a temporary file in the same directory + rename, so
 * readers only ever see the old or the new complete file. */
sv_rc sv_write_atomic(const char *path, const char *buf, size_t len);
sv_rc sv_mkdir_p(const char *path);

/* Final metrics of one (SAE, dataset) pair. */
typedef struct {
    double mse, explained_variance, fvu, explained_variance_legacy, cossim;
    double l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias;
    double l0, l1, dead_fraction;
    int64_t dead_features, tokens_evaluated, tokens_masked, tokens_nonfinite, sequences;
    int64_t hist_len;          /* largest L0 seen + 1 (0 when no token) */
    const int64_t *l0_histogram;
    const int64_t *firing_counts;
    const int64_t *fired_sequences;
} sv_pair_metrics;

/* The per-pair JSON object (no trailing newline). g: the SAE's weight
 * geometry; model_params: NaN when unknown (health ratings). */
sv_rc sv_pair_json(sv_jw *w, const char *sae_id, const char *dataset, const sv_sae *s,
                   const sv_config *c, const sv_pair_metrics *m, const sv_geometry *g,
                   double model_params, uint64_t input_hash);

/* Path of a pair's result file. Caller frees. */
char *sv_pair_path(const char *out_dir, const char *sae_id, const char *dataset);

/* Parse exactly n bytes of JSON (text need not be NUL-terminated). NULL
 * when it is not valid JSON or anything but whitespace follows the value:
 * the one reader of cfg.json, configs and safetensors headers. */
struct cJSON *sv_json_parse_exact(const char *text, size_t n);

#endif

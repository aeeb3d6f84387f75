/* `saeval explain`: the reverse query. For each token of a span of a
 * store's sequence, the latents of every SAE of the config that fire most on
 * it, each with a one-line summary of its top examples when the run left a
 * feature file (OUTPUT_DIR/<sae_id>__<dataset>.features.h5). */
#ifndef SAEVAL_EXPLAIN_H
#define SAEVAL_EXPLAIN_H
#include <stdint.h>
#include <stdio.h>
#include "saeval/error.h"

typedef struct {
    const char *config_path;
    const char *dataset;      /* a dataset name of the config */
    int64_t sequence;         /* -1: find `ids` in the store instead */
    int64_t pos0, pos1;       /* positions [pos0, pos1) of the sequence; pos1 -1: to its end */
    const int64_t *ids;       /* with sequence -1: the first occurrence of these ids */
    int64_t n_ids;
    int top_latents;          /* latents shown per token (default 5) */
    const char *tokenizer;    /* tokenizer.json or NULL (ids shown) */
    const char *output_dir;   /* where feature files are looked up (default: the config's) */
} sv_explain_opts;

/* Serial (one process). Writes the report to out. */
sv_rc sv_explain(const sv_explain_opts *o, FILE *out);

#endif

/* Run configuration (JSON). Relative paths are resolved against the config
 * file's directory; unknown keys are errors. */
#ifndef SAEVAL_CONFIG_H
#define SAEVAL_CONFIG_H
#include <stdint.h>
#include "saeval/error.h"

typedef struct {
    char *path;             /* resolved directory */
    int has_scale;
    double scaling_factor;
    int transcoder;         /* "transcoder": true: compare with the store's /targets (sv_sae_declare_transcoder) */
} sv_sae_spec;

typedef enum { SV_ROLE_IN_SAMPLE = 0, SV_ROLE_OOS } sv_role;

typedef struct {
    char *name;
    char *path;             /* resolved */
    sv_role role;
    char *shift;            /* NULL, "domain", "task" or "distribution" */
    char *model;            /* resolved Hugging Face model directory for the downstream
                             * metrics (the dataset's own "model", else the top-level one); NULL = none */
} sv_dataset_spec;

typedef struct {
    char *config_path;
    char *output_dir;       /* resolved */
    sv_sae_spec *saes;
    int n_saes;
    sv_dataset_spec *datasets;
    int n_datasets;
    int64_t *exclude_ids;
    int n_exclude;
    int legacy_batch_sequences;
    int precision;          /* 32, 64, or 16 = "bfloat16": float32 except the encoder GEMM, whose
                             * operands are rounded to bfloat16 (gemm.h) */
    int64_t block_tokens;   /* rows per GEMM block (part of the numerics: fixed per run, not per rank count) */
    int64_t memory_budget_mb; /* per rank; 0 = half the node's memory / ranks per node */
    int nonfinite_skip;     /* "nonfinite": "skip" masks tokens with NaN/Inf (default: error) */
    int geometry;           /* compute weight geometry (default 1) */
    double dead_density_threshold; /* dead_fraction_below_density: density below this (default 1e-6) */
    double model_params;    /* language-model size for health ratings; NaN = unknown */
    char *model;            /* top-level "model" (resolved), NULL = none */
    int64_t downstream_sequences; /* downstream metrics on the first N sequences of each store; 0 = all */
    /* Feature analysis (features.h): top examples kept per latent, 0 = no
     * feature files; context tokens before/after (-1/-1: whole sequence). */
    int top_examples;
    int ctx_before, ctx_after;
    char *tokenizer;        /* resolved path of a tokenizer.json, or NULL */
} sv_config;

/* Parse text (length n) read from config_path. */
sv_rc sv_config_parse(sv_config *c, const char *text, size_t n, const char *config_path);
sv_rc sv_config_load(sv_config *c, const char *config_path);
void sv_config_free(sv_config *c);

/* "float32", "float64" or "bfloat16" (the config and eval_cfg spelling). */
const char *sv_precision_name(int precision);

#endif

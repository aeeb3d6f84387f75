/* SAE on-disk formats, one row per format (in the style of IOR's aiori
 * backend table): a struct of functions plus a registry (src/format.c).
 * Glob expansion (config.c), `saeval info`, input hashing (plan.c) and
 * loading all go through this table.
 *
 * Adding a format: src/fmt_X.c defining `const sv_format sv_fmt_X`, its
 * extern line below, and one line in the registry of src/format.c. */
#ifndef SAEVAL_FORMAT_H
#define SAEVAL_FORMAT_H
#include <stdint.h>
#include <stdio.h>
#include "saeval/error.h"
#include "saeval/sae.h"

/* How a file enters input_hash: its bytes (small files) or its size and
 * mtime (big files, never read whole for the hash). */
typedef enum { SV_IDENT_BYTES, SV_IDENT_STAT } sv_ident_kind;
typedef void (*sv_ident_visit)(void *ctx, const char *file, sv_ident_kind kind);

typedef struct {
    const char *name;
    /* How sure the format is that path is one of its SAEs: 0 = not mine.
     * Cheap: stat and small reads only, never throws an error. */
    int (*probe)(const char *path);
    /* The architecture config, without reading weights. */
    sv_rc (*read_config)(const char *path, sv_sae_cfg *c);
    /* s->cfg, s->scaling_factor and the weights in s->precision (32/64).
     * has_scale/scale: the run config's per-SAE scaling_factor. */
    sv_rc (*load)(sv_sae *s, const char *path, int has_scale, double scale);
    /* Every file the format reads for this SAE, in a fixed order. */
    sv_rc (*identity)(const char *path, sv_ident_visit visit, void *ctx);
    /* Human-readable description (`saeval info`). */
    sv_rc (*describe)(const char *path, FILE *out);
} sv_format;

/* The rows, each defined in its src/fmt_X.c (declared here, as IOR's
 * aiori.h does, so that the registry depends on no format's header). */
extern const sv_format sv_fmt_saelens;
/* Other projects' formats (nativesae.c reads them, src/fmt_<name>.c). */
extern const sv_format sv_fmt_gemma_scope, sv_fmt_llama_scope, sv_fmt_sparsify, sv_fmt_openai,
    sv_fmt_dictionary_learning;

/* The registry, in probe order; the first row is the default. */
extern const sv_format *const sv_formats[];
extern const int sv_n_formats;

/* The format that claims path with the highest score, NULL if none. */
const sv_format *sv_format_probe(const char *path);
/* sv_format_probe, or the default format when none claims path (its
 * errors then say what is missing). */
const sv_format *sv_format_for(const char *path);

/* Load the SAE at path in working precision 32 or 64, or 16 = float32
 * weights with a bfloat16 encoder GEMM (sv_sae.bf16_encoder) (weights, scaling
 * factor and the derived per-latent norms). */
sv_rc sv_sae_load(sv_sae *s, const char *path, int precision, int has_scale, double scale);
/* Cheap check without reading weights: the config only. */
sv_rc sv_sae_load_cfg(const char *path, sv_sae_cfg *c);
/* The run config says the SAE at path is a transcoder ("transcoder": true):
 * mark its cfg so (compared with /targets); refused when its encoder
 * subtracts b_dec or normalizes, which a transcoder's input never does. */
sv_rc sv_sae_declare_transcoder(sv_sae_cfg *c, const char *path);

#endif

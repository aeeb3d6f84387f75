/* SAEs in other projects' native on-disk formats (issue 11), read into one
 * canonical form that the format rows turn into saeval SAEs:
 *
 *   gemma_scope          DIR/params.npz (or the .npz itself)
 *   llama_scope          DIR/hyperparams.json + DIR/checkpoints/final.safetensors
 *   sparsify             DIR/cfg.json + DIR/sae.safetensors
 *   openai               FILE.pt (openai/sparse_autoencoder state dict)
 *   dictionary_learning  DIR/ae.pt + DIR/config.json (trainer.dict_class)
 *
 * Canonical form (row-major doubles): x' = norm_in(x) [- b_dec if
 * apply_b_dec_to_input]; h = x'.W_enc + b_enc; f = act(h); x^ = f.W_dec +
 * b_dec [+ W_skip.x]; then norm_out undone. Where a project's own loader
 * changes the weights (Language-Model-SAEs folding its dataset-wise
 * normalization and decoder norms into the weights; dictionary_learning's
 * AutoEncoder.from_pretrained renormalizing the decoder) the same
 * transformation is applied here, in double, and `note` says so. */
#ifndef SAEVAL_NATIVESAE_H
#define SAEVAL_NATIVESAE_H
#include <stdint.h>
#include "saeval/error.h"

typedef enum {
    SV_NACT_RELU,        /* standard */
    SV_NACT_JUMPRELU,    /* f = ReLU(h) where h > threshold[j] (strictly) */
    SV_NACT_TOPK,        /* k largest h, ReLU of the kept values */
    SV_NACT_SIGNED_TOPK, /* k largest |h|, sign kept, no ReLU (ties: lower index) */
    SV_NACT_GROUPMAX,    /* k contiguous groups of d_sae/k: the largest ReLU(h) of each (ties: first) */
    SV_NACT_GATED        /* f = ReLU(x'.(W_enc*exp(r_mag)) + b_mag) where x'.W_enc + b_gate > 0 */
} sv_nact;
const char *sv_nact_name(sv_nact a);

typedef struct {
    const char *format;       /* "gemma_scope", ... */
    char variant[64];         /* dict_class, OpenAI activation, sparsify activation */
    sv_nact act;
    int64_t d_in, d_sae, d_out, k;
    int apply_b_dec_to_input;
    int layer_norm;           /* OpenAI TopK: per-token LayerNorm (unbiased std, eps 1e-5) in, undone out */
    int transcoder;           /* compares with the store's /targets */
    int skip;                 /* has W_skip (known from the config, before the weights) */
    /* Arrays (NULL when absent): W_enc [d_in][d_sae], b_enc [d_sae],
     * W_dec [d_sae][d_out], b_dec [d_out], threshold [d_sae] (a scalar
     * threshold is broadcast), W_skip [d_out][d_in], gated b_gate/r_mag/b_mag. */
    double *W_enc, *b_enc, *W_dec, *b_dec, *threshold, *W_skip, *b_gate, *r_mag, *b_mag;
    char note[256];           /* how the project's loader was followed, "" if nothing special */
    int n_files;
    char *files[4];           /* every file read, for input_hash */
} sv_native;

/* Which native format PATH is in (a directory or a file); NULL if none. */
const char *sv_native_probe(const char *path);
/* Read the configuration only (weights NULL) or everything. */
sv_rc sv_native_load(sv_native *s, const char *path, int with_weights);
void sv_native_free(sv_native *s);

/* Hand a canonical SAE to the evaluator as an sv_sae (cfg, weights in the
 * run's precision 32 or 64, per-latent norms). The weight arrays MOVE from
 * n to s (n keeps only what s does not use). For the architectures the
 * evaluator has today (relu, topk, jumprelu, gated, signed top-k, groupmax;
 * layer_norm). Others (skip, transcoders) are refused by name until the
 * architecture table has rows for them. `path` becomes s->dir. */
#include "saeval/sae.h"
sv_rc sv_native_to_sae(sv_native *n, const char *path, int precision, sv_sae *s);
/* The parts a format row needs: the evaluator's cfg of a canonical SAE
 * (unsupported architectures refused), and cfg + scaling_factor + weights
 * in s->precision, moved from n (no per-latent norms, s->dir untouched). */
sv_rc sv_native_cfg(const sv_native *n, const char *path, sv_sae_cfg *c);
sv_rc sv_native_fill_sae(sv_native *n, const char *path, sv_sae *s);
/* Does `format` (a row name: gemma_scope, ...) claim path? */
int sv_native_probe_as(const char *format, const char *path);

#endif

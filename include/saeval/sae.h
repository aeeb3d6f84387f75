/* The in-memory SAE, whatever format it was read from (format.h). */
#ifndef SAEVAL_SAE_H
#define SAEVAL_SAE_H
#include <stdint.h>
#include <stddef.h>
#include "saeval/error.h"

typedef enum { SV_ARCH_STANDARD = 0, SV_ARCH_TOPK, SV_ARCH_JUMPRELU, SV_ARCH_GATED, SV_ARCH_SIGNED_TOPK, SV_ARCH_GROUPMAX } sv_arch;
typedef enum {
    SV_NORM_NONE = 0,
    SV_NORM_LAYER_NORM,
    SV_NORM_CONSTANT_NORM_RESCALE,
    SV_NORM_EXPECTED_AVERAGE_ONLY_IN
} sv_norm;

typedef struct {
    sv_arch arch;
    int64_t d_in, d_sae;
    int64_t k;                        /* topk, signed_topk, groupmax (number of groups); else 0 */
    int rescale_acts_by_decoder_norm; /* topk, default 0 */
    int apply_b_dec_to_input;         /* default 1 */
    sv_norm normalize;                /* default none */
    char dtype[32];                   /* as written in cfg.json, default "float32" */
    unsigned alias_flags;             /* extra flags of the alias cfg.json named (arch.h), else 0 */
    int pre6_topk;                    /* SAELens pre-6.0 "standard" + activation_fn topk, read as topk */
    int64_t d_out;                    /* decoder output width; 0 means d_in (use sv_cfg_d_out) */
    int transcoder;                   /* reconstructs the store's /targets, not /activations */
    int skip;                         /* W_skip [d_out][d_in]: decode adds x.W_skip^T (raw input x) */
} sv_sae_cfg;

/* Width of the reconstruction (d_in for an ordinary SAE). */
static inline int64_t sv_cfg_d_out(const sv_sae_cfg *c) { return c->d_out > 0 ? c->d_out : c->d_in; }

const char *sv_norm_name(sv_norm n);  /* "none", "layer_norm", ... */

typedef struct {
    char *dir;
    sv_sae_cfg cfg;
    int precision;          /* 32: weights are float; 64: weights are double */
    int bf16_encoder;       /* precision "bfloat16": float32 weights, the encoder GEMM on bfloat16 operands */
    double scaling_factor;  /* expected_average_only_in factor s, else 1 */
    /* Weights in the working precision (float* or double*), row-major. */
    void *W_enc;            /* [d_in][d_sae] */
    void *b_enc;            /* [d_sae]; NULL for gated */
    void *W_dec;            /* [d_sae][d_out] */
    void *b_dec;            /* [d_out] */
    void *W_skip;           /* [d_out][d_in] with cfg.skip, else NULL */
    void *threshold;        /* jumprelu [d_sae] else NULL */
    void *b_gate, *r_mag, *b_mag; /* gated [d_sae] else NULL */
    /* Derived per-latent values in double, computed from the working-precision weights. */
    double *dec_norm;       /* ||W_dec[j,:]|| */
    double *enc_norm;       /* ||W_enc[:,j]|| */
    double *enc_dec_cos;    /* cos(W_enc[:,j], W_dec[j,:]), 0 when a norm is 0 */
    uint64_t weights_bytes; /* size of the weights file */
} sv_sae;

/* Index of the first NaN or infinite value among n floats (precision 32)
 * or doubles (64), n when there is none. */
size_t sv_first_nonfinite(const void *p, size_t n, int precision);
/* Fill dec_norm, enc_norm and enc_dec_cos from the loaded weights. */
sv_rc sv_sae_derive(sv_sae *s);
void sv_sae_free(sv_sae *s);

#endif

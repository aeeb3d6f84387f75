/* SAE architectures, one row each: name and aliases, the tensors it needs,
 * flags the other modules read (top-k, threshold, gated, ...), and the
 * per-tile activation kernel in float and double. The forward pass, the
 * loaders, the result writer, health, info and the memory estimate all read
 * this table instead of switching on the architecture.
 *
 * Adding an architecture: an sv_arch value (sae.h), one row in src/arch.c
 * and its kernel function (float and double). */
#ifndef SAEVAL_ARCH_H
#define SAEVAL_ARCH_H
#include <stdint.h>
#include "saeval/sae.h"

enum {
    SV_AF_TOPK = 1,        /* k largest pre-activations (forward.c's top-k path, no kernel); reads k */
    SV_AF_THRESHOLD = 2,   /* per-latent threshold tensor */
    SV_AF_GATED = 4,       /* gate and magnitude paths (b_gate, r_mag, b_mag; no b_enc) */
    SV_AF_SCALAR_THRESHOLD = 8, /* alias flag: threshold may be one number for every latent */
    SV_AF_SIGNED = 16,     /* with TOPK: the k largest |h|, sign kept, no ReLU (activations may be negative) */
    SV_AF_GROUPMAX = 32,   /* with TOPK: the largest ReLU(h) of each of k contiguous groups of d_sae/k */
    SV_AF_NOT_SAELENS = 64, /* no SAELens cfg.json names it: read from other projects' formats only */
    SV_AF_TRANSCODER = 128, /* alias flag: d_out from cfg.json, no b_dec on the input, compared with /targets */
    SV_AF_SKIP = 256       /* alias flag: W_skip [d_out, d_in], decode adds x.W_skip^T */
};

/* Where a tensor goes and its shape from cfg.json. */
typedef enum { SV_T_W_ENC, SV_T_B_ENC, SV_T_W_DEC, SV_T_B_DEC, SV_T_THRESHOLD, SV_T_B_GATE, SV_T_R_MAG, SV_T_B_MAG, SV_T_W_SKIP } sv_tensor_id;
/* OUT is d_out (d_in for an ordinary SAE). */
typedef enum { SV_SHAPE_IN_SAE, SV_SHAPE_SAE_OUT, SV_SHAPE_SAE, SV_SHAPE_OUT, SV_SHAPE_OUT_IN } sv_shape;
typedef struct {
    const char *name;
    sv_tensor_id id;
    sv_shape shape;
} sv_tensor_spec;

/* The current panel's per-latent vectors (already offset to the panel's
 * first latent; NULL when the architecture has none), in the working
 * precision. */
typedef struct {
    const void *b_enc, *threshold, *b_gate, *exp_r_mag, *b_mag;
} sv_act_args;

/* One row of pre-activations h[0, wdt) (latents j0..): append the active
 * latents (index, value) to oi/ov; returns how many. */
typedef int64_t (*sv_act_f32)(const float *h, int64_t wdt, int64_t j0, const sv_act_args *a, int32_t *oi, double *ov);
typedef int64_t (*sv_act_f64)(const double *h, int64_t wdt, int64_t j0, const sv_act_args *a, int32_t *oi, double *ov);

typedef struct {
    const char *name;
    unsigned flags;
} sv_arch_alias;

typedef struct {
    sv_arch id;
    const char *name;
    sv_arch_alias aliases[4];          /* {NULL}-terminated */
    unsigned flags;
    sv_tensor_spec tensors[8];         /* required, in file order; {NULL}-terminated */
    sv_act_f32 act_f32;                /* NULL on the top-k path (topk, signed_topk, groupmax) */
    sv_act_f64 act_f64;
} sv_arch_row;

extern const sv_arch_row sv_archs[];
extern const int sv_n_archs;
extern const sv_tensor_spec sv_arch_w_skip;

/* Row of an architecture id (never NULL for a valid id). */
const sv_arch_row *sv_arch_row_of(sv_arch a);
/* Row whose name or alias is name, NULL if none; *alias_flags gets the
 * alias's extra flags (0 for the name itself). */
const sv_arch_row *sv_arch_lookup(const char *name, unsigned *alias_flags);
/* "standard, topk, ..." for messages. */
const char *sv_arch_list(void);
/* The row's name ("standard", "topk", "jumprelu", "gated", "signed_topk", "groupmax"). */
const char *sv_arch_name(sv_arch a);
static inline int sv_arch_has(sv_arch a, unsigned flag) { return (sv_arch_row_of(a)->flags & flag) != 0; }

#endif

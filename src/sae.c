/* The in-memory SAE: architecture/normalization names, derived per-latent
 * values, freeing. Reading SAEs from disk is the formats' job (format.h). */
#include "saeval/sae.h"
#include "multiarch.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *norm_names[] = {"none", "layer_norm", "constant_norm_rescale",
                                   "expected_average_only_in"};

const char *sv_norm_name(sv_norm n) { return (unsigned)n < 4 ? norm_names[n] : "?"; }

/* Per-latent norms, blocked over latents so that both W_enc rows and the
 * W_dec rows of a block stream through cache. Each sum runs over i in
 * order, so the result equals the naive loop. A transcoder's decoder rows
 * (d_out) live in another space than its encoder columns (d_in): their
 * norms are summed apart and the cosine is 0 (undefined). */
#define NORMS_BODY(T)                                                          \
    do {                                                                       \
        const T *We = s->W_enc, *Wd = s->W_dec;                                \
        if (no != ni) {                                                        \
            for (size_t i = 0; i < ni; i++)                                    \
                for (size_t j = 0; j < ns; j++) en[j] += (double)We[i * ns + j] * We[i * ns + j]; \
            for (size_t j = 0; j < ns; j++)                                    \
                for (size_t i = 0; i < no; i++) dn[j] += (double)Wd[j * no + i] * Wd[j * no + i]; \
            break;                                                             \
        }                                                                      \
        for (size_t j0 = 0; j0 < ns; j0 += 64) {                               \
            size_t j1 = j0 + 64 < ns ? j0 + 64 : ns;                           \
            for (size_t i = 0; i < ni; i++) {                                  \
                const T *er = We + i * ns;                                     \
                for (size_t j = j0; j < j1; j++) {                             \
                    double e = er[j], d = Wd[j * ni + i];                      \
                    en[j] += e * e;                                            \
                    dn[j] += d * d;                                            \
                    dot[j] += e * d;                                           \
                }                                                              \
            }                                                                  \
        }                                                                      \
    } while (0)

SV_MULTIARCH static void compute_norms(sv_sae *s, double *dot)
{
    size_t ni = (size_t)s->cfg.d_in, ns = (size_t)s->cfg.d_sae, no = (size_t)sv_cfg_d_out(&s->cfg);
    double *en = s->enc_norm, *dn = s->dec_norm;
    if (s->precision == 32) NORMS_BODY(float);
    else NORMS_BODY(double);
    for (size_t j = 0; j < ns; j++) {
        en[j] = sqrt(en[j]);
        dn[j] = sqrt(dn[j]);
        s->enc_dec_cos[j] = (en[j] > 0 && dn[j] > 0) ? dot[j] / (en[j] * dn[j]) : 0.0;
    }
}

/* Whether any of n values is NaN or infinite: all exponent bits set. An OR
 * over bit tests, so that the clones vectorize it. */
#define ANY_NONFINITE(name, T, U, EXP)                 \
    SV_MULTIARCH static int name(const T *p, size_t n) \
    {                                                  \
        U bad = 0;                                     \
        for (size_t i = 0; i < n; i++) {               \
            U u;                                       \
            memcpy(&u, p + i, sizeof u);               \
            bad |= (u & (EXP)) == (EXP);               \
        }                                              \
        return bad != 0;                               \
    }
ANY_NONFINITE(any_nonfinite_f32, float, uint32_t, 0x7f800000u)
ANY_NONFINITE(any_nonfinite_f64, double, uint64_t, 0x7ff0000000000000u)
#undef ANY_NONFINITE

size_t sv_first_nonfinite(const void *p, size_t n, int precision)
{
    enum { BLOCK = 1 << 16 };
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        const size_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
        if (precision == 32 ? !any_nonfinite_f32((const float *)p + i0, m) : !any_nonfinite_f64((const double *)p + i0, m))
            continue;
        for (size_t i = i0; i < i0 + m; i++) /* the block that has one: where */
            if (!isfinite(precision == 32 ? (double)((const float *)p)[i] : ((const double *)p)[i])) return i;
    }
    return n;
}

sv_rc sv_sae_derive(sv_sae *s)
{
    size_t ns = (size_t)s->cfg.d_sae;
    s->dec_norm = sv_calloc(ns, sizeof(double));
    s->enc_norm = sv_calloc(ns, sizeof(double));
    s->enc_dec_cos = sv_calloc(ns, sizeof(double));
    double *dot = sv_calloc(ns, sizeof(double));
    sv_rc rc = SV_OK;
    if (!s->dec_norm || !s->enc_norm || !s->enc_dec_cos || !dot) rc = SV_EINTERNAL;
    else compute_norms(s, dot);
    free(dot);
    return rc;
}

void sv_sae_free(sv_sae *s)
{
    if (!s) return;
    free(s->dir);
    free(s->W_enc);
    free(s->b_enc);
    free(s->W_dec);
    free(s->b_dec);
    free(s->W_skip);
    free(s->threshold);
    free(s->b_gate);
    free(s->r_mag);
    free(s->b_mag);
    free(s->dec_norm);
    free(s->enc_norm);
    free(s->enc_dec_cos);
    memset(s, 0, sizeof *s);
}

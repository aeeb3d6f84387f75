/* The architecture table and its activation kernels. Each kernel is the
 * scalar loop of its definition (README "Architectures"); -O3 vectorizes
 * it, -ffp-contract=off keeps it exact. */
#include "saeval/arch.h"

#include <string.h>

#include "multiarch.h"

#define KERNELS(T, SUF)                                                                                   \
    SV_MULTIARCH static int64_t standard_##SUF(const T *h, int64_t wdt, int64_t j0, const sv_act_args *a, int32_t *oi, \
                                  double *ov)                                                             \
    {                                                                                                     \
        const T *b_enc = a->b_enc;                                                                        \
        int64_t c = 0;                                                                                    \
        for (int64_t j = 0; j < wdt; j++) {                                                               \
            T v = h[j] + b_enc[j];                                                                        \
            if (v > 0) { oi[c] = (int32_t)(j0 + j); ov[c++] = v; }                                        \
        }                                                                                                 \
        return c;                                                                                         \
    }                                                                                                     \
    SV_MULTIARCH static int64_t jumprelu_##SUF(const T *h, int64_t wdt, int64_t j0, const sv_act_args *a, int32_t *oi, \
                                  double *ov)                                                             \
    {                                                                                                     \
        const T *b_enc = a->b_enc, *th = a->threshold;                                                    \
        int64_t c = 0;                                                                                    \
        for (int64_t j = 0; j < wdt; j++) {                                                               \
            T v = h[j] + b_enc[j];                                                                        \
            if (v > th[j] && v > 0) { oi[c] = (int32_t)(j0 + j); ov[c++] = v; }                           \
        }                                                                                                 \
        return c;                                                                                         \
    }                                                                                                     \
    /* One GEMM serves both paths: r_mag scales whole latents, so                                       \
     * x'(W_enc * exp(r_mag)) = (x'W_enc) * exp(r_mag). */                                               \
    SV_MULTIARCH static int64_t gated_##SUF(const T *h, int64_t wdt, int64_t j0, const sv_act_args *a, int32_t *oi,    \
                               double *ov)                                                                \
    {                                                                                                     \
        const T *bg = a->b_gate, *er = a->exp_r_mag, *bm = a->b_mag;                                      \
        int64_t c = 0;                                                                                    \
        for (int64_t j = 0; j < wdt; j++)                                                                 \
            if (h[j] + bg[j] > 0) {                                                                       \
                T v = h[j] * er[j] + bm[j];                                                               \
                if (v > 0) { oi[c] = (int32_t)(j0 + j); ov[c++] = v; }                                    \
            }                                                                                             \
        return c;                                                                                         \
    }
KERNELS(float, f32)
KERNELS(double, f64)

#define W_ENC {"W_enc", SV_T_W_ENC, SV_SHAPE_IN_SAE}
#define B_ENC {"b_enc", SV_T_B_ENC, SV_SHAPE_SAE}
#define W_DEC {"W_dec", SV_T_W_DEC, SV_SHAPE_SAE_OUT}
#define B_DEC {"b_dec", SV_T_B_DEC, SV_SHAPE_OUT}
/* Loaded after the row's tensors when the alias sets SV_AF_SKIP. */
const sv_tensor_spec sv_arch_w_skip = {"W_skip", SV_T_W_SKIP, SV_SHAPE_OUT_IN};

const sv_arch_row sv_archs[] = {
    /* SAELens transcoders: the same encode and activation, a decoder of
     * width d_out, compared with the store's /targets (transcoder.py). */
    {SV_ARCH_STANDARD, "standard", {{"transcoder", SV_AF_TRANSCODER}, {"skip_transcoder", SV_AF_TRANSCODER | SV_AF_SKIP}, {NULL, 0}}, 0, {W_ENC, B_ENC, W_DEC, B_DEC, {NULL, 0, 0}}, standard_f32, standard_f64},
    {SV_ARCH_TOPK, "topk", {{NULL, 0}}, SV_AF_TOPK, {W_ENC, B_ENC, W_DEC, B_DEC, {NULL, 0, 0}}, NULL, NULL},
    /* batchtopk: how SAELens and dictionary_learning save BatchTopK SAEs for
     * inference, a JumpReLU whose threshold may be one global number. */
    {SV_ARCH_JUMPRELU, "jumprelu", {{"batchtopk", SV_AF_SCALAR_THRESHOLD}, {"jumprelu_transcoder", SV_AF_TRANSCODER},
                                    {"jumprelu_skip_transcoder", SV_AF_TRANSCODER | SV_AF_SKIP}, {NULL, 0}}, SV_AF_THRESHOLD,
     {W_ENC, B_ENC, W_DEC, B_DEC, {"threshold", SV_T_THRESHOLD, SV_SHAPE_SAE}, {NULL, 0, 0}}, jumprelu_f32, jumprelu_f64},
    {SV_ARCH_GATED, "gated", {{NULL, 0}}, SV_AF_GATED,
     {W_ENC, W_DEC, B_DEC, {"b_gate", SV_T_B_GATE, SV_SHAPE_SAE}, {"r_mag", SV_T_R_MAG, SV_SHAPE_SAE},
      {"b_mag", SV_T_B_MAG, SV_SHAPE_SAE}, {NULL, 0, 0}}, gated_f32, gated_f64},
    /* sparsify's older `signed` top-k (SAEBench's AbsTopK) and its `groupmax`:
     * both on forward.c's top-k path, which reads these flags. */
    {SV_ARCH_SIGNED_TOPK, "signed_topk", {{NULL, 0}}, SV_AF_TOPK | SV_AF_SIGNED | SV_AF_NOT_SAELENS,
     {W_ENC, B_ENC, W_DEC, B_DEC, {NULL, 0, 0}}, NULL, NULL},
    {SV_ARCH_GROUPMAX, "groupmax", {{NULL, 0}}, SV_AF_TOPK | SV_AF_GROUPMAX | SV_AF_NOT_SAELENS,
     {W_ENC, B_ENC, W_DEC, B_DEC, {NULL, 0, 0}}, NULL, NULL},
};
const int sv_n_archs = (int)(sizeof sv_archs / sizeof *sv_archs);

const sv_arch_row *sv_arch_row_of(sv_arch a)
{
    for (int i = 0; i < sv_n_archs; i++)
        if (sv_archs[i].id == a) return &sv_archs[i];
    return &sv_archs[0];
}

const char *sv_arch_name(sv_arch a)
{
    for (int i = 0; i < sv_n_archs; i++)
        if (sv_archs[i].id == a) return sv_archs[i].name;
    return "?";
}

const sv_arch_row *sv_arch_lookup(const char *name, unsigned *alias_flags)
{
    *alias_flags = 0;
    for (int i = 0; i < sv_n_archs; i++) {
        if (strcmp(name, sv_archs[i].name) == 0) return &sv_archs[i];
        for (const sv_arch_alias *al = sv_archs[i].aliases; al->name; al++)
            if (strcmp(name, al->name) == 0) {
                *alias_flags = al->flags;
                return &sv_archs[i];
            }
    }
    return NULL;
}

const char *sv_arch_list(void)
{
    return "standard, topk, jumprelu, gated, batchtopk, transcoder, skip_transcoder, jumprelu_transcoder or "
           "jumprelu_skip_transcoder";
}

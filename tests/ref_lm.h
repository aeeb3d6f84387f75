/* Naive double-precision references for the language-model tests, written
 * from the fixtures' README and SAELens's definitions, independent of
 * src/model*.c: a GPT-2 suffix in plain loops (weights read with the
 * safetensors reader only) and CE / KL sums from whole logits rows. */
#ifndef SAEVAL_TESTS_REF_LM_H
#define SAEVAL_TESTS_REF_LM_H
#include <stdint.h>

typedef struct ref_gpt2 ref_gpt2;
/* dir/config.json is not read: d 64, 4 heads, d_ff 256, vocab 512, 3 layers
 * (the fixture gpt2). */
ref_gpt2 *ref_gpt2_load(const char *dir);
void ref_gpt2_free(ref_gpt2 *g);
/* Logits [T][512] (caller frees) of the blocks L0.. + ln_f + tied head on
 * x0 [T][64], the input of block L0. */
double *ref_gpt2_logits(const ref_gpt2 *g, const double *x0, int64_t T, int64_t L0);

/* GPT-2 variants for configs the fixture does not exercise: scale
 * (0 = no 1/sqrt(head_dim)), divide scores by layer+1. */
double *ref_gpt2_logits_opt(const ref_gpt2 *g, const double *x0, int64_t T, int64_t L0, int scale, int inv_layer);

/* GPT-NeoX (the fixture pythia: d 64, 4 heads, d_ff 256, vocab 512, 3
 * layers, rotary dims rot of 16, base 10000, exact GELU, untied embed_out),
 * with parallel (1) or sequential (0) residual. */
typedef struct ref_neox ref_neox;
ref_neox *ref_neox_load(const char *dir);
void ref_neox_free(ref_neox *g);
double *ref_neox_logits(const ref_neox *g, const double *x0, int64_t T, int64_t L0, int parallel, int rot);

typedef struct {
    double ce_clean, ce_abl, kl_abl, ce[8], kl[8];
    int64_t nce, nkl;
} ref_lm_sums;
/* lg: [2 + K][T][V] logits of clean, ablated, and K spliced runs; masked
 * [T] (1 = special) or NULL. SAELens's rules: CE at t = -log p(ids[t+1])
 * where t is unmasked and t < T-1; KL(p_clean || p) at unmasked t. */
ref_lm_sums ref_lm_sum(double *const *lg, int K, const int32_t *ids, const uint8_t *masked, int64_t T, int64_t V);

#endif

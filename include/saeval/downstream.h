/* Downstream metrics of one sequence (issue 12, "model behaviour
 * preservation"): the model's suffix from the stored activation at the SAE's
 * hook, run clean, zero-ablated and spliced with each SAE's reconstruction,
 * as SAELens's evals.get_recons_loss / get_downstream_reconstruction_metrics
 * (sae_lens 6.18.0, evals.py lines 315-380 and 601-755) define them:
 *  - spliced: x_hat at unmasked positions, the stored activation at masked
 *    (special-token) positions (`torch.where(mask, new, act)`);
 *  - zero-ablated: zeros at every position, masked ones included;
 *  - CE at position t = -log p(token t+1), counted when token t is unmasked
 *    and t < T-1 (`mask[:, :-1]`); KL(p_clean || p_new) summed over the whole
 *    vocabulary, counted at every unmasked position.
 * Clean and ablated streams are shared by all K SAEs: K + 2 suffix passes
 * per sequence, every stream's statistics paired with the clean logits tile
 * by tile, so a stream's numbers do not depend on which other SAEs ran with
 * it (groups of SAEs give byte-identical sums). */
#ifndef SAEVAL_DOWNSTREAM_H
#define SAEVAL_DOWNSTREAM_H
#include <stdint.h>
#include "saeval/model.h"
#include "saeval/store.h"
#include "saeval/forward.h"

/* Checks a store against the model before anything runs (each a clear
 * SV_EINPUT naming the store and the field): a hook_name attribute that
 * names blocks.L.hook_resid_pre / hook_resid_post with L < n_layers,
 * d_in = d_model, /token_ids present, every sequence within the model's
 * positions. Token ids >= vocab are refused when a sequence is run. Sets
 * *hook. Reads nothing from the file. */
sv_rc sv_ds_check_store(const sv_store *s, const sv_model *m, sv_hook *hook);

/* Sums in double, accumulated position by position in order. */
typedef struct {
    int K;
    double ce_clean, ce_ablation, kl_ablation;
    double *ce_sae, *kl_sae;    /* [K] */
    int64_t ce_tokens, kl_tokens;
} sv_ds_sums;

sv_rc sv_ds_sums_init(sv_ds_sums *s, int K);
void sv_ds_sums_zero(sv_ds_sums *s);
void sv_ds_sums_free(sv_ds_sums *s);

/* Workspace streams for K SAEs within a budget of max_streams (>= 3):
 * SAEs go in walks of max_streams - 2, each walk with the clean reference,
 * the first also with the ablation. */
int sv_ds_streams(int K, int max_streams);

/* One sequence: ids [T] (< vocab), masked [T] (1 = special token, or NULL),
 * x [T][d] the stored activation at `hook` (resid_pre / resid_post),
 * xhat[k] [T][d] the SAE reconstructions in double. Adds to s. */
sv_rc sv_ds_sequence(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *ids, const uint8_t *masked,
                     const float *x, int K, const double *const *xhat, sv_ds_sums *s);

/* The same with the reconstructions computed here: each SAE's forward pass
 * (fw[k], initialised for that SAE) on the sequence's unmasked rows, in
 * order, in blocks of fw[k]->max_rows from the sequence start. */
sv_rc sv_ds_sequence_saes(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *ids, const uint8_t *masked,
                          const float *x, int K, sv_fwd *const *fw, sv_ds_sums *s);

/* Final metrics from summed counts (NaN where a denominator is 0):
 * ce_* = sums / ce_tokens, kl_* = sums / kl_tokens,
 * ce_loss_score = (ablation - sae) / (ablation - clean),
 * kl_div_score = (kl_ablation - kl_sae) / kl_ablation. */
typedef struct {
    double ce_loss_without_sae, ce_loss_with_sae, ce_loss_with_ablation, ce_loss_score;
    double kl_div_with_sae, kl_div_with_ablation, kl_div_score;
    int64_t ce_tokens, kl_tokens;
} sv_ds_metrics;
void sv_ds_finish(const sv_ds_sums *s, int k, sv_ds_metrics *m);

#endif

/* Downstream metrics of one sequence: clean / ablated / spliced suffix
 * passes through the model and their CE / KL sums (see downstream.h). */
#include "saeval/downstream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sv_rc sv_ds_sums_init(sv_ds_sums *s, int K)
{
    memset(s, 0, sizeof *s);
    s->K = K;
    s->ce_sae = sv_calloc((size_t)(K > 0 ? K : 1), sizeof(double));
    s->kl_sae = sv_calloc((size_t)(K > 0 ? K : 1), sizeof(double));
    if (!s->ce_sae || !s->kl_sae) {
        sv_ds_sums_free(s);
        return SV_EINTERNAL;
    }
    return SV_OK;
}

void sv_ds_sums_zero(sv_ds_sums *s)
{
    s->ce_clean = s->ce_ablation = s->kl_ablation = 0;
    s->ce_tokens = s->kl_tokens = 0;
    for (int k = 0; k < s->K; k++) s->ce_sae[k] = s->kl_sae[k] = 0;
}

void sv_ds_sums_free(sv_ds_sums *s)
{
    free(s->ce_sae);
    free(s->kl_sae);
    memset(s, 0, sizeof *s);
}

int sv_ds_streams(int K, int max_streams)
{
    return K + 2 < max_streams ? K + 2 : max_streams;
}

/* dst[T][d] in the compute precision: src (double, NULL = zeros) where
 * unmasked, the stored activation where masked (if keep_masked). */
static void fill(void *dst, int precision, const float *x, const double *src, const uint8_t *masked, int keep_masked,
                 int64_t T, int64_t d)
{
    for (int64_t t = 0; t < T; t++) {
        const int stored = keep_masked && masked && masked[t];
        for (int64_t i = 0; i < d; i++) {
            const int64_t j = t * d + i;
            const double v = stored ? (double)x[j] : src ? src[j] : 0.0;
            if (precision == 64) ((double *)dst)[j] = v;
            else ((float *)dst)[j] = (float)v; /* SAELens: .to(activations.dtype) */
        }
    }
}

sv_rc sv_ds_sequence(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *ids, const uint8_t *masked,
                     const float *x, int K, const double *const *xhat, sv_ds_sums *s)
{
    const sv_model *m = ws->m;
    const int64_t d = m->cfg.d_model;
    const int prec = m->precision;
    const size_t rs = prec == 64 ? sizeof(double) : sizeof(float);
    if (ws->max_streams < 3) return sv_fail(SV_EINTERNAL, "downstream: workspace holds %d streams, needs 3", ws->max_streams);
    if (T < 1 || T > ws->max_T) return sv_fail(SV_EINTERNAL, "downstream: %lld tokens", (long long)T);
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->cfg.vocab)
            return sv_fail(SV_EINPUT, "token id %lld at position %lld is outside the vocabulary of %s (%lld)",
                           (long long)ids[t], (long long)t, m->dir, (long long)m->cfg.vocab);
    const int per = ws->max_streams - 2; /* SAEs per walk */
    const int nmax = 1 + (K < per ? K : per); /* spliced streams per walk, ablation included */
    void **res = sv_calloc((size_t)nmax + 1, sizeof(void *));
    int32_t *tgt = sv_malloc((size_t)T * sizeof(int32_t));
    double *nll = sv_malloc((size_t)(nmax + 1) * (size_t)T * sizeof(double));
    double *kl = sv_malloc((size_t)nmax * (size_t)T * sizeof(double));
    sv_rc rc = (res && tgt && nll && kl) ? SV_OK : SV_EINTERNAL;
    for (int i = 0; rc == SV_OK && i <= nmax; i++)
        if (!(res[i] = sv_malloc((size_t)(T * d) * rs))) rc = SV_EINTERNAL;
    if (rc != SV_OK) goto out;
    for (int64_t t = 0; t < T; t++) tgt[t] = t + 1 < T ? ids[t + 1] : -1;
    for (int64_t j = 0; j < T * d; j++) { /* clean: the stored activation itself */
        if (prec == 64) ((double *)res[0])[j] = x[j];
        else ((float *)res[0])[j] = x[j];
    }
    /* Walk g: clean + (ablation if g == 0) + SAEs [k0, k1). */
    for (int k0 = 0, g = 0; rc == SV_OK && (k0 < K || g == 0); g++) {
        const int abl = g == 0, k1 = k0 + per < K ? k0 + per : K;
        int n = 0;
        if (abl) fill(res[1 + n++], prec, x, NULL, masked, 0, T, d); /* zeros everywhere, masked included */
        for (int k = k0; k < k1; k++) fill(res[1 + n++], prec, x, xhat[k], masked, 1, T, d);
        const int took = n - abl;
        rc = sv_model_ce_kl(ws, hook, T, tgt, n, (const void *const *)res, nll, kl);
        if (rc != SV_OK) break;
        /* Sums position by position; SAELens's masks: CE where token t is
         * unmasked and t < T-1, KL where token t is unmasked. */
        for (int64_t t = 0; t < T; t++) {
            const int keep = !(masked && masked[t]);
            if (!keep) continue;
            if (t + 1 < T) {
                if (abl) {
                    s->ce_clean += nll[t];
                    s->ce_ablation += nll[(size_t)T + t];
                    s->ce_tokens++;
                }
                for (int i = 0; i < took; i++) s->ce_sae[k0 + i] += nll[(size_t)(1 + abl + i) * T + t];
            }
            if (abl) {
                s->kl_ablation += kl[t];
                s->kl_tokens++;
            }
            for (int i = 0; i < took; i++) s->kl_sae[k0 + i] += kl[(size_t)(abl + i) * T + t];
        }
        k0 = k1;
    }
out:
    for (int i = 0; res && i <= nmax; i++) free(res[i]);
    free(res);
    free(tgt);
    free(nll);
    free(kl);
    return rc;
}

sv_rc sv_ds_sequence_saes(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *ids, const uint8_t *masked,
                          const float *x, int K, sv_fwd *const *fw, sv_ds_sums *s)
{
    const int64_t d = ws->m->cfg.d_model;
    sv_rc rc = SV_OK;
    double **xh = sv_calloc((size_t)(K > 0 ? K : 1), sizeof(double *));
    float *xe = sv_malloc((size_t)(T * d) * sizeof(float) + 1);
    int64_t *row = sv_malloc((size_t)T * sizeof(int64_t) + 1);
    if (!xh || !xe || !row) rc = SV_EINTERNAL;
    int64_t ne = 0; /* unmasked rows, gathered in order */
    for (int64_t t = 0; rc == SV_OK && t < T; t++)
        if (!(masked && masked[t])) {
            memcpy(xe + ne * d, x + t * d, (size_t)d * sizeof(float));
            row[ne++] = t;
        }
    for (int k = 0; rc == SV_OK && k < K; k++) {
        if (fw[k]->sae->cfg.d_in != d) {
            rc = sv_fail(SV_EINPUT, "%s: d_in = %lld but the model %s has d_model = %lld", fw[k]->sae->dir,
                         (long long)fw[k]->sae->cfg.d_in, ws->m->dir, (long long)d);
            break;
        }
        if (fw[k]->sae->cfg.transcoder || sv_cfg_d_out(&fw[k]->sae->cfg) != d) {
            /* Its output belongs at another hook: splicing it here would be wrong. */
            rc = sv_fail(SV_EINPUT, "%s: transcoder: splicing a transcoder into the model %s is not supported",
                         fw[k]->sae->dir, ws->m->dir);
            break;
        }
        if (!(xh[k] = sv_calloc((size_t)(T * d), sizeof(double)))) {
            rc = SV_EINTERNAL;
            break;
        }
        const int64_t R = fw[k]->max_rows;
        for (int64_t r0 = 0; rc == SV_OK && r0 < ne; r0 += R) {
            const int64_t nb = ne - r0 < R ? ne - r0 : R;
            if ((rc = sv_fwd_run(fw[k], xe + r0 * d, nb)) != SV_OK) break;
            for (int64_t r = 0; r < nb; r++)
                memcpy(xh[k] + row[r0 + r] * d, fw[k]->xhat + r * d, (size_t)d * sizeof(double));
        }
    }
    if (rc == SV_OK) rc = sv_ds_sequence(ws, hook, T, ids, masked, x, K, (const double *const *)xh, s);
    for (int k = 0; xh && k < K; k++) free(xh[k]);
    free(xh);
    free(xe);
    free(row);
    return rc;
}

sv_rc sv_ds_check_store(const sv_store *s, const sv_model *m, sv_hook *hook)
{
    if (!s->hook_name)
        return sv_fail(SV_EINPUT, "%s: attribute hook_name is missing: the downstream metrics need the hook the "
                       "activations were taken at", s->path);
    sv_rc rc = sv_hook_parse(hook, s->hook_name, &m->cfg);
    if (rc != SV_OK) {
        char msg[512]; /* sv_fail formats into the buffer sv_errmsg() returns */
        snprintf(msg, sizeof msg, "%s", sv_errmsg());
        return sv_fail(SV_EINPUT, "%s: attribute %s", s->path, msg);
    }
    if (hook->kind != SV_HOOK_RESID_PRE && hook->kind != SV_HOOK_RESID_POST)
        return sv_fail(SV_EINPUT, "%s: attribute hook_name '%s': the downstream metrics splice only at "
                       "blocks.L.hook_resid_pre or blocks.L.hook_resid_post", s->path, s->hook_name);
    if (s->d_in != m->cfg.d_model)
        return sv_fail(SV_EINPUT, "%s: /activations has d_in = %lld but the model %s has d_model = %lld", s->path,
                       (long long)s->d_in, m->dir, (long long)m->cfg.d_model);
    if (!s->has_token_ids)
        return sv_fail(SV_EINPUT, "%s: /token_ids is missing: the downstream metrics need the tokens", s->path);
    for (int64_t q = 0; q < s->n_seq; q++) {
        const int64_t len = s->seq_offsets[q + 1] - s->seq_offsets[q];
        if (len > m->cfg.max_pos)
            return sv_fail(SV_EINPUT, "%s: sequence %lld has %lld tokens, more than the model's %lld positions "
                           "(sequences must be the model's context windows, from position 0)", s->path, (long long)q,
                           (long long)len, (long long)m->cfg.max_pos);
    }
    return SV_OK;
}

void sv_ds_finish(const sv_ds_sums *s, int k, sv_ds_metrics *m)
{
    const double nc = s->ce_tokens ? (double)s->ce_tokens : NAN, nk = s->kl_tokens ? (double)s->kl_tokens : NAN;
    m->ce_tokens = s->ce_tokens;
    m->kl_tokens = s->kl_tokens;
    m->ce_loss_without_sae = s->ce_clean / nc;
    m->ce_loss_with_sae = s->ce_sae[k] / nc;
    m->ce_loss_with_ablation = s->ce_ablation / nc;
    m->kl_div_with_sae = s->kl_sae[k] / nk;
    m->kl_div_with_ablation = s->kl_ablation / nk;
    const double cd = m->ce_loss_with_ablation - m->ce_loss_without_sae;
    m->ce_loss_score = cd != 0 ? (m->ce_loss_with_ablation - m->ce_loss_with_sae) / cd : NAN;
    m->kl_div_score =
        m->kl_div_with_ablation != 0 ? (m->kl_div_with_ablation - m->kl_div_with_sae) / m->kl_div_with_ablation : NAN;
}

/* Transformer forward ops; the bodies live in model_ops_impl.h, compiled
 * for float (sgemm) and double (dgemm). Public entry points check their
 * inputs and dispatch on the model's precision. */
#include "model_impl.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL float
#define FN(name) name##_f32
#define GEMM cblas_sgemm
#include "model_ops_impl.h"
#undef REAL
#undef FN
#undef GEMM

#define REAL double
#define FN(name) name##_f64
#define GEMM cblas_dgemm
#include "model_ops_impl.h"
#undef REAL
#undef FN
#undef GEMM

static sv_rc check_T(const sv_model_ws *ws, int64_t T)
{
    if (T < 1 || T > ws->max_T)
        return sv_fail(SV_EINTERNAL, "model: sequence of %lld tokens outside the scratch for 1..%lld", (long long)T,
                       (long long)ws->max_T);
    if (T > ws->m->cfg.max_pos)
        return sv_fail(SV_EINPUT, "%s: sequence of %lld tokens is longer than the model's %lld positions "
                       "(max_position_embeddings / n_positions)", ws->m->dir, (long long)T,
                       (long long)ws->m->cfg.max_pos);
    return SV_OK;
}

sv_rc sv_model_prefix_multi(sv_model_ws *ws, const int32_t *ids, int64_t T, int n, const sv_hook *hooks,
                            void *const *out)
{
    sv_rc rc = check_T(ws, T);
    if (rc != SV_OK) return rc;
    const sv_model *m = ws->m;
    if (n < 1) return sv_fail(SV_EINTERNAL, "model: prefix without a hook");
    for (int i = 0; i < n; i++)
        if (hooks[i].layer < 0 || hooks[i].layer >= m->cfg.n_layers)
            return sv_fail(SV_EINPUT, "%s: hook layer %lld beyond the model's %lld layers", m->dir,
                           (long long)hooks[i].layer, (long long)m->cfg.n_layers);
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= m->cfg.vocab)
            return sv_fail(SV_EINPUT, "token id %lld at position %lld is outside the vocabulary of %s (%lld)",
                           (long long)ids[t], (long long)t, m->dir, (long long)m->cfg.vocab);
    if (m->precision == 64) prefix_f64(ws, ids, T, n, hooks, out);
    else prefix_f32(ws, ids, T, n, hooks, out);
    return SV_OK;
}

sv_rc sv_model_prefix(sv_model_ws *ws, const int32_t *ids, int64_t T, sv_hook hook, void *out)
{
    return sv_model_prefix_multi(ws, ids, T, 1, &hook, &out);
}

sv_rc sv_model_suffix(sv_model_ws *ws, sv_hook hook, const void *resid, int64_t T, void *normed)
{
    sv_rc rc = check_T(ws, T);
    if (rc != SV_OK) return rc;
    const sv_model *m = ws->m;
    if (hook.kind != SV_HOOK_RESID_PRE && hook.kind != SV_HOOK_RESID_POST)
        return sv_fail(SV_EINPUT, "%s: the suffix pass starts only at hook_resid_pre or hook_resid_post "
                       "(a reconstruction of an attention or MLP output would need the residual beside it)", m->dir);
    if (hook.layer < 0 || hook.layer >= m->cfg.n_layers)
        return sv_fail(SV_EINPUT, "%s: hook layer %lld beyond the model's %lld layers", m->dir, (long long)hook.layer,
                       (long long)m->cfg.n_layers);
    if (m->precision == 64) suffix_f64(ws, hook, resid, T, normed);
    else suffix_f32(ws, hook, resid, T, normed);
    return SV_OK;
}

sv_rc sv_model_logit_tiles(sv_model_ws *ws, int ns, const void *const *normed, int64_t T, sv_logit_tile_fn fn,
                           void *ctx)
{
    sv_rc rc = check_T(ws, T);
    if (rc != SV_OK) return rc;
    if (ns < 1 || ns > ws->max_streams)
        return sv_fail(SV_EINTERNAL, "model: %d logit streams, scratch holds %d", ns, ws->max_streams);
    if (ws->m->precision == 64) logit_tiles_f64(ws, ns, normed, T, fn, ctx);
    else logit_tiles_f32(ws, ns, normed, T, fn, ctx);
    return SV_OK;
}

sv_rc sv_lm_acc_init(sv_lm_acc *a, int64_t T, int with_kl)
{
    memset(a, 0, sizeof *a);
    a->T = T;
    a->kl = with_kl;
    const size_t n = (size_t)(T > 0 ? T : 1);
    a->mx = sv_malloc(n * sizeof(double));
    a->se = sv_calloc(n, sizeof(double));
    a->tgt = sv_malloc(n * sizeof(double));
    if (with_kl) {
        a->rmx = sv_malloc(n * sizeof(double));
        a->rse = sv_calloc(n, sizeof(double));
        a->ks = sv_calloc(n, sizeof(double));
    }
    if (!a->mx || !a->se || !a->tgt || (with_kl && (!a->rmx || !a->rse || !a->ks))) {
        sv_lm_acc_free(a);
        return SV_EINTERNAL;
    }
    for (int64_t t = 0; t < T; t++) {
        a->mx[t] = -INFINITY;
        a->tgt[t] = NAN;
        if (with_kl) a->rmx[t] = -INFINITY;
    }
    return SV_OK;
}

void sv_lm_acc_free(sv_lm_acc *a)
{
    free(a->mx);
    free(a->se);
    free(a->tgt);
    free(a->rmx);
    free(a->rse);
    free(a->ks);
    memset(a, 0, sizeof *a);
}

void sv_lm_acc_tile(sv_lm_acc *a, int precision, const void *tile, const void *ref, int64_t v0, int64_t vt,
                    const int32_t *targets, int threads)
{
    if (precision == 64) acc_tile_f64(a, tile, ref, v0, vt, targets, threads);
    else acc_tile_f32(a, tile, ref, v0, vt, targets, threads);
}

void sv_lm_acc_result(const sv_lm_acc *a, double *lse, double *nll, double *kl)
{
    for (int64_t t = 0; t < a->T; t++) {
        const double l = a->mx[t] + log(a->se[t]);
        if (lse) lse[t] = l;
        if (nll) nll[t] = l - a->tgt[t];
        /* KL(p_ref || p) = sum p_ref (zr - z) - lse_ref + lse */
        if (kl) kl[t] = a->kl ? a->ks[t] / a->rse[t] - (a->rmx[t] + log(a->rse[t])) + l : NAN;
    }
}

void sv_lm_acc_tiles(sv_lm_acc *const *a, int n, int precision, const void *const *tiles, int64_t v0, int64_t vt,
                     const int32_t *targets, int threads, double *rowbuf)
{
    if (precision == 64) acc_tiles_f64(a, n, (const double *const *)tiles, v0, vt, targets, threads, rowbuf);
    else acc_tiles_f32(a, n, (const float *const *)tiles, v0, vt, targets, threads, rowbuf);
}

typedef struct {
    sv_lm_acc **acc;
    int n, precision, threads;
    const int32_t *targets;
    double *rowbuf;
} ce_ctx;

static int ce_tile(void *vctx, int64_t v0, int64_t vt, int64_t T, const void *const *tiles)
{
    (void)T;
    ce_ctx *c = vctx;
    sv_lm_acc_tiles(c->acc, c->n + 1, c->precision, tiles, v0, vt, c->targets, c->threads, c->rowbuf);
    return 0;
}

sv_rc sv_model_ce_kl(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *targets, int n,
                     const void *const *resid, double *nll, double *kl)
{
    if (n < 0 || n + 1 > ws->max_streams)
        return sv_fail(SV_EINTERNAL, "model: %d spliced streams, scratch holds %d in all", n, ws->max_streams);
    const sv_model *m = ws->m;
    for (int64_t t = 0; t < T; t++)
        if (targets[t] < -1 || targets[t] >= m->cfg.vocab)
            return sv_fail(SV_EINPUT, "token id %lld at position %lld is outside the vocabulary of %s (%lld)",
                           (long long)targets[t], (long long)t + 1, m->dir, (long long)m->cfg.vocab);
    const size_t rs = m->precision == 64 ? sizeof(double) : sizeof(float);
    const void *normed[n + 1];
    for (int s = 0; s <= n; s++) {
        normed[s] = (char *)ws->normed + (size_t)s * (size_t)(ws->max_T * m->cfg.d_model) * rs;
        sv_rc rc = sv_model_suffix(ws, hook, resid[s], T, (void *)normed[s]);
        if (rc != SV_OK) return rc;
    }
    sv_lm_acc acc[n + 1], *ap[n + 1];
    memset(acc, 0, sizeof acc);
    sv_rc rc = SV_OK;
    for (int s = 0; s <= n && rc == SV_OK; s++) {
        ap[s] = &acc[s];
        rc = sv_lm_acc_init(&acc[s], T, s > 0);
    }
    double *rowbuf = rc == SV_OK ? sv_malloc((size_t)ws->threads * SV_MODEL_VTILE * sizeof(double)) : NULL;
    if (rc == SV_OK && !rowbuf) rc = SV_EINTERNAL;
    if (rc == SV_OK) {
        ce_ctx c = {ap, n, m->precision, ws->threads, targets, rowbuf};
        rc = sv_model_logit_tiles(ws, n + 1, normed, T, ce_tile, &c);
    }
    free(rowbuf);
    if (rc == SV_OK)
        for (int s = 0; s <= n; s++) sv_lm_acc_result(&acc[s], NULL, nll + (size_t)s * T, s ? kl + (size_t)(s - 1) * T : NULL);
    for (int s = 0; s <= n; s++) sv_lm_acc_free(&acc[s]);
    return rc;
}

void sv_model_gemm_only(sv_model_ws *ws, int64_t T, int ns)
{
    if (ws->m->precision == 64) gemm_only_f64(ws, T, ns, 1);
    else gemm_only_f32(ws, T, ns, 1);
}

void sv_model_gemm_layers_only(sv_model_ws *ws, int64_t T)
{
    if (ws->m->precision == 64) gemm_only_f64(ws, T, 1, 0);
    else gemm_only_f32(ws, T, 1, 0);
}

double sv_model_layer_flops(const sv_model_cfg *c, int64_t T)
{
    return sv_model_suffix_flops(c, T) - 2.0 * (double)T * (double)c->d_model * (double)c->vocab;
}

double sv_model_suffix_flops(const sv_model_cfg *c, int64_t T)
{
    const double d = (double)c->d_model, f = (double)c->d_ff, hq = (double)(c->n_heads * c->head_dim);
    const double hk = (double)(c->n_kv_heads * c->head_dim);
    const double per_layer = d * (hq + 2 * hk) + hq * d + (c->gated_mlp ? 3 : 2) * d * f;
    return 2.0 * (double)T * ((double)c->n_layers * per_layer + d * (double)c->vocab);
}

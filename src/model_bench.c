/* The downstream case of `saeval bench` (see model_bench.h). */
#include "saeval/model_bench.h"
#include "saeval/downstream.h"
#include "saeval/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

sv_rc sv_model_bench(int quick, int repeat, sv_model_bench_result *r)
{
    memset(r, 0, sizeof *r);
    if (repeat < 1) repeat = 1;
    if (repeat > 64) repeat = 64;
    /* A Llama-shaped model: GQA, gated MLP; the quick one is tiny. */
    sv_model_cfg c;
    const char *j = quick ? "{\"model_type\":\"llama\",\"hidden_size\":128,\"intermediate_size\":384,"
                            "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                            "\"vocab_size\":4096,\"max_position_embeddings\":1024}"
                          : "{\"model_type\":\"llama\",\"hidden_size\":768,\"intermediate_size\":2048,"
                            "\"num_hidden_layers\":4,\"num_attention_heads\":12,\"num_key_value_heads\":4,"
                            "\"vocab_size\":32768,\"max_position_embeddings\":1024}";
    sv_rc rc = sv_model_cfg_parse(&c, j, strlen(j), "bench/config.json");
    if (rc != SV_OK) return rc;
    const int64_t T = quick ? 64 : 256, d = c.d_model;
    const int K = 8;
    sv_model m;
    if ((rc = sv_model_random(&m, &c, 32, 7)) != SV_OK) return rc;
    sv_model_ws ws;
    float *x = NULL;
    double *xh = NULL, *nll = NULL, *kl = NULL, *ts = NULL;
    int32_t *ids = NULL;
    sv_ds_sums s;
    memset(&s, 0, sizeof s);
    if ((rc = sv_model_ws_init(&ws, &m, T, K + 2)) != SV_OK) {
        sv_model_free(&m);
        return rc;
    }
    x = sv_malloc((size_t)(T * d) * sizeof(float));
    xh = sv_malloc((size_t)(T * d) * sizeof(double));
    nll = sv_malloc((size_t)(2 * T) * sizeof(double));
    kl = sv_malloc((size_t)T * sizeof(double));
    ids = sv_malloc((size_t)T * sizeof(int32_t));
    ts = sv_malloc((size_t)(4 * repeat) * sizeof(double));
    if (!x || !xh || !nll || !kl || !ids || !ts || sv_ds_sums_init(&s, K) != SV_OK) {
        rc = SV_EINTERNAL;
        goto out;
    }
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919) % c.vocab);
    if ((rc = sv_model_prefix(&ws, ids, T, (sv_hook){SV_HOOK_RESID_PRE, 1}, x)) != SV_OK) goto out;
    for (int64_t i = 0; i < T * d; i++) xh[i] = x[i] * 0.9;
    const void *res[2] = {x, x};
    const double *xs[8] = {xh, xh, xh, xh, xh, xh, xh, xh};
    const sv_hook h0 = {SV_HOOK_RESID_PRE, 0}, h1 = {SV_HOOK_RESID_PRE, 1};
    for (int rep = 0; rep < repeat; rep++) {
        double t0 = now_s();
        if ((rc = sv_model_ce_kl(&ws, h0, T, ids, 1, res, nll, kl)) != SV_OK) goto out;
        ts[rep] = now_s() - t0;
        t0 = now_s();
        sv_model_gemm_only(&ws, T, 2);
        ts[repeat + rep] = now_s() - t0;
        t0 = now_s();
        if ((rc = sv_ds_sequence(&ws, h1, T, ids, NULL, x, 1, xs, &s)) != SV_OK) goto out;
        ts[2 * repeat + rep] = now_s() - t0;
        t0 = now_s();
        if ((rc = sv_ds_sequence(&ws, h1, T, ids, NULL, x, K, xs, &s)) != SV_OK) goto out;
        ts[3 * repeat + rep] = now_s() - t0;
    }
    for (int q = 0; q < 4; q++) qsort(ts + q * repeat, (size_t)repeat, sizeof(double), cmp_d);
    r->T = T;
    r->d_model = d;
    r->n_layers = c.n_layers;
    r->vocab = c.vocab;
    r->suffix_s = ts[repeat / 2];
    r->gemm_s = ts[repeat + repeat / 2];
    r->ds1_s = ts[2 * repeat + repeat / 2];
    r->ds8_s = ts[3 * repeat + repeat / 2];
    const double fl = 2 * sv_model_suffix_flops(&c, T);
    r->tokens_per_s = 2.0 * (double)T / r->suffix_s;
    r->gflops = fl / r->suffix_s * 1e-9;
    r->gemm_gflops = fl / r->gemm_s * 1e-9;
    r->ratio = r->gemm_s / r->suffix_s;
    r->shared_ratio = r->ds8_s / r->ds1_s;
out:
    free(x);
    free(xh);
    free(nll);
    free(kl);
    free(ids);
    free(ts);
    sv_ds_sums_free(&s);
    sv_model_ws_free(&ws);
    sv_model_free(&m);
    return rc;
}

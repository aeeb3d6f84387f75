/* The downstream case of `saeval bench` (see model_bench.h). */
#include "saeval/model_bench.h"
#include "saeval/downstream.h"
#include "saeval/model.h"
#include "saeval/collect.h"
#include "saeval/fsutil.h"

#include <hdf5.h>

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

static const char *bench_model_json(int quick)
{
    return quick ? "{\"model_type\":\"llama\",\"hidden_size\":128,\"intermediate_size\":384,"
                   "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                   "\"vocab_size\":4096,\"max_position_embeddings\":1024}"
                 : "{\"model_type\":\"llama\",\"hidden_size\":768,\"intermediate_size\":2048,"
                   "\"num_hidden_layers\":4,\"num_attention_heads\":12,\"num_key_value_heads\":4,"
                   "\"vocab_size\":32768,\"max_position_embeddings\":1024}";
}

sv_rc sv_model_bench(int quick, int repeat, sv_model_bench_result *r)
{
    memset(r, 0, sizeof *r);
    if (repeat < 1) repeat = 1;
    if (repeat > 64) repeat = 64;
    /* A Llama-shaped model: GQA, gated MLP; the quick one is tiny. */
    sv_model_cfg c;
    const char *j = bench_model_json(quick);
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

/* Token ids: n_seq sequences of T tokens (context_size), rank 0 writes. */
static sv_rc write_tokens(const char *path, int64_t n_seq, int64_t T, int64_t vocab)
{
    const hsize_t n = (hsize_t)(n_seq * T), one = 1;
    int64_t *ids = sv_malloc((size_t)n * sizeof *ids);
    if (!ids) return SV_EINTERNAL;
    for (hsize_t i = 0; i < n; i++) ids[i] = (int64_t)((i * 7919 + 13) % (hsize_t)vocab);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(1, &n, NULL), as = H5Screate_simple(1, &one, NULL);
    hid_t d = f >= 0 ? H5Dcreate2(f, "token_ids", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    hid_t a = f >= 0 ? H5Acreate2(f, "context_size", H5T_STD_I64LE, as, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = d >= 0 && a >= 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0 &&
             H5Awrite(a, H5T_NATIVE_INT64, &T) >= 0;
    if (a >= 0) H5Aclose(a);
    if (d >= 0) H5Dclose(d);
    H5Sclose(as);
    H5Sclose(sp);
    if (f >= 0 && H5Fclose(f) < 0) ok = 0;
    free(ids);
    return ok ? SV_OK : sv_fail(SV_EINTERNAL, "%s: cannot write the benchmark's token ids", path);
}

sv_rc sv_collect_bench(const char *dir, int quick, int repeat, MPI_Comm comm, sv_collect_bench_result *r)
{
    memset(r, 0, sizeof *r);
    if (repeat < 1) repeat = 1;
    if (repeat > 64) repeat = 64;
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const char *j = bench_model_json(quick);
    const int64_t T = quick ? 64 : 256, n_seq = quick ? 4 : 16;
    sv_model_cfg c;
    sv_rc rc = sv_model_cfg_parse(&c, j, strlen(j), "bench/config.json");
    char *mdir = sv_path_join(dir, "collect_model"), *tok = sv_path_join(dir, "collect_tokens.h5");
    char *store = sv_path_join(dir, "collect_store.h5");
    char hook[64];
    snprintf(hook, sizeof hook, "blocks.%lld.hook_resid_post", (long long)(c.n_layers - 1));
    if (rc == SV_OK && (!mdir || !tok || !store)) rc = SV_EINTERNAL;
    if (rc == SV_OK && rank == 0) {
        rc = sv_model_write_random(mdir, j, 11);
        if (rc == SV_OK) rc = write_tokens(tok, n_seq, T, c.vocab);
    }
    int bad = rc != SV_OK, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    if (any && rc == SV_OK) rc = sv_fail(SV_EINTERNAL, "collect bench: rank 0 could not write its inputs");
    double *ts = sv_calloc((size_t)(2 * repeat), sizeof(double));
    if (rc == SV_OK && !ts) rc = SV_EINTERNAL;
    const char *hooks[1] = {hook}, *outs[1] = {store};
    for (int rep = 0; rep < repeat && rc == SV_OK; rep++) {
        sv_collect_opts o = {0};
        o.model_dir = mdir;
        o.tokens_path = tok;
        o.n_hooks = 1;
        o.hooks = hooks;
        o.out_paths = outs;
        o.precision = 32;
        o.force = 1;
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        rc = sv_collect(&o, comm);
        ts[rep] = MPI_Wtime() - t0;
    }
    /* The limit: the layers' GEMMs on each rank's share of whole
     * sequences (contiguous, balanced by tokens: equal lengths here). */
    if (rc == SV_OK) {
        sv_model m;
        sv_model_ws ws;
        rc = sv_model_load(&m, mdir, 32);
        if (rc == SV_OK && (rc = sv_model_ws_init(&ws, &m, T, 1)) != SV_OK) sv_model_free(&m);
        if (rc == SV_OK) {
            const int64_t mine = n_seq / P + (rank < n_seq % P);
            for (int rep = 0; rep < repeat; rep++) {
                MPI_Barrier(comm);
                double t0 = MPI_Wtime();
                for (int64_t s = 0; s < mine; s++) sv_model_gemm_layers_only(&ws, T);
                double mt = MPI_Wtime() - t0;
                MPI_Allreduce(&mt, &ts[repeat + rep], 1, MPI_DOUBLE, MPI_MAX, comm);
            }
            sv_model_ws_free(&ws);
            sv_model_free(&m);
        }
    }
    if (rc == SV_OK) {
        qsort(ts, (size_t)repeat, sizeof(double), cmp_d);
        qsort(ts + repeat, (size_t)repeat, sizeof(double), cmp_d);
        r->tokens = n_seq * T;
        r->d_model = c.d_model;
        r->n_layers = c.n_layers;
        r->collect_s = ts[repeat / 2];
        r->gemm_s = ts[repeat + repeat / 2];
        r->tokens_per_s = (double)r->tokens / r->collect_s;
        r->ratio = r->gemm_s / r->collect_s;
    }
    free(ts);
    free(mdir);
    free(tok);
    free(store);
    return rc;
}

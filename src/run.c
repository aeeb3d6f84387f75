/* The evaluation driver.
 *
 * Work units are legacy batches: consecutive groups of
 * legacy_batch_sequences whole sequences. They are fixed by the data, never
 * by the rank count, and a unit is also exactly the batch over which
 * explained_variance_legacy and relative_reconstruction_bias are defined,
 * so a unit's partial sums are complete on their own. Ranks own contiguous
 * runs of units; double partials merge through the fixed tree of reduce.h
 * and integer counts through MPI_SUM, so result files do not depend on the
 * number of ranks. */
#include "saeval/run.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saeval/config.h"
#include "saeval/forward.h"
#include "saeval/geometry.h"
#include "saeval/output.h"
#include "saeval/reduce.h"
#include "saeval/sae.h"
#include "saeval/store.h"

/* Double partial sums per (SAE, unit), in the tree vector after the
 * dataset's own [sum_x (d_in), sum ||x||^2]. */
enum { P_SSE, P_COS, P_NORM_IN, P_NORM_OUT, P_RATIO, P_L1, P_LEGACY, P_RRB, P_COUNT };

typedef struct {
    sv_sae sae;
    char *id;
    sv_fwd fwd;
    int64_t *ints;     /* [sum_l0, rrb_batches, firing[m], fired_seq[m], hist[m+1]] */
    int64_t *last_seq; /* per latent: last global sequence it fired in */
    sv_geometry geom;  /* weight geometry, complete on rank 0 */
} sv_slot;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sv_rc sv_agree(sv_rc rc, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    int mine[2] = {(int)rc, rc != SV_OK ? rank : P}, worst[2];
    MPI_Allreduce(&mine[0], &worst[0], 1, MPI_INT, MPI_MAX, comm);
    MPI_Allreduce(&mine[1], &worst[1], 1, MPI_INT, MPI_MIN, comm);
    if (worst[0] == SV_OK) return SV_OK;
    char msg[2048];
    if (rank == worst[1]) snprintf(msg, sizeof msg, "%s", sv_errmsg());
    MPI_Bcast(msg, sizeof msg, MPI_CHAR, worst[1], comm);
    if (rank == 0) {
        fprintf(stderr, "saeval: error: %s\n", msg);
        fflush(stderr);
    }
    sv_fail((sv_rc)worst[0], "%s", msg);
    return (sv_rc)worst[0];
}

sv_rc sv_sae_ids(char **paths, int n, char **ids)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(paths[i], paths[j]) == 0)
                return sv_fail(SV_EINPUT, "%s: SAE listed twice in the config", paths[i]);
    }
    for (int i = 0; i < n; i++) {
        /* Grow the suffix one path component at a time until no other
         * path ends with the same components. */
        const char *p = paths[i];
        const char *start = p + strlen(p);
        for (;;) {
            const char *q = start;
            if (q > p) q--;
            while (q > p && q[-1] != '/') q--;
            start = q;
            size_t sl = strlen(start);
            int clash = 0;
            for (int j = 0; j < n && !clash; j++) {
                if (j == i) continue;
                size_t lj = strlen(paths[j]);
                if (lj >= sl && strcmp(paths[j] + lj - sl, start) == 0 &&
                    (lj == sl || paths[j][lj - sl - 1] == '/'))
                    clash = 1;
            }
            if (!clash || start == p) break;
            start--; /* step over the slash */
        }
        ids[i] = sv_strdup(start);
        if (!ids[i]) return SV_EINTERNAL;
    }
    return SV_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const sv_config *cfg;
    sv_store *st;
    sv_slot *slots;
    int n_slots;
    int64_t *mask_ids; /* sorted special + excluded ids */
    int n_mask;
    /* per-rank buffers */
    float *x, *xe;
    int64_t *tok, *seq_of;
    int64_t ds_ints[2]; /* evaluated, masked */
    uint64_t bytes_read;
} sv_pass;

/* Evaluate one unit: sequences [s0, s1). */
static sv_rc eval_unit(sv_pass *ps, int64_t s0, int64_t s1, double *leaf)
{
    sv_store *st = ps->st;
    const int64_t d = st->d_in;
    const int64_t t0 = st->seq_offsets[s0], t1 = st->seq_offsets[s1], nt = t1 - t0;
    sv_rc rc = sv_store_read_rows(st, t0, nt, ps->x);
    if (rc != SV_OK) return rc;
    ps->bytes_read += (uint64_t)(nt * d) * (st->dtype == SV_STORE_F32 ? 4u : 2u);
    int use_mask = ps->n_mask > 0 && st->has_token_ids;
    if (use_mask && (rc = sv_store_read_token_ids(st, t0, nt, ps->tok)) != SV_OK) return rc;

    /* Gather evaluated tokens; accumulate the dataset's sums in token order. */
    double *sum_x = leaf, *sum_sq = leaf + d;
    int64_t ne = 0, s = s0;
    for (int64_t t = 0; t < nt; t++) {
        while (t0 + t >= st->seq_offsets[s + 1]) s++;
        if (use_mask && bsearch(&ps->tok[t], ps->mask_ids, (size_t)ps->n_mask, sizeof(int64_t), cmp_i64)) {
            ps->ds_ints[1]++;
            continue;
        }
        const float *xr = ps->x + t * d;
        memcpy(ps->xe + ne * d, xr, (size_t)d * sizeof(float));
        ps->seq_of[ne] = s;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) {
            sum_x[i] += xr[i];
            ss += (double)xr[i] * xr[i];
        }
        *sum_sq += ss;
        ne++;
    }
    ps->ds_ints[0] += ne;
    if (ne == 0) return SV_OK;
    double *mu_b = malloc((size_t)d * sizeof(double));
    if (!mu_b) return sv_fail(SV_EINTERNAL, "out of memory");
    for (int64_t i = 0; i < d; i++) mu_b[i] = sum_x[i] / (double)ne;

    const int64_t R = ps->cfg->block_tokens;
    for (int k = 0; k < ps->n_slots; k++) {
        sv_slot *sl = &ps->slots[k];
        const int64_t m = sl->sae.cfg.d_sae;
        double *p = leaf + d + 1 + (size_t)k * P_COUNT;
        int64_t *firing = sl->ints + 2, *fired_seq = firing + m, *hist = fired_seq + m;
        double sxh2 = 0, sdot = 0;
        for (int64_t r0 = 0; r0 < ne; r0 += R) {
            int64_t nb = ne - r0 < R ? ne - r0 : R;
            if ((rc = sv_fwd_run(&sl->fwd, ps->xe + r0 * d, nb)) != SV_OK) break;
            const sv_fwd *f = &sl->fwd;
            for (int64_t r = 0; r < nb; r++) {
                const float *xr = ps->xe + (r0 + r) * d;
                const double *hr = f->xhat + r * d;
                double e = 0, nx2 = 0, nh2 = 0, dot = 0, dm = 0;
                for (int64_t i = 0; i < d; i++) {
                    double xv = xr[i], hv = hr[i], df = xv - hv, dmv = xv - mu_b[i];
                    e += df * df;
                    nx2 += xv * xv;
                    nh2 += hv * hv;
                    dot += xv * hv;
                    dm += dmv * dmv;
                }
                double nx = sqrt(nx2), nh = sqrt(nh2);
                p[P_SSE] += e;
                p[P_COS] += (nx == 0 || nh == 0) ? 0.0 : dot / (nx * nh);
                p[P_NORM_IN] += nx;
                p[P_NORM_OUT] += nh;
                p[P_RATIO] += nx < 1e-4 ? 1.0 : nh / nx;
                p[P_LEGACY] += 1.0 - e / dm;
                sxh2 += nh2;
                sdot += dot;
                const int64_t q0 = f->rowptr[r], q1 = f->rowptr[r + 1];
                const int64_t seq = ps->seq_of[r0 + r];
                double l1 = 0;
                for (int64_t q = q0; q < q1; q++) {
                    int32_t j = f->idx[q];
                    l1 += fabs(f->val[q]);
                    firing[j]++;
                    if (sl->last_seq[j] != seq) {
                        sl->last_seq[j] = seq;
                        fired_seq[j]++;
                    }
                }
                p[P_L1] += l1;
                sl->ints[0] += q1 - q0;
                hist[q1 - q0]++;
            }
        }
        if (rc != SV_OK) break;
        p[P_RRB] = (sxh2 / (double)ne) / (sdot / (double)ne);
        sl->ints[1]++;
    }
    free(mu_b);
    return rc;
}

static void finalize(const sv_slot *sl, const double *tot, int64_t d, int k, const int64_t *ints,
                     const int64_t *ds_ints, int64_t n_seq, sv_pair_metrics *m)
{
    const int64_t dsae = sl->sae.cfg.d_sae;
    const double *p = tot + d + 1 + (size_t)k * P_COUNT;
    const double N = (double)ds_ints[0];
    memset(m, 0, sizeof *m);
    m->tokens_evaluated = ds_ints[0];
    m->tokens_masked = ds_ints[1];
    m->sequences = n_seq;
    double var = 0;
    if (N > 0) {
        double mean_sq = 0;
        for (int64_t i = 0; i < d; i++) {
            double mu = tot[i] / N;
            mean_sq += mu * mu;
        }
        var = tot[d] / N - mean_sq;
    }
    m->mse = p[P_SSE] / N;
    if (var < 1e-10) m->explained_variance = m->mse < 1e-10 ? 1.0 : 0.0;
    else m->explained_variance = 1.0 - m->mse / var;
    if (N == 0) m->explained_variance = NAN;
    m->fvu = 1.0 - m->explained_variance;
    m->explained_variance_legacy = p[P_LEGACY] / N;
    m->cossim = p[P_COS] / N;
    m->l2_norm_in = p[P_NORM_IN] / N;
    m->l2_norm_out = p[P_NORM_OUT] / N;
    m->l2_ratio = p[P_RATIO] / N;
    m->relative_reconstruction_bias = ints[1] > 0 ? p[P_RRB] / (double)ints[1] : NAN;
    m->l0 = (double)ints[0] / N;
    m->l1 = p[P_L1] / N;
    m->firing_counts = ints + 2;
    m->fired_sequences = ints + 2 + dsae;
    m->l0_histogram = ints + 2 + 2 * dsae;
    for (int64_t j = 0; j < dsae; j++)
        if (m->firing_counts[j] == 0) m->dead_features++;
    m->dead_fraction = (double)m->dead_features / (double)dsae;
    m->hist_len = 0;
    for (int64_t v = 0; v <= dsae; v++)
        if (m->l0_histogram[v]) m->hist_len = v + 1;
}

static void print_table(const sv_pair_row *rows, int n)
{
    printf("\n%-24s %-14s %9s %11s %8s %8s %7s %8s\n", "sae_id", "dataset", "expl_var", "mse", "cossim",
           "l0", "dead%", "l2_ratio");
    for (int i = 0; i < n; i++) {
        const sv_pair_metrics *m = &rows[i].m;
        printf("%-24s %-14s %9.4f %11.5g %8.4f %8.2f %7.2f %8.4f\n", rows[i].sae_id, rows[i].dataset,
               m->explained_variance, m->mse, m->cossim, m->l0, 100.0 * m->dead_fraction, m->l2_ratio);
    }
    fflush(stdout);
}

/* Evaluate every SAE on one dataset and write its pair files (rank 0). */
static sv_rc run_dataset(const sv_config *cfg, const sv_dataset_spec *ds, sv_store *st, sv_slot *slots,
                         int n_slots, sv_pair_row *rows, const sv_run_opts *opts, const char *out_dir,
                         MPI_Comm comm, FILE *log)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const int64_t d = st->d_in, B = cfg->legacy_batch_sequences;
    const int64_t n_units = (st->n_seq + B - 1) / B;
    sv_rc rc = SV_OK;
    sv_pass ps;
    memset(&ps, 0, sizeof ps);
    ps.cfg = cfg;
    ps.st = st;
    ps.slots = slots;
    ps.n_slots = n_slots;

    int64_t *w = sv_malloc((size_t)n_units * sizeof(int64_t));
    int64_t *first = sv_malloc((size_t)P * sizeof(int64_t)), *last = sv_malloc((size_t)P * sizeof(int64_t));
    ps.mask_ids = sv_malloc((size_t)(st->n_special + cfg->n_exclude + 1) * sizeof(int64_t));
    if (!w || !first || !last || !ps.mask_ids) { rc = SV_EINTERNAL; goto agree; }
    for (int i = 0; i < st->n_special; i++) ps.mask_ids[ps.n_mask++] = st->special_ids[i];
    for (int i = 0; i < cfg->n_exclude; i++) ps.mask_ids[ps.n_mask++] = cfg->exclude_ids[i];
    qsort(ps.mask_ids, (size_t)ps.n_mask, sizeof(int64_t), cmp_i64);

    int64_t max_unit = 0;
    for (int64_t u = 0; u < n_units; u++) {
        int64_t s1 = (u + 1) * B < st->n_seq ? (u + 1) * B : st->n_seq;
        w[u] = st->seq_offsets[s1] - st->seq_offsets[u * B];
        if (w[u] > max_unit) max_unit = w[u];
    }
    sv_split_units(w, n_units, P, first, last);
    ps.x = sv_malloc((size_t)(max_unit * d) * sizeof(float));
    ps.xe = sv_malloc((size_t)(max_unit * d) * sizeof(float));
    ps.tok = sv_malloc((size_t)max_unit * sizeof(int64_t));
    ps.seq_of = sv_malloc((size_t)max_unit * sizeof(int64_t));
    if (!ps.x || !ps.xe || !ps.tok || !ps.seq_of) { rc = SV_EINTERNAL; goto agree; }
    for (int k = 0; k < n_slots; k++) {
        int64_t m = slots[k].sae.cfg.d_sae;
        memset(slots[k].ints, 0, (size_t)(3 * m + 3) * sizeof(int64_t));
        for (int64_t j = 0; j < m; j++) slots[k].last_seq[j] = -1;
    }

agree:
    rc = sv_agree(rc, comm);
    if (rc != SV_OK) goto out;

    {
        const size_t len = (size_t)d + 1 + (size_t)n_slots * P_COUNT;
        sv_tree *tree = sv_tree_new(n_units, first[rank], last[rank], len);
        if (!tree) rc = SV_EINTERNAL;
        double t_start = now_s(), t_last = t_start;
        int64_t my_tokens = 0, done_tokens = 0;
        for (int64_t u = first[rank]; u < last[rank]; u++) my_tokens += w[u];
        for (int64_t u = first[rank]; rc == SV_OK && u < last[rank]; u++) {
            int64_t s1 = (u + 1) * B < st->n_seq ? (u + 1) * B : st->n_seq;
            double *leaf = sv_tree_leaf(tree);
            rc = eval_unit(&ps, u * B, s1, leaf);
            if (rc == SV_OK) rc = sv_tree_push(tree);
            done_tokens += w[u];
            double t = now_s();
            /* Rank 0 speaks for all: ranks get equal shares of tokens. */
            if (rank == 0 && !opts->quiet && (t - t_last > 2.0 || u + 1 == last[rank])) {
                double rate = done_tokens / (t - t_start + 1e-9);
                printf("[saeval] %s: %lld/%lld tokens on rank 0 (%.1f%%), %.0f tok/s per rank, ETA %.0f s\n",
                       ds->name, (long long)done_tokens, (long long)my_tokens,
                       my_tokens ? 100.0 * done_tokens / my_tokens : 100.0, rate,
                       rate > 0 ? (my_tokens - done_tokens) / rate : 0.0);
                fflush(stdout);
                t_last = t;
            }
        }
        rc = sv_agree(rc, comm);
        double *tot = NULL;
        if (rc == SV_OK && rank == 0 && !(tot = sv_malloc(len * sizeof(double)))) rc = SV_EINTERNAL;
        if (rc == SV_OK) rc = sv_tree_reduce(tree, comm, tot);
        sv_tree_free(tree);
        rc = sv_agree(rc, comm);
        if (rc != SV_OK) { free(tot); goto out; }

        /* Integer counts are exact, so a plain sum is order-invariant. */
        int64_t ds_tot[2];
        uint64_t bytes_tot = 0;
        MPI_Reduce(ps.ds_ints, ds_tot, 2, MPI_INT64_T, MPI_SUM, 0, comm);
        MPI_Reduce(&ps.bytes_read, &bytes_tot, 1, MPI_UINT64_T, MPI_SUM, 0, comm);
        for (int k = 0; k < n_slots && rc == SV_OK; k++) {
            int64_t m = slots[k].sae.cfg.d_sae, cnt = 3 * m + 3;
            int64_t *tot_ints = rank == 0 ? sv_malloc((size_t)cnt * sizeof(int64_t)) : NULL;
            MPI_Reduce(slots[k].ints, tot_ints, (int)cnt, MPI_INT64_T, MPI_SUM, 0, comm);
            if (rank == 0) {
                sv_pair_metrics pm;
                sv_jw jw;
                finalize(&slots[k], tot, d, k, tot_ints, ds_tot, st->n_seq, &pm);
                sv_jw_init(&jw);
                rc = sv_pair_json(&jw, slots[k].id, ds->name, &slots[k].sae, cfg, &pm, &slots[k].geom,
                                  cfg->model_params);
                if (rc == SV_OK) {
                    char *path = sv_pair_path(out_dir, slots[k].id, ds->name);
                    if (!path) rc = SV_EINTERNAL;
                    else rc = sv_write_atomic(path, jw.buf, jw.len);
                    free(path);
                }
                sv_jw_free(&jw);
                rows[k].m = pm;
                rows[k].m.l0_histogram = rows[k].m.firing_counts = rows[k].m.fired_sequences = NULL;
            }
            free(tot_ints);
        }
        if (rank == 0 && log)
            fprintf(log, "dataset %s: %s, %lld tokens, %lld units, %d ranks, 1 pass, %llu bytes read, %.3f s\n",
                    ds->name, st->path, (long long)st->n_tokens, (long long)n_units, P,
                    (unsigned long long)bytes_tot, now_s() - t_start);
        free(tot);
        rc = sv_agree(rc, comm);
    }
out:
    free(w); free(first); free(last); free(ps.mask_ids);
    free(ps.x); free(ps.xe); free(ps.tok); free(ps.seq_of);
    return rc;
}

/* Encoder threads per rank: the node's cores shared by its ranks, unless
 * SAEVAL_THREADS says otherwise. Only speed depends on it. */
static void choose_threads(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    const char *env = getenv("SAEVAL_THREADS");
    if (env && atoi(env) > 0) { sv_fwd_set_threads(atoi(env)); return; }
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int th = (int)(ncpu / local);
    sv_fwd_set_threads(th > 0 ? th : 1);
}

sv_rc sv_run(const char *config_path, const sv_run_opts *opts, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    sv_config cfg;
    sv_slot *slots = NULL;
    sv_store *stores = NULL;
    sv_pair_row *rows = NULL;
    char **paths = NULL, **ids = NULL;
    FILE *log = NULL;
    char *out_dir = NULL;
    int n_open = 0;
    double t0 = now_s();

    sv_rc rc = sv_agree(sv_config_load(&cfg, config_path), comm);
    if (rc != SV_OK) { sv_config_free(&cfg); return rc; }
    choose_threads(comm);
    out_dir = sv_strdup(opts->output_dir ? opts->output_dir : cfg.output_dir);
    const int ns = cfg.n_saes, nd = cfg.n_datasets;
    slots = sv_calloc((size_t)ns, sizeof *slots);
    stores = sv_calloc((size_t)nd, sizeof *stores);
    rows = sv_calloc((size_t)ns * nd, sizeof *rows);
    paths = sv_calloc((size_t)ns, sizeof *paths);
    ids = sv_calloc((size_t)ns, sizeof *ids);
    if (!out_dir || !slots || !stores || !rows || !paths || !ids) rc = SV_EINTERNAL;
    if (rc == SV_OK) {
        for (int i = 0; i < ns; i++) paths[i] = cfg.saes[i].path;
        rc = sv_sae_ids(paths, ns, ids);
    }
    rc = sv_agree(rc, comm);

    /* Everything is loaded and checked before any output is written. */
    for (int i = 0; i < ns && rc == SV_OK; i++) {
        slots[i].id = ids[i];
        ids[i] = NULL;
        rc = sv_sae_load(&slots[i].sae, cfg.saes[i].path, cfg.precision, cfg.saes[i].has_scale,
                         cfg.saes[i].scaling_factor);
        if (rc == SV_OK) rc = sv_fwd_init(&slots[i].fwd, &slots[i].sae, cfg.block_tokens);
        if (rc == SV_OK) {
            int64_t m = slots[i].sae.cfg.d_sae;
            slots[i].ints = sv_malloc((size_t)(3 * m + 3) * sizeof(int64_t));
            slots[i].last_seq = sv_malloc((size_t)m * sizeof(int64_t));
            if (!slots[i].ints || !slots[i].last_seq) rc = SV_EINTERNAL;
        }
        rc = sv_agree(rc, comm);
    }
    /* Weight geometry once per SAE, whatever the number of datasets. */
    for (int i = 0; i < ns && rc == SV_OK; i++) {
        double tg = now_s();
        rc = sv_agree(sv_geometry_compute(&slots[i].sae, 0, comm, &slots[i].geom), comm);
        if (rc == SV_OK && rank == 0 && !opts->quiet && now_s() - tg > 2.0) {
            printf("[saeval] geometry of %s: %.1f s\n", slots[i].id, now_s() - tg);
            fflush(stdout);
        }
    }
    for (int j = 0; j < nd && rc == SV_OK; j++) {
        rc = sv_store_open(&stores[j], cfg.datasets[j].path, comm);
        n_open = j + 1;
        for (int i = 0; i < ns && rc == SV_OK; i++)
            if (slots[i].sae.cfg.d_in != stores[j].d_in)
                rc = sv_fail(SV_EINPUT, "%s/cfg.json: d_in: %lld does not match %s: /activations has d_in %lld",
                             cfg.saes[i].path, (long long)slots[i].sae.cfg.d_in, cfg.datasets[j].path,
                             (long long)stores[j].d_in);
        rc = sv_agree(rc, comm);
    }
    if (rc == SV_OK) {
        if (rank == 0) rc = sv_mkdir_p(out_dir);
        rc = sv_agree(rc, comm);
    }
    if (rc == SV_OK && rank == 0) {
        char *lp = sv_path_join(out_dir, "run.log");
        log = lp ? fopen(lp, "w") : NULL;
        free(lp);
        if (log) {
            char host[256] = "?";
            gethostname(host, sizeof host);
            fprintf(log, "saeval run %s\nranks %d, host of rank 0 %s, threads per rank %d, OpenBLAS %s (core %s)\n",
                    config_path, P, host, sv_fwd_get_threads(), openblas_get_config(), openblas_get_corename());
        }
        if (!opts->quiet) {
            printf("[saeval] %d SAEs x %d datasets on %d ranks, output %s\n", ns, nd, P, out_dir);
            fflush(stdout);
        }
    }
    for (int j = 0; j < nd && rc == SV_OK; j++) {
        sv_pair_row *r = rows + (size_t)j * ns;
        for (int i = 0; i < ns; i++) {
            r[i].sae_id = slots[i].id;
            r[i].dataset = cfg.datasets[j].name;
        }
        rc = run_dataset(&cfg, &cfg.datasets[j], &stores[j], slots, ns, r, opts, out_dir, comm, log);
    }
    /* Rows are stored dataset-major; summaries list them SAE-major. */
    if (rc == SV_OK && rank == 0) {
        sv_pair_row *sorted = sv_malloc((size_t)ns * nd * sizeof *sorted);
        if (!sorted) rc = SV_EINTERNAL;
        for (int i = 0; rc == SV_OK && i < ns; i++)
            for (int j = 0; j < nd; j++) sorted[(size_t)i * nd + j] = rows[(size_t)j * ns + i];
        if (rc == SV_OK) rc = sv_write_summaries(out_dir, sorted, ns * nd);
        if (rc == SV_OK && opts->table) print_table(sorted, ns * nd);
        free(sorted);
    }
    rc = sv_agree(rc, comm);
    if (log) {
        fprintf(log, "%s after %.3f s\n", rc == SV_OK ? "finished" : "failed", now_s() - t0);
        fclose(log);
    }
    if (rc == SV_OK && rank == 0 && !opts->quiet) {
        printf("[saeval] wrote %d result files to %s (%.2f s)\n", ns * nd, out_dir, now_s() - t0);
        fflush(stdout);
    }
    for (int j = 0; j < n_open; j++) sv_store_close(&stores[j]);
    for (int i = 0; i < ns; i++) {
        sv_fwd_free(&slots[i].fwd);
        sv_geometry_free(&slots[i].geom);
        sv_sae_free(&slots[i].sae);
        free(slots[i].ints);
        free(slots[i].last_seq);
        free(slots[i].id);
        if (ids) free(ids[i]);
    }
    free(slots); free(stores); free(rows); free(paths); free(ids); free(out_dir);
    sv_config_free(&cfg);
    return rc;
}

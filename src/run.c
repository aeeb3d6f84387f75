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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saeval/config.h"
#include "saeval/forward.h"
#include "saeval/gemm.h"
#include "saeval/geometry.h"
#include "saeval/merge.h"
#include "saeval/plan.h"
#include "saeval/output.h"
#include "saeval/reduce.h"
#include "saeval/sae.h"
#include "saeval/store.h"

/* Double partial sums per (SAE, unit), in the tree vector after the
 * dataset's own [sum_x (d_in), sum ||x||^2]. */
enum { P_SSE, P_COS, P_NORM_IN, P_NORM_OUT, P_RATIO, P_L1, P_LEGACY, P_RRB, P_COUNT };
/* Per-row quantities computed in parallel before the ordered sums. */
enum { RQ_E, RQ_NX2, RQ_NH2, RQ_DOT, RQ_DM, RQ_L1, RQ_N };

typedef struct {
    sv_sae sae;
    const char *id;
    sv_fwd fwd;
    int64_t *ints;     /* [sum_l0, rrb_batches, firing[m], fired_seq[m], hist[m+1]] */
    int64_t *last_seq; /* per latent: last global sequence it fired in */
    const sv_geometry *geom; /* weight geometry, complete on rank 0 */
} sv_slot;

static sv_run_stats sv_stats;
const sv_run_stats *sv_last_run_stats(void) { return &sv_stats; }

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
    /* Later agreements on the same failure (the caller's checks) stay quiet. */
    static char last[2048];
    if (rank == 0 && strcmp(last, msg) != 0) {
        fprintf(stderr, "saeval: error: %s\n", msg);
        fflush(stderr);
        snprintf(last, sizeof last, "%s", msg);
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
    double *rowq; /* [block rows][RQ_N] */
    int64_t ds_ints[3]; /* evaluated, masked, non-finite (masked too) */
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
        int64_t bad = -1;
        for (int64_t i = 0; i < d && bad < 0; i++)
            if (!isfinite(xr[i])) bad = i;
        if (bad >= 0) {
            if (!ps->cfg->nonfinite_skip)
                return sv_fail(SV_EINPUT, "%s: /activations: non-finite value (%g) at token %lld, dimension %lld; "
                               "set \"nonfinite\": \"skip\" in the config to mask such tokens",
                               st->path, (double)xr[bad], (long long)(t0 + t), (long long)bad);
            ps->ds_ints[2]++;
            continue;
        }
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

    const int64_t R = ps->slots[0].fwd.max_rows; /* block rows (may be lowered by the memory budget) */
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
            double *rq = ps->rowq; /* [nb][RQ_N] per-row quantities */
            /* Rows are independent: threads compute them in any order... */
#pragma omp parallel for num_threads(sv_fwd_get_threads()) schedule(static)
            for (int64_t r = 0; r < nb; r++) {
                const float *xr = ps->xe + (r0 + r) * d;
                const double *hr = f->xhat + r * d;
                double e = 0, nx2 = 0, nh2 = 0, dot = 0, dm = 0, l1 = 0;
                for (int64_t i = 0; i < d; i++) {
                    double xv = xr[i], hv = hr[i], df = xv - hv, dmv = xv - mu_b[i];
                    e += df * df;
                    nx2 += xv * xv;
                    nh2 += hv * hv;
                    dot += xv * hv;
                    dm += dmv * dmv;
                }
                for (int64_t q = f->rowptr[r]; q < f->rowptr[r + 1]; q++) l1 += fabs(f->val[q]);
                double *o = rq + r * RQ_N;
                o[RQ_E] = e; o[RQ_NX2] = nx2; o[RQ_NH2] = nh2; o[RQ_DOT] = dot; o[RQ_DM] = dm; o[RQ_L1] = l1;
            }
            /* ...and the sums take them in token order, whatever the threads. */
            for (int64_t r = 0; r < nb; r++) {
                const double *o = rq + r * RQ_N;
                double e = o[RQ_E], nx2 = o[RQ_NX2], nh2 = o[RQ_NH2], dot = o[RQ_DOT], dm = o[RQ_DM];
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
                for (int64_t q = q0; q < q1; q++) {
                    int32_t j = f->idx[q];
                    firing[j]++;
                    if (sl->last_seq[j] != seq) {
                        sl->last_seq[j] = seq;
                        fired_seq[j]++;
                    }
                }
                double l1 = o[RQ_L1];
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
    m->tokens_nonfinite = ds_ints[2];
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

/* Test hook: SAEVAL_TEST_FAIL_RANK=r makes rank r fail after its first
 * work unit, to check that a failing rank ends the job promptly. */
static int test_fail_here(int rank)
{
    const char *e = getenv("SAEVAL_TEST_FAIL_RANK");
    return e && *e && atoi(e) == rank;
}

/* Stop requests (SLURM preemption, scancel, Ctrl-C): finish the current
 * work unit, write nothing partial, exit non-zero; a rerun resumes. */
static volatile sig_atomic_t sv_stop;
static void on_signal(int sig) { sv_stop = sig; }

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

typedef struct {
    double t0, t_last;
    double cost_total, cost_done; /* tokens x d_sae of the pairs to compute */
    int pairs_total, pairs_done;
} sv_progress;

static void progress_line(sv_progress *pg, const char *ds, int pass, int n_pass, double frac_pass,
                          double pass_cost, double tok_rate, int force)
{
    double t = now_s();
    if (!force && t - pg->t_last < 2.0) return;
    pg->t_last = t;
    double done = pg->cost_done + frac_pass * pass_cost;
    double el = t - pg->t0, eta = done > 0 ? el * (pg->cost_total - done) / done : 0;
    char rate[32] = "-";
    if (tok_rate > 0) snprintf(rate, sizeof rate, "%.3g", tok_rate);
    printf("[saeval] pairs %d/%d | %s pass %d/%d %5.1f%% | %s tok/s | elapsed %.0f s | ETA %.0f s\n",
           pg->pairs_done, pg->pairs_total, ds, pass, n_pass, 100.0 * frac_pass, rate, el, eta);
    fflush(stdout);
}

/* One pass over a store for a group of loaded SAEs; writes their pair files
 * on rank 0. */
static sv_rc run_pass(const sv_config *cfg, const sv_plan *pl, int j, sv_slot *slots, int n_slots,
                      const int *sae_of, const char *out_dir, MPI_Comm comm, FILE *log, sv_progress *pg,
                      int pass, int n_pass, const sv_run_opts *opts)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    sv_store *st = &pl->stores[j];
    const sv_dataset_spec *ds = &cfg->datasets[j];
    const int64_t d = st->d_in, B = cfg->legacy_batch_sequences;
    const int64_t n_units = (st->n_seq + B - 1) / B;
    sv_rc rc = SV_OK;
    sv_pass ps;
    memset(&ps, 0, sizeof ps);
    ps.cfg = cfg;
    ps.st = st;
    ps.slots = slots;
    ps.n_slots = n_slots;
    double pass_cost = 0;
    for (int k = 0; k < n_slots; k++) pass_cost += (double)st->n_tokens * (double)slots[k].sae.cfg.d_sae;

    int64_t *w = sv_malloc((size_t)(n_units ? n_units : 1) * sizeof(int64_t));
    int64_t *first = sv_malloc((size_t)P * sizeof(int64_t)), *last = sv_malloc((size_t)P * sizeof(int64_t));
    ps.mask_ids = sv_malloc((size_t)(st->n_special + cfg->n_exclude + 1) * sizeof(int64_t));
    if (!w || !first || !last || !ps.mask_ids) { rc = SV_EINTERNAL; goto agree; }
    for (int i = 0; i < st->n_special; i++) ps.mask_ids[ps.n_mask++] = st->special_ids[i];
    for (int i = 0; i < cfg->n_exclude; i++) ps.mask_ids[ps.n_mask++] = cfg->exclude_ids[i];
    qsort(ps.mask_ids, (size_t)ps.n_mask, sizeof(int64_t), cmp_i64);

    int64_t max_unit = 1;
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
    ps.rowq = sv_malloc((size_t)slots[0].fwd.max_rows * RQ_N * sizeof(double));
    if (!ps.x || !ps.xe || !ps.tok || !ps.seq_of || !ps.rowq) { rc = SV_EINTERNAL; goto agree; }
    for (int k = 0; k < n_slots; k++) {
        int64_t m = slots[k].sae.cfg.d_sae;
        memset(slots[k].ints, 0, (size_t)(3 * m + 3) * sizeof(int64_t));
        for (int64_t q = 0; q < m; q++) slots[k].last_seq[q] = -1;
    }
agree:
    rc = sv_agree(rc, comm);
    if (rc != SV_OK) goto out;
    {
        const size_t len = (size_t)d + 1 + (size_t)n_slots * P_COUNT;
        sv_tree *tree = sv_tree_new(n_units, first[rank], last[rank], len);
        if (!tree) rc = SV_EINTERNAL;
        double t_start = now_s();
        int64_t my_tokens = 0, done_tokens = 0;
        for (int64_t u = first[rank]; u < last[rank]; u++) my_tokens += w[u];
        if (rank == 0 && !opts->quiet) progress_line(pg, ds->name, pass, n_pass, 0.0, pass_cost, 0.0, 1);
        for (int64_t u = first[rank]; rc == SV_OK && u < last[rank]; u++) {
            if (sv_stop) {
                rc = sv_fail(SV_EINTERRUPTED, "stopped by signal %d; complete result files are kept, rerun to resume", (int)sv_stop);
                break;
            }
            int64_t s1 = (u + 1) * B < st->n_seq ? (u + 1) * B : st->n_seq;
            rc = eval_unit(&ps, u * B, s1, sv_tree_leaf(tree));
            if (rc == SV_OK) rc = sv_tree_push(tree);
            if (rc == SV_OK && test_fail_here(rank)) rc = sv_fail(SV_EINTERNAL, "injected failure (SAEVAL_TEST_FAIL_RANK)");
            if (rc == SV_EINTERNAL) {
                /* An I/O or allocation failure on one rank: the others would
                 * only learn of it after their own units, so end the job now. */
                fprintf(stderr, "saeval: error: rank %d: %s\n", rank, sv_errmsg());
                fflush(stderr);
                MPI_Abort(comm, SV_EINTERNAL);
            }
            done_tokens += w[u];
            /* Rank 0 speaks for all: ranks hold equal shares of tokens. */
            if (rank == 0 && !opts->quiet)
                progress_line(pg, ds->name, pass, n_pass, my_tokens ? (double)done_tokens / my_tokens : 1.0,
                              pass_cost, P * done_tokens / (now_s() - t_start + 1e-9), 0);
        }
        if (rc == SV_OK && sv_stop) rc = sv_fail(SV_EINTERRUPTED, "stopped by signal %d; complete result files are kept, rerun to resume", (int)sv_stop);
        rc = sv_agree(rc, comm);
        double *tot = NULL;
        if (rc == SV_OK && rank == 0 && !(tot = sv_malloc(len * sizeof(double)))) rc = SV_EINTERNAL;
        if (rc == SV_OK) rc = sv_tree_reduce(tree, comm, tot);
        sv_tree_free(tree);
        rc = sv_agree(rc, comm);
        if (rc != SV_OK) { free(tot); goto out; }

        /* Integer counts are exact, so a plain sum is order-invariant. */
        int64_t ds_tot[3];
        uint64_t bytes_tot = 0;
        MPI_Allreduce(ps.ds_ints, ds_tot, 3, MPI_INT64_T, MPI_SUM, comm);
        if (ds_tot[0] == 0) { /* nothing to evaluate: refuse rather than write NaNs */
            rc = sv_agree(sv_fail(SV_EINPUT, "%s: every token is masked (special_token_ids, exclude_token_ids%s): nothing to evaluate",
                                  st->path, cfg->nonfinite_skip ? ", non-finite values" : ""), comm);
            free(tot);
            goto out;
        }
        MPI_Reduce(&ps.bytes_read, &bytes_tot, 1, MPI_UINT64_T, MPI_SUM, 0, comm);
        for (int k = 0; k < n_slots; k++) {
            int64_t m = slots[k].sae.cfg.d_sae, cnt = 3 * m + 3;
            int64_t *tot_ints = rank == 0 ? sv_malloc((size_t)cnt * sizeof(int64_t)) : NULL;
            MPI_Reduce(slots[k].ints, tot_ints, (int)cnt, MPI_INT64_T, MPI_SUM, 0, comm);
            if (rank == 0 && rc == SV_OK) {
                const int p = sae_of[k] * pl->n_ds + j;
                sv_pair_metrics pm;
                sv_jw jw;
                finalize(&slots[k], tot, d, k, tot_ints, ds_tot, st->n_seq, &pm);
                sv_jw_init(&jw);
                /* Model size for the health ratings: the config wins, else the store's attribute. */
                double mp = !isnan(cfg->model_params) ? cfg->model_params : st->model_params;
                rc = sv_pair_json(&jw, slots[k].id, ds->name, &slots[k].sae, cfg, &pm, slots[k].geom, mp,
                                  pl->pair_hash[p]);
                sv_jw_raw(&jw, "\n", 1);
                char *path = sv_pair_path(out_dir, slots[k].id, ds->name);
                char *note = sv_error_note_path(out_dir, slots[k].id, ds->name);
                if (rc == SV_OK && (!path || !note)) rc = SV_EINTERNAL;
                if (rc == SV_OK) rc = sv_write_atomic(path, jw.buf, jw.len);
                if (rc == SV_OK) unlink(note); /* an old failure is history now */
                free(path);
                free(note);
                sv_jw_free(&jw);
                pg->pairs_done++;
            }
            free(tot_ints);
        }
        pg->cost_done += pass_cost;
        sv_stats.pass_seconds += now_s() - t_start;
        sv_stats.bytes_read += bytes_tot;
        sv_stats.passes++;
        sv_stats.tokens += st->n_tokens;
        if (rank == 0 && log)
            fprintf(log, "dataset %s pass %d/%d: %d SAEs, %s, %lld tokens, %lld units, %d ranks, %llu bytes read, %.3f s\n",
                    ds->name, pass, n_pass, n_slots, st->path, (long long)st->n_tokens, (long long)n_units, P,
                    (unsigned long long)bytes_tot, now_s() - t_start);
        free(tot);
        rc = sv_agree(rc, comm);
    }
out:
    free(w); free(first); free(last); free(ps.mask_ids);
    free(ps.x); free(ps.xe); free(ps.tok); free(ps.seq_of); free(ps.rowq);
    return rc;
}

/* Record a pair's failure: stderr line already printed by sv_agree; the
 * note lets `merge` say why the pair has no result. */
static void note_failure(const char *out_dir, const char *id, const char *ds, const char *msg)
{
    char *note = sv_error_note_path(out_dir, id, ds);
    if (note) {
        char line[2100];
        int n = snprintf(line, sizeof line, "%s\n", msg);
        sv_write_atomic(note, line, (size_t)n);
    }
    free(note);
}

static uint64_t default_budget(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    /* Half of the node's memory (or of the job's, under SLURM --mem), shared
     * by the node's ranks. */
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    const char *slurm_mem = getenv("SLURM_MEM_PER_NODE"); /* MiB */
    if (slurm_mem && atoll(slurm_mem) > 0 && ((uint64_t)atoll(slurm_mem) << 20) < phys)
        phys = (uint64_t)atoll(slurm_mem) << 20;
    return phys / 2 / (uint64_t)local;
}

/* run.log: which OpenBLAS kernel is fastest here, measured in child
 * processes (~1 s) when the run's encoder GEMMs are worth it (> 1 TFLOP),
 * or always / never with SAEVAL_KERNEL_PROBE=1 / 0. */
static void kernel_note(FILE *log, const sv_config *cfg, const sv_plan *pl)
{
    const int ns = cfg->n_saes, nd = cfg->n_datasets;
    double flops = 0;
    int64_t k = 0;
    for (int p = 0; p < ns * nd; p++)
        if (pl->todo[p]) {
            const sv_sae_cfg *c = &pl->cfg[p / nd];
            flops += 2.0 * (double)pl->stores[p % nd].n_tokens * (double)c->d_in * (double)c->d_sae;
            if (c->d_in > k) k = c->d_in;
        }
    const char *env = getenv("SAEVAL_KERNEL_PROBE");
    if (k == 0 || (env ? atoi(env) == 0 : flops < 1e12)) {
        fprintf(log, "OpenBLAS kernel probe skipped (%s)\n", env ? "SAEVAL_KERNEL_PROBE=0" : "under 1 TFLOP of encoder GEMMs");
        return;
    }
    char buf[1024];
    if (sv_gemm_kernel_note("/proc/self/exe", k, buf, sizeof buf) == SV_OK) fprintf(log, "%s\n", buf);
    else fprintf(log, "OpenBLAS kernel probe failed: %s\n", sv_errmsg());
    sv_clear_error();
}

sv_rc sv_run(const char *config_path, const sv_run_opts *opts, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const char *sn = getenv("SLURM_NTASKS");
    if (sn && atoi(sn) > 1 && P == 1) {
        /* Every copy prints: they are all rank 0 of their own world. */
        fprintf(stderr, "saeval: error: SLURM_NTASKS=%s but MPI sees 1 rank: the launcher started independent copies "
                        "(srun without working PMI?). Use `srun --mpi=pmix` or mpirun inside the allocation.\n", sn);
        return SV_EINPUT;
    }
    install_signals();
    memset(&sv_stats, 0, sizeof sv_stats);
    sv_config cfg;
    sv_plan pl;
    memset(&pl, 0, sizeof pl);
    sv_slot *slots = NULL;
    sv_geometry **geom = NULL;
    int *sae_of = NULL, *failed_sae = NULL;
    FILE *log = NULL;
    char *out_dir = NULL;
    double t0 = now_s();
    int any_failed = 0;

    sv_rc rc = sv_agree(sv_config_load(&cfg, config_path), comm);
    if (rc != SV_OK) { sv_config_free(&cfg); return rc; }
    sv_fwd_set_threads_default(comm);
    /* The GEMM backend, once per run (SAEVAL_GEMM; OpenBLAS by default). */
    if ((rc = sv_agree(sv_gemm_select(NULL), comm)) != SV_OK) { sv_config_free(&cfg); return rc; }
    const int ns = cfg.n_saes, nd = cfg.n_datasets;
    out_dir = sv_strdup(opts->output_dir ? opts->output_dir : cfg.output_dir);
    if (!out_dir) rc = SV_EINTERNAL;
    if (rc == SV_OK && rank == 0) rc = sv_mkdir_p(out_dir);
    if ((rc = sv_agree(rc, comm)) != SV_OK) goto out;
    rc = sv_plan_build(&pl, &cfg, out_dir, opts->shard, opts->n_shards > 0 ? opts->n_shards : 1, opts->force, comm);
    if ((rc = sv_agree(rc, comm)) != SV_OK) goto out;

    slots = sv_calloc((size_t)ns, sizeof *slots);
    geom = sv_calloc((size_t)ns, sizeof *geom);
    sae_of = sv_calloc((size_t)ns, sizeof *sae_of);
    failed_sae = sv_calloc((size_t)ns, sizeof *failed_sae);
    if (!slots || !geom || !sae_of || !failed_sae) rc = SV_EINTERNAL;
    if ((rc = sv_agree(rc, comm)) != SV_OK) goto out;

    /* Block rows: the config's, lowered (in GEMM tiles) until the largest
     * SAE fits the memory budget. Tiles keep results independent of it. */
    uint64_t budget = cfg.memory_budget_mb > 0 ? (uint64_t)cfg.memory_budget_mb << 20 : default_budget(comm);
    int64_t block = cfg.block_tokens;
    for (int i = 0; i < ns; i++)
        while (!pl.sae_err[i] && block > SV_GEMM_ROWS && sv_sae_mem_bytes(&pl.cfg[i], cfg.precision, block) > budget)
            block -= SV_GEMM_ROWS;

    sv_stats.block_rows = block;
    sv_progress pg;
    memset(&pg, 0, sizeof pg);
    pg.t0 = pg.t_last = now_s();
    for (int p = 0; p < ns * nd; p++) {
        if (pl.in_shard[p] && pl.pair_err[p]) {
            any_failed = 1;
            if (rank == 0) note_failure(out_dir, pl.ids[p / nd], cfg.datasets[p % nd].name, pl.pair_err[p]);
        }
        if (!pl.todo[p]) continue;
        pg.pairs_total++;
        pg.cost_total += (double)pl.stores[p % nd].n_tokens * (double)pl.cfg[p / nd].d_sae;
    }
    if (rank == 0) {
        char *lp = sv_path_join(out_dir, "run.log");
        log = lp ? fopen(lp, "a") : NULL;
        free(lp);
        int skipped = 0, in_shard = 0;
        for (int p = 0; p < ns * nd; p++) {
            in_shard += pl.in_shard[p];
            skipped += pl.in_shard[p] && !pl.todo[p] && !pl.pair_err[p];
        }
        if (log) {
            char host[256] = "?";
            gethostname(host, sizeof host);
            fprintf(log, "saeval run %s shard %d/%d\nranks %d, host of rank 0 %s, threads per rank %d, OpenBLAS %s (core %s)\n"
                         "block rows %lld, memory budget %llu MB per rank, OPENBLAS_CORETYPE=%s GOMP_SPINCOUNT=%s\n",
                    config_path, opts->shard, pl.n_shards, P, host, sv_fwd_get_threads(), openblas_get_config(),
                    openblas_get_corename(), (long long)block, (unsigned long long)(budget >> 20),
                    getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(auto)",
                    getenv("GOMP_SPINCOUNT") ? getenv("GOMP_SPINCOUNT") : "(default)");
            fprintf(log, "GEMM backend %s, kernel %s; precision %s%s%s\n", sv_gemm_current()->name,
                    sv_gemm_current()->kernel(), sv_precision_name(cfg.precision), cfg.precision == 16 ? "; " : "",
                    cfg.precision == 16 ? sv_gemm_bf16_describe() : "");
            kernel_note(log, &cfg, &pl);
        }
        if (!opts->quiet) {
            printf("[saeval] %d SAEs x %d datasets, %d ranks x %d threads, shard %d/%d: %d pairs, %d to compute, "
                   "%d already complete, output %s\n",
                   ns, nd, P, sv_fwd_get_threads(), opts->shard, pl.n_shards, in_shard, pg.pairs_total, skipped, out_dir);
            fflush(stdout);
        }
    }

    for (int j = 0; j < nd && rc == SV_OK; j++) {
        /* SAEs that still need this dataset, packed into passes. */
        int n_need = 0, n_pass = 0;
        for (int i = 0; i < ns; i++) if (pl.todo[i * nd + j] && !failed_sae[i]) n_need++;
        if (n_need == 0) continue;
        {
            uint64_t used = 0;
            int in = 0;
            for (int i = 0; i < ns; i++) {
                if (!pl.todo[i * nd + j] || failed_sae[i]) continue;
                uint64_t b = sv_sae_mem_bytes(&pl.cfg[i], cfg.precision, block);
                if (in > 0 && used + b > budget) { n_pass++; used = 0; in = 0; }
                used += b;
                in++;
            }
            if (in) n_pass++;
        }
        int i_next = 0;
        for (int pass = 1; pass <= n_pass && rc == SV_OK; pass++) {
            uint64_t used = 0;
            int n = 0;
            for (; i_next < ns && rc == SV_OK; i_next++) {
                int i = i_next;
                if (!pl.todo[i * nd + j] || failed_sae[i]) continue;
                uint64_t b = sv_sae_mem_bytes(&pl.cfg[i], cfg.precision, block);
                if (n > 0 && used + b > budget) break;
                sv_slot *sl = &slots[n];
                memset(sl, 0, sizeof *sl);
                sv_rc r = sv_sae_load(&sl->sae, cfg.saes[i].path, cfg.precision, cfg.saes[i].has_scale,
                                      cfg.saes[i].scaling_factor);
                r = sv_agree(r, comm);
                if (r == SV_EINPUT) {
                    /* A bad SAE fails its own pairs only. */
                    sv_sae_free(&sl->sae);
                    failed_sae[i] = 1;
                    any_failed = 1;
                    for (int jj = 0; jj < nd; jj++)
                        if (pl.todo[i * nd + jj] && rank == 0) note_failure(out_dir, pl.ids[i], cfg.datasets[jj].name, sv_errmsg());
                    continue;
                }
                if ((rc = r) != SV_OK) break;
                if (!geom[i] && cfg.geometry) { /* once per SAE, whatever the number of datasets */
                    geom[i] = sv_calloc(1, sizeof **geom);
                    rc = geom[i] ? sv_geometry_compute(&sl->sae, 0, comm, geom[i]) : SV_EINTERNAL;
                    if ((rc = sv_agree(rc, comm)) != SV_OK) break;
                }
                sl->geom = geom[i];
                sl->id = pl.ids[i];
                rc = sv_fwd_init(&sl->fwd, &sl->sae, block);
                if (rc == SV_OK) {
                    int64_t m = sl->sae.cfg.d_sae;
                    sl->ints = sv_malloc((size_t)(3 * m + 3) * sizeof(int64_t));
                    sl->last_seq = sv_malloc((size_t)m * sizeof(int64_t));
                    if (!sl->ints || !sl->last_seq) rc = SV_EINTERNAL;
                }
                if ((rc = sv_agree(rc, comm)) != SV_OK) { n++; break; }
                sae_of[n++] = i;
                used += b;
            }
            if (rc == SV_OK && n > 0) {
                rc = run_pass(&cfg, &pl, j, slots, n, sae_of, out_dir, comm, log, &pg, pass, n_pass, opts);
                if (rc == SV_EINPUT) {
                    /* Bad data in this store (non-finite values, all masked):
                     * its pairs fail, the other datasets go on. */
                    any_failed = 1;
                    for (int i = 0; i < ns; i++)
                        if (pl.todo[i * nd + j] && !failed_sae[i] && rank == 0)
                            note_failure(out_dir, pl.ids[i], cfg.datasets[j].name, sv_errmsg());
                    rc = SV_OK;
                    i_next = ns;
                    pass = n_pass;
                }
            }
            for (int k = 0; k < n; k++) {
                sv_fwd_free(&slots[k].fwd);
                sv_sae_free(&slots[k].sae);
                free(slots[k].ints);
                free(slots[k].last_seq);
                memset(&slots[k], 0, sizeof slots[k]);
            }
        }
    }
    if (rc == SV_OK && rank == 0 && !opts->quiet)
        progress_line(&pg, "all", 1, 1, 1.0, 0.0, 0.0, 1);

    /* A full run (not one shard of many) ends with the summaries. */
    if (rc == SV_OK && rank == 0 && pl.n_shards == 1) {
        sv_merge_counts mc;
        /* Failures were already reported once each on stderr. */
        rc = sv_merge(&cfg, &pl, out_dir, NULL, opts->table ? stdout : NULL, &mc);
        if (rc == SV_OK && mc.failed + mc.missing > 0) any_failed = 1;
    }
    rc = sv_agree(rc, comm);
    if (rc == SV_OK && any_failed) {
        rc = SV_EINPUT;
        if (rank == 0) {
            printf("[saeval] some pairs failed: see the error lines on stderr and all_eval_results.json\n");
            fflush(stdout);
        }
    }
out:
    if (log) {
        fprintf(log, "%s after %.3f s\n", rc == SV_OK ? "finished" : "failed", now_s() - t0);
        fclose(log);
    }
    if (rc == SV_OK && rank == 0 && !opts->quiet) {
        printf("[saeval] done in %.2f s, results in %s\n", now_s() - t0, out_dir);
        fflush(stdout);
    }
    for (int i = 0; geom && i < ns; i++) {
        if (geom[i]) sv_geometry_free(geom[i]);
        free(geom[i]);
    }
    free(geom); free(slots); free(sae_of); free(failed_sae); free(out_dir);
    sv_plan_free(&pl);
    sv_config_free(&cfg);
    return rc;
}

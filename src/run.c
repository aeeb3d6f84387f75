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
#include "saeval/watchdog.h"
#include "saeval/claim.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "saeval/agree.h"
#include "saeval/config.h"
#include "saeval/downstream.h"
#include "saeval/env.h"
#include "saeval/featpass.h"
#include "saeval/forward.h"
#include "saeval/gemm.h"
#include "saeval/fsutil.h"
#include "saeval/geometry.h"
#include "saeval/merge.h"
#include "saeval/metrics.h"
#include "saeval/output.h"
#include "saeval/plan.h"
#include "saeval/progress.h"
#include "saeval/reduce.h"
#include "saeval/report.h"
#include "saeval/results.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/signals.h"
#include "saeval/store.h"

/* Per-row quantities computed in parallel before the ordered sums. */
enum { RQ_E, RQ_NX2, RQ_NH2, RQ_DOT, RQ_DM, RQ_L1, RQ_N };

typedef struct {
    sv_sae sae;
    const char *id;
    sv_fwd fwd;
    int64_t *ints;     /* integer partials, layout of metrics.h (sv_ints_len) */
    int64_t *last_seq; /* per latent: last global sequence it fired in */
    const sv_geometry *geom; /* weight geometry, complete on rank 0 */
    sv_feat *feat;     /* top examples etc. (config top_examples > 0), else NULL */
} sv_slot;



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
    /* /targets when a transcoder is in the pass (dt > 0): read, gathered
     * and summed like /activations; D is the dataset part of the partials
     * (d_in + 1, then d_out + 1 more for the targets). */
    int64_t dt, D;
    float *y, *ye;
    int64_t *tok, *seq_of;
    int64_t *tok_of; /* global token index of each evaluated row */
    double *rowq; /* [block rows][RQ_N] */
    int64_t ds_ints[SV_D_COUNT]; /* evaluated, masked, non-finite (masked too) */
    uint64_t bytes_read;
    /* Downstream metrics (a model for this dataset), else ds_model NULL. */
    sv_model *ds_model;
    sv_model_ws ds_ws;
    sv_hook ds_hook;
    int64_t ds_nseq;    /* sequences [0, ds_nseq) get them */
    sv_ds_sums ds_sums;
    uint8_t *ds_mask;
    int32_t *ds_ids;
    sv_fwd **ds_fw;
    /* Feature analysis: the sparse rows of the sequences not yet complete
     * (one SAE at a time), so an example's window is read while in memory. */
    int64_t *f_rowptr; /* [max_unit + 1] */
    int32_t *f_idx;
    float *f_val;
    int64_t f_cap;
    double feat_seconds; /* in feat_rows */
} sv_pass;

/* Append the block's sparse rows (rows r0.. of the unit's evaluated rows)
 * after the held rows [*b0, r0); then hand the rows of the sequences that
 * are complete to the accumulator and drop them. last: the unit's last block. */
static sv_rc feat_rows(sv_pass *ps, sv_feat *feat, const sv_fwd *f, int64_t *b0, int64_t r0, int64_t nb, int64_t ne)
{
    int64_t *rp = ps->f_rowptr;
    const int64_t h = r0 - *b0, base = rp[h], add = f->rowptr[nb] - f->rowptr[0];
    if (base + add > ps->f_cap) {
        int64_t cap = 2 * (base + add) + 1024;
        int32_t *ni = realloc(ps->f_idx, (size_t)cap * sizeof *ni);
        if (ni) ps->f_idx = ni;
        float *nv = realloc(ps->f_val, (size_t)cap * sizeof *nv);
        if (nv) ps->f_val = nv;
        if (!ni || !nv) return sv_fail(SV_EINTERNAL, "out of memory for the feature rows");
        ps->f_cap = cap;
    }
    for (int64_t q = 0; q < add; q++) {
        ps->f_idx[base + q] = f->idx[f->rowptr[0] + q];
        ps->f_val[base + q] = (float)f->val[f->rowptr[0] + q];
    }
    for (int64_t r = 1; r <= nb; r++) rp[h + r] = base + f->rowptr[r] - f->rowptr[0];
    const int64_t end = r0 + nb;
    int64_t cut = end;
    if (end < ne) /* rows of the sequence that goes on into the next block stay */
        while (cut > *b0 && ps->seq_of[cut - 1] == ps->seq_of[end]) cut--;
    const sv_feat_rows R = {end - *b0, ps->tok_of + *b0, ps->seq_of + *b0, ps->st->seq_offsets, rp, ps->f_idx, ps->f_val};
    sv_rc rc = sv_feat_observe_rows(feat, &R, 0, cut - *b0);
    if (rc != SV_OK) return rc;
    /* keep rows [cut, end) at the front */
    const int64_t k = cut - *b0, n = end - cut, e0 = rp[k];
    memmove(ps->f_idx, ps->f_idx + e0, (size_t)(rp[k + n] - e0) * sizeof *ps->f_idx);
    memmove(ps->f_val, ps->f_val + e0, (size_t)(rp[k + n] - e0) * sizeof *ps->f_val);
    for (int64_t r = 0; r <= n; r++) rp[r] = rp[k + r] - e0;
    *b0 = cut;
    return SV_OK;
}

/* The downstream sums of the unit's first-N sequences, into each SAE's
 * partials, sequence by sequence in order (downstream.c). */
static sv_rc eval_downstream(sv_pass *ps, int64_t s0, int64_t s1, double *leaf)
{
    sv_store *st = ps->st;
    const int64_t d = st->d_in, t0 = st->seq_offsets[s0];
    sv_rc rc = SV_OK;
    for (int64_t s = s0; rc == SV_OK && s < s1 && s < ps->ds_nseq; s++) {
        const int64_t a = st->seq_offsets[s] - t0, T = st->seq_offsets[s + 1] - st->seq_offsets[s];
        for (int64_t t = 0; t < T; t++) {
            const int64_t id = ps->tok[a + t];
            ps->ds_ids[t] = id >= 0 && id <= INT32_MAX ? (int32_t)id : -1; /* -1: refused as outside the vocabulary */
            int m = ps->n_mask > 0 && bsearch(&ps->tok[a + t], ps->mask_ids, (size_t)ps->n_mask, sizeof(int64_t), cmp_i64);
            for (int64_t i = 0; !m && i < d; i++) m = !isfinite(ps->x[(a + t) * d + i]);
            ps->ds_mask[t] = (uint8_t)m;
        }
        sv_ds_sums_zero(&ps->ds_sums);
        rc = sv_ds_sequence_saes(&ps->ds_ws, ps->ds_hook, T, ps->ds_ids, ps->ds_mask, ps->x + a * d, ps->n_slots,
                                 ps->ds_fw, &ps->ds_sums);
        if (rc != SV_OK) {
            char msg[600]; /* name the store: the message is about one of its sequences */
            snprintf(msg, sizeof msg, "%s", sv_errmsg());
            return sv_fail(rc, "%s: sequence %lld: %s", st->path, (long long)s, msg);
        }
        for (int k = 0; k < ps->n_slots; k++) {
            double *p = leaf + sv_part_sae(ps->D, k);
            p[SV_P_DS_CE_CLEAN] += ps->ds_sums.ce_clean;
            p[SV_P_DS_CE_ABL] += ps->ds_sums.ce_ablation;
            p[SV_P_DS_KL_ABL] += ps->ds_sums.kl_ablation;
            p[SV_P_DS_CE_SAE] += ps->ds_sums.ce_sae[k];
            p[SV_P_DS_KL_SAE] += ps->ds_sums.kl_sae[k];
            ps->slots[k].ints[SV_I_DS_CE_TOKENS] += ps->ds_sums.ce_tokens;
            ps->slots[k].ints[SV_I_DS_KL_TOKENS] += ps->ds_sums.kl_tokens;
        }
    }
    return rc;
}

/* The first token left out of a unit (ne == t: every row before it was
 * kept): those ne rows move to the gathered buffers (xe, ye), where the
 * later ones follow. */
static void gather_prefix(sv_pass *ps, int64_t ne)
{
    const int64_t d = ps->st->d_in;
    memcpy(ps->xe, ps->x, (size_t)(ne * d) * sizeof(float));
    if (ps->dt > 0) memcpy(ps->ye, ps->y, (size_t)(ne * ps->dt) * sizeof(float));
}

/* Evaluate one unit: sequences [s0, s1). */
static sv_rc eval_unit(sv_pass *ps, int64_t s0, int64_t s1, double *leaf)
{
    sv_store *st = ps->st;
    const int64_t d = st->d_in;
    const int64_t t0 = st->seq_offsets[s0], t1 = st->seq_offsets[s1], nt = t1 - t0;
    const int64_t dt = ps->dt;
    sv_rc rc = sv_store_read_rows(st, t0, nt, ps->x);
    if (rc != SV_OK) return rc;
    ps->bytes_read += (uint64_t)(nt * d) * (st->dtype == SV_STORE_F32 ? 4u : 2u);
    if (dt > 0) {
        if ((rc = sv_store_read_targets(st, t0, nt, ps->y)) != SV_OK) return rc;
        ps->bytes_read += (uint64_t)(nt * dt) * (st->tgt_dtype == SV_STORE_F32 ? 4u : 2u);
    }
    int use_mask = ps->n_mask > 0 && st->has_token_ids;
    if ((use_mask || ps->ds_model) && (rc = sv_store_read_token_ids(st, t0, nt, ps->tok)) != SV_OK) return rc;

    /* Gather evaluated tokens; accumulate the dataset's sums in token order.
     * While no token is left out (ne == t) the evaluated rows are the rows
     * read, used where they are; the first one left out starts the copy. */
    double *sum_x = leaf, *sum_sq = leaf + d;
    int64_t ne = 0, s = s0;
    for (int64_t t = 0; t < nt; t++) {
        while (t0 + t >= st->seq_offsets[s + 1]) s++;
        if (use_mask && bsearch(&ps->tok[t], ps->mask_ids, (size_t)ps->n_mask, sizeof(int64_t), cmp_i64)) {
            ps->ds_ints[SV_D_MASKED]++;
            if (ne == t) gather_prefix(ps, ne);
            continue;
        }
        const float *xr = ps->x + t * d, *yr = dt > 0 ? ps->y + t * dt : NULL;
        int64_t bad = -1, bady = -1;
        for (int64_t i = 0; i < d && bad < 0; i++)
            if (!isfinite(xr[i])) bad = i;
        for (int64_t i = 0; i < dt && bad < 0 && bady < 0; i++)
            if (!isfinite(yr[i])) bady = i;
        if (bad >= 0 || bady >= 0) {
            if (!ps->cfg->nonfinite_skip)
                return sv_fail(SV_EINPUT, "%s: %s: non-finite value (%g) at token %lld, dimension %lld; "
                               "set \"nonfinite\": \"skip\" in the config to mask such tokens",
                               st->path, bad >= 0 ? "/activations" : "/targets",
                               bad >= 0 ? (double)xr[bad] : (double)yr[bady], (long long)(t0 + t),
                               (long long)(bad >= 0 ? bad : bady));
            ps->ds_ints[SV_D_NONFINITE]++;
            if (ne == t) gather_prefix(ps, ne);
            continue;
        }
        if (ne != t) memcpy(ps->xe + ne * d, xr, (size_t)d * sizeof(float));
        ps->seq_of[ne] = s;
        ps->tok_of[ne] = t0 + t;
        double ss = 0;
        for (int64_t i = 0; i < d; i++) {
            sum_x[i] += xr[i];
            ss += (double)xr[i] * xr[i];
        }
        *sum_sq += ss;
        if (dt > 0) { /* the targets' own sums, for a transcoder's explained variance */
            double *sum_y = leaf + d + 1, *sum_sq_y = sum_y + dt, sy = 0;
            if (ne != t) memcpy(ps->ye + ne * dt, yr, (size_t)dt * sizeof(float));
            for (int64_t i = 0; i < dt; i++) {
                sum_y[i] += yr[i];
                sy += (double)yr[i] * yr[i];
            }
            *sum_sq_y += sy;
        }
        ne++;
    }
    ps->ds_ints[SV_D_EVALUATED] += ne;
    if (ne == 0) return SV_OK;
    double *mu_b = malloc((size_t)(d + dt) * sizeof(double)), *mu_y = mu_b + d;
    if (!mu_b) return sv_fail(SV_EINTERNAL, "out of memory");
    for (int64_t i = 0; i < d; i++) mu_b[i] = sum_x[i] / (double)ne;
    for (int64_t i = 0; i < dt; i++) mu_y[i] = leaf[d + 1 + i] / (double)ne;
    const float *xe = ne == nt ? ps->x : ps->xe, *ye = ne == nt ? ps->y : ps->ye;

    const int64_t R = ps->slots[0].fwd.max_rows; /* block rows (may be lowered by the memory budget) */
    for (int k = 0; k < ps->n_slots; k++) {
        sv_slot *sl = &ps->slots[k];
        const int64_t m = sl->sae.cfg.d_sae;
        double *p = leaf + sv_part_sae(ps->D, k);
        /* What the reconstruction is compared with: the input, or a
         * transcoder's targets (every reconstruction metric). */
        const int tc = sl->sae.cfg.transcoder;
        const int64_t dr = tc ? dt : d;
        const float *ref = tc ? ye : xe;
        const double *mu_r = tc ? mu_y : mu_b;
        int64_t *firing = sl->ints + sv_ints_firing(m), *fired_seq = sl->ints + sv_ints_fired_seq(m);
        int64_t *hist = sl->ints + sv_ints_hist(m);
        double sxh2 = 0, sdot = 0;
        int64_t fb0 = 0; /* first evaluated row held for the feature windows */
        if (sl->feat) ps->f_rowptr[0] = 0;
        for (int64_t r0 = 0; r0 < ne; r0 += R) {
            int64_t nb = ne - r0 < R ? ne - r0 : R;
            if ((rc = sv_fwd_run(&sl->fwd, xe + r0 * d, nb)) != SV_OK) break;
            const sv_fwd *f = &sl->fwd;
            double *rq = ps->rowq; /* [nb][RQ_N] per-row quantities */
            /* Rows are independent: threads compute them in any order... */
#pragma omp parallel for num_threads(sv_fwd_get_threads()) schedule(static)
            for (int64_t r = 0; r < nb; r++) {
                const float *xr = ref + (r0 + r) * dr;
                const double *hr = f->xhat + r * dr;
                double e = 0, nx2 = 0, nh2 = 0, dot = 0, dm = 0, l1 = 0;
                for (int64_t i = 0; i < dr; i++) {
                    double xv = xr[i], hv = hr[i], df = xv - hv, dmv = xv - mu_r[i];
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
                p[SV_P_SSE] += e;
                p[SV_P_COS] += (nx == 0 || nh == 0) ? 0.0 : dot / (nx * nh);
                p[SV_P_NORM_IN] += nx;
                p[SV_P_NORM_OUT] += nh;
                p[SV_P_RATIO] += nx < 1e-4 ? 1.0 : nh / nx;
                p[SV_P_LEGACY] += 1.0 - e / dm;
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
                p[SV_P_L1] += l1;
                sl->ints[SV_I_L0] += q1 - q0;
                hist[q1 - q0]++;
            }
            /* values already computed; order-free, so blocks and ranks may split it anywhere */
            if (sl->feat) {
                const double tf = sv_now();
                rc = feat_rows(ps, sl->feat, f, &fb0, r0, nb, ne);
                ps->feat_seconds += sv_now() - tf;
                if (rc != SV_OK) break;
            }
        }
        if (rc != SV_OK) break;
        p[SV_P_RRB] = (sxh2 / (double)ne) / (sdot / (double)ne);
        sl->ints[SV_I_UNITS]++;
        if (sl->feat) sv_feat_add_tokens(sl->feat, ne);
    }
    free(mu_b);
    if (rc == SV_OK && ps->ds_model) rc = eval_downstream(ps, s0, s1, leaf);
    return rc;
}

/* Test hook: SAEVAL_TEST_FAIL_RANK=r makes rank r fail after its first
 * work unit, to check that a failing rank ends the job promptly. */
static int test_fail_here(int rank)
{
    const char *e = getenv("SAEVAL_TEST_FAIL_RANK");
    return e && *e && atoi(e) == rank;
}

/* Test hook: SAEVAL_TEST_UNIT_DELAY_MS=n sleeps n ms after each work unit,
 * so the fault tests can act in the middle of a run on small data. */
static void test_unit_delay(void)
{
    const char *e = getenv("SAEVAL_TEST_UNIT_DELAY_MS");
    long ms = e && *e ? atol(e) : 0;
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* One pass over a store for a group of loaded SAEs; writes their pair files
 * on rank 0. */
static sv_rc run_pass(const sv_config *cfg, const sv_plan *pl, int j, sv_slot *slots, int n_slots,
                      const int *sae_of, const char *out_dir, MPI_Comm comm, FILE *log, sv_progress *pg,
                      int pass, int n_pass, const sv_run_opts *opts, sv_run_stats *stats)
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
    sv_model *ds_model = NULL;
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
    ps.D = d;
    for (int k = 0; k < n_slots; k++)
        if (slots[k].sae.cfg.transcoder) ps.dt = st->d_out; /* the plan checked that the widths match */
    if (ps.dt > 0) {
        ps.D = d + 1 + ps.dt;
        ps.y = sv_malloc((size_t)(max_unit * ps.dt) * sizeof(float));
        ps.ye = sv_malloc((size_t)(max_unit * ps.dt) * sizeof(float));
        if (!ps.y || !ps.ye) { rc = SV_EINTERNAL; goto agree; }
    }
    ps.x = sv_malloc((size_t)(max_unit * d) * sizeof(float));
    ps.xe = sv_malloc((size_t)(max_unit * d) * sizeof(float));
    ps.tok = sv_malloc((size_t)max_unit * sizeof(int64_t));
    ps.seq_of = sv_malloc((size_t)max_unit * sizeof(int64_t));
    ps.tok_of = sv_malloc((size_t)max_unit * sizeof(int64_t));
    ps.rowq = sv_malloc((size_t)slots[0].fwd.max_rows * RQ_N * sizeof(double));
    if (!ps.x || !ps.xe || !ps.tok || !ps.seq_of || !ps.tok_of || !ps.rowq) { rc = SV_EINTERNAL; goto agree; }
    /* Feature accumulators per (SAE, dataset): an SAE kept across datasets
     * starts afresh, with the dataset's window width. */
    for (int k = 0; k < n_slots && rc == SV_OK && cfg->top_examples > 0; k++) {
        sv_feat_params fp;
        sv_featpass_params(&fp, slots[k].sae.cfg.d_sae, cfg->top_examples, cfg->ctx_before, cfg->ctx_after,
                           sv_featpass_max_seq(st));
        sv_feat_free(slots[k].feat);
        slots[k].feat = NULL;
        rc = sv_feat_new(&slots[k].feat, &fp);
    }
    if (rc == SV_OK && cfg->top_examples > 0 && !(ps.f_rowptr = sv_malloc((size_t)(max_unit + 1) * sizeof(int64_t))))
        rc = SV_EINTERNAL;
    if (rc != SV_OK) goto agree;
    for (int k = 0; k < n_slots; k++) {
        int64_t m = slots[k].sae.cfg.d_sae;
        memset(slots[k].ints, 0, sv_ints_len(m) * sizeof(int64_t));
        for (int64_t q = 0; q < m; q++) slots[k].last_seq[q] = -1;
    }
    if (ds->model) { /* the model of the downstream metrics, once per pass and rank, shared by every SAE */
        int64_t maxT = 1;
        for (int64_t q = 0; q < st->n_seq; q++)
            if (st->seq_offsets[q + 1] - st->seq_offsets[q] > maxT) maxT = st->seq_offsets[q + 1] - st->seq_offsets[q];
        if (!(ds_model = sv_calloc(1, sizeof *ds_model))) { rc = SV_EINTERNAL; goto agree; }
        if ((rc = sv_model_load(ds_model, ds->model, cfg->precision)) != SV_OK) { free(ds_model); ds_model = NULL; goto agree; }
        ps.ds_model = ds_model;
        if ((rc = sv_ds_check_store(st, ds_model, &ps.ds_hook)) != SV_OK) goto agree;
        if ((rc = sv_model_ws_init(&ps.ds_ws, ds_model, maxT, n_slots + 2)) != SV_OK) goto agree;
        if ((rc = sv_ds_sums_init(&ps.ds_sums, n_slots)) != SV_OK) goto agree;
        ps.ds_nseq = cfg->downstream_sequences > 0 && cfg->downstream_sequences < st->n_seq ? cfg->downstream_sequences : st->n_seq;
        ps.ds_mask = sv_malloc((size_t)maxT);
        ps.ds_ids = sv_malloc((size_t)maxT * sizeof(int32_t));
        ps.ds_fw = sv_malloc((size_t)n_slots * sizeof(sv_fwd *));
        if (!ps.ds_mask || !ps.ds_ids || !ps.ds_fw) { rc = SV_EINTERNAL; goto agree; }
        for (int k = 0; k < n_slots; k++) ps.ds_fw[k] = &slots[k].fwd;
    }
agree:
    rc = sv_agree(rc, comm);
    if (rc != SV_OK) goto out;
    {
        const size_t len = sv_part_len(ps.D, n_slots);
        sv_tree *tree = sv_tree_new(n_units, first[rank], last[rank], len);
        if (!tree) rc = SV_EINTERNAL;
        double t_start = sv_now();
        int64_t my_tokens = 0, done_tokens = 0;
        for (int64_t u = first[rank]; u < last[rank]; u++) my_tokens += w[u];
        if (rank == 0 && !opts->quiet) sv_progress_line(pg, ds->name, pass, n_pass, 0.0, pass_cost, 0.0, 1);
        for (int64_t u = first[rank]; rc == SV_OK && u < last[rank]; u++) {
            if (sv_signals_stop()) {
                rc = sv_fail(SV_EINTERRUPTED, "stopped by signal %d; complete result files are kept, rerun to resume", sv_signals_stop());
                break;
            }
            int64_t s1 = (u + 1) * B < st->n_seq ? (u + 1) * B : st->n_seq;
            rc = eval_unit(&ps, u * B, s1, sv_tree_leaf(tree));
            if (rc == SV_OK) rc = sv_tree_push(tree);
            if (rc == SV_OK && test_fail_here(rank)) rc = sv_fail(SV_EINTERNAL, "injected failure (SAEVAL_TEST_FAIL_RANK)");
            test_unit_delay();
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
                sv_progress_line(pg, ds->name, pass, n_pass, my_tokens ? (double)done_tokens / my_tokens : 1.0,
                              pass_cost, P * done_tokens / (sv_now() - t_start + 1e-9), 0);
        }
        if (rc == SV_OK && sv_signals_stop())
            rc = sv_fail(SV_EINTERRUPTED, "stopped by signal %d; complete result files are kept, rerun to resume", sv_signals_stop());
        rc = sv_agree(rc, comm);
        double *tot = NULL;
        if (rc == SV_OK && rank == 0 && !(tot = sv_malloc(len * sizeof(double)))) rc = SV_EINTERNAL;
        if (rc == SV_OK) rc = sv_tree_reduce(tree, comm, tot);
        sv_tree_free(tree);
        rc = sv_agree(rc, comm);
        if (rc != SV_OK) { free(tot); goto out; }

        /* Integer counts are exact, so a plain sum is order-invariant. */
        int64_t ds_tot[SV_D_COUNT];
        uint64_t bytes_tot = 0;
        MPI_Allreduce(ps.ds_ints, ds_tot, SV_D_COUNT, MPI_INT64_T, MPI_SUM, comm);
        if (ds_tot[SV_D_EVALUATED] == 0) { /* nothing to evaluate: refuse rather than write NaNs */
            rc = sv_agree(sv_fail(SV_EINPUT, "%s: every token is masked (special_token_ids, exclude_token_ids%s): nothing to evaluate",
                                  st->path, cfg->nonfinite_skip ? ", non-finite values" : ""), comm);
            free(tot);
            goto out;
        }
        MPI_Reduce(&ps.bytes_read, &bytes_tot, 1, MPI_UINT64_T, MPI_SUM, 0, comm);
        for (int k = 0; k < n_slots; k++) {
            int64_t m = slots[k].sae.cfg.d_sae, cnt = (int64_t)sv_ints_len(m);
            int64_t *tot_ints = rank == 0 ? sv_malloc((size_t)cnt * sizeof(int64_t)) : NULL;
            MPI_Reduce(slots[k].ints, tot_ints, (int)cnt, MPI_INT64_T, MPI_SUM, 0, comm);
            if (rank == 0 && rc == SV_OK) {
                const int p = sae_of[k] * pl->n_ds + j;
                sv_pair_metrics pm;
                sv_jw jw;
                const int tc = slots[k].sae.cfg.transcoder; /* a transcoder's variance is its targets' */
                const sv_metric_sums sums = {tc ? ps.dt : d, m, st->n_seq, tc ? tot + d + 1 : tot, tot + sv_part_sae(ps.D, k), tot_ints, ds_tot,
                                             cfg->dead_density_threshold, ds_model != NULL};
                sv_metrics_finalize(&sums, &pm);
                pm.ds_model = ds->model;
                pm.ds_hook = st->hook_name;
                pm.ds_sequences = ps.ds_nseq;
                sv_jw_init(&jw);
                /* Model size for the health ratings: the config wins, else the store's attribute. */
                double mp = !isnan(cfg->model_params) ? cfg->model_params : st->model_params;
                rc = sv_pair_json(&jw, slots[k].id, ds->name, &slots[k].sae, cfg, &pm, slots[k].geom, mp,
                                  pl->pair_hash[p]);
                sv_jw_raw(&jw, "\n", 1);
                if (rc == SV_OK && jw.oom) rc = sv_fail(SV_EINTERNAL, "out of memory writing results");
                char why[2048];
                if (rc == SV_OK && sv_plan_inputs_changed(pl, cfg, p, why, sizeof why)) {
                    /* Never a result that mixes two versions of an input. */
                    fprintf(stderr, "saeval: error: %s\n", why);
                    fflush(stderr);
                    sv_results_note_failure(out_dir, slots[k].id, ds->name, why);
                    if (stats) stats->inputs_changed++;
                } else if (rc == SV_OK) rc = sv_results_write_pair(out_dir, slots[k].id, ds->name, jw.buf, jw.len);
                sv_jw_free(&jw);
                pg->pairs_done++;
            }
            free(tot_ints);
        }
        /* Feature files, after the pair files (collective: agree first). */
        rc = sv_agree(rc, comm);
        const double t_feat = sv_now();
        for (int k = 0; k < n_slots && rc == SV_OK; k++) {
            if (!slots[k].feat) continue;
            const sv_featpass_ctx fc = {st, out_dir, slots[k].id, ds->name};
            rc = sv_featpass_finish(slots[k].feat, &fc, comm);
        }
        const double feat_finish = sv_now() - t_feat;
        if (stats && cfg->top_examples > 0) {
            stats->feat_observe_seconds += ps.feat_seconds;
            stats->feat_finish_seconds += feat_finish;
        }
        if (rank == 0 && log && cfg->top_examples > 0)
            fprintf(log, "dataset %s pass %d/%d: feature data: kept during the pass %.3f s, merged and written %.3f s (rank 0)\n",
                    ds->name, pass, n_pass, ps.feat_seconds, feat_finish);
        pg->cost_done += pass_cost;
        if (stats) {
            stats->pass_seconds += sv_now() - t_start;
            stats->bytes_read += bytes_tot;
            stats->passes++;
            stats->tokens += st->n_tokens;
        }
        if (rank == 0 && log)
            fprintf(log, "dataset %s pass %d/%d: %d SAEs, %s, %lld tokens, %lld units, %d ranks, %llu bytes read, %.3f s\n",
                    ds->name, pass, n_pass, n_slots, st->path, (long long)st->n_tokens, (long long)n_units, P,
                    (unsigned long long)bytes_tot, sv_now() - t_start);
        if (rank == 0 && log) fflush(log);
        free(tot);
        rc = sv_agree(rc, comm);
    }
out:
    free(w); free(first); free(last); free(ps.mask_ids);
    free(ps.x); free(ps.xe); free(ps.y); free(ps.ye); free(ps.tok); free(ps.seq_of); free(ps.tok_of); free(ps.rowq);
    sv_model_ws_free(&ps.ds_ws);
    sv_ds_sums_free(&ps.ds_sums);
    free(ps.ds_mask); free(ps.ds_ids); free(ps.ds_fw);
    free(ps.f_rowptr); free(ps.f_idx); free(ps.f_val);
    for (int k = 0; k < n_slots; k++) { sv_feat_free(slots[k].feat); slots[k].feat = NULL; }
    if (ds_model) { sv_model_free(ds_model); free(ds_model); }
    return rc;
}

/* The run's state between its steps. */
typedef struct {
    const char *config_path;
    const sv_run_opts *opts;
    MPI_Comm comm;
    int rank, P;
    sv_config cfg;
    sv_plan pl;
    char *out_dir;
    sv_slot *slots;         /* the SAEs of the current pass */
    int *sae_of;            /* slot -> SAE index */
    int *failed_sae;        /* an SAE that failed to load fails its remaining pairs */
    sv_geometry **geom;     /* per SAE, computed once */
    FILE *log;
    sv_progress pg;
    int any_failed;
    sv_run_stats *stats;
    uint64_t weight_bytes;  /* SAE file bytes loaded by this rank */
    int weight_loads;
    /* Seconds of the run's steps on this rank, for run.log's breakdown. */
    double t_setup, t_load, t_geom, t_init, t_pass, t_free, t_summary;
    /* Pair claims (rank 0): which pairs this run holds, and how many it left
     * to another run working on the same output directory. */
    char *claim_dir;
    sv_claim_owner me;
    int *claimed;           /* [pair] */
    int left_to_others;
    sv_claim_owner other;   /* the first such run, for the message */
} sv_runner;

/* A pair's claim name: its result file's name without ".json". */
static char *claim_name(const sv_runner *r, int p)
{
    char *path = sv_pair_path("", r->pl.ids[p / r->pl.n_ds], r->cfg.datasets[p % r->pl.n_ds].name);
    if (!path) return NULL;
    memmove(path, path + 1, strlen(path)); /* drop the leading "/" */
    path[strlen(path) - 5] = '\0';
    return path;
}

/* Rank 0's heartbeat keeps its claims live for runs on other hosts (lease);
 * called from the watchdog thread (claim_dir and me are fixed by then). */
static void claims_heartbeat(void *arg)
{
    const sv_runner *r = arg;
    if (sv_claim_refresh(r->claim_dir, &r->me) != SV_OK) {
        fprintf(stderr, "[saeval] warning: %s\n", sv_errmsg());
        sv_clear_error();
    }
}

/* Rank 0 claims every pair it is about to compute; pairs another live run
 * holds are left to it (dropped from this run's plan on every rank). */
static sv_rc claim_pairs(sv_runner *r)
{
    sv_plan *pl = &r->pl;
    const int np = pl->n_saes * pl->n_ds;
    sv_rc rc = SV_OK;
    r->claimed = sv_calloc((size_t)np, sizeof *r->claimed);
    int *drop = sv_calloc((size_t)np, sizeof *drop);
    if (!r->claimed || !drop) rc = SV_EINTERNAL;
    if (rc == SV_OK && r->rank == 0) {
        sv_claim_me(&r->me);
        r->claim_dir = sv_path_join(r->out_dir, ".claims");
        if (!r->claim_dir) rc = SV_EINTERNAL;
        for (int p = 0; p < np && rc == SV_OK; p++) {
            if (!pl->todo[p]) continue;
            char *name = claim_name(r, p);
            sv_claim_state st;
            sv_claim_owner holder;
            rc = name ? sv_claim_try(r->claim_dir, name, &r->me, 0, &st, &holder) : SV_EINTERNAL;
            free(name);
            if (rc != SV_OK) break;
            if (st == SV_CLAIM_TAKEN) r->claimed[p] = 1;
            else {
                if (!r->left_to_others) r->other = holder;
                r->left_to_others++;
                drop[p] = 1;
            }
        }
        int held = 0;
        for (int p = 0; p < np; p++) held += r->claimed[p];
        if (rc == SV_OK && held) {
            rc = sv_claim_refresh(r->claim_dir, &r->me);
            sv_watchdog_every(60.0, claims_heartbeat, r);
        } else if (rc == SV_OK) { /* nothing to compute: no claims, no heartbeat */
            free(r->claim_dir);
            r->claim_dir = NULL;
        }
    }
    rc = sv_agree(rc, r->comm);
    if (rc == SV_OK) {
        MPI_Bcast(drop, np, MPI_INT, 0, r->comm);
        MPI_Bcast(&r->left_to_others, 1, MPI_INT, 0, r->comm);
        for (int p = 0; p < np; p++)
            if (drop[p]) pl->todo[p] = 0, pl->pass_of[p] = 0;
    }
    free(drop);
    return rc;
}

static void release_claim(sv_runner *r, int p)
{
    if (r->rank != 0 || !r->claim_dir || !r->claimed || !r->claimed[p]) return;
    char *name = claim_name(r, p);
    if (name) sv_claim_release(r->claim_dir, name, &r->me);
    free(name);
    r->claimed[p] = 0;
}

/* Step 1: config, threads, output directory, plan and per-run buffers. */
static sv_rc setup(sv_runner *r)
{
    sv_rc rc = sv_agree(sv_config_load(&r->cfg, r->config_path), r->comm);
    if (rc != SV_OK) return rc;
    sv_fwd_set_threads_default(r->comm);
    /* The GEMM backend, once per run (SAEVAL_GEMM; OpenBLAS by default). */
    if ((rc = sv_agree(sv_gemm_select(NULL), r->comm)) != SV_OK) return rc;
    const int ns = r->cfg.n_saes;
    r->out_dir = sv_strdup(r->opts->output_dir ? r->opts->output_dir : r->cfg.output_dir);
    if (!r->out_dir) rc = SV_EINTERNAL;
    if (rc == SV_OK && r->rank == 0) rc = sv_mkdir_p(r->out_dir);
    if ((rc = sv_agree(rc, r->comm)) != SV_OK) return rc;
    rc = sv_plan_build(&r->pl, &r->cfg, r->out_dir, r->opts->shard, r->opts->n_shards > 0 ? r->opts->n_shards : 1,
                       r->opts->force, r->comm);
    if ((rc = sv_agree(rc, r->comm)) != SV_OK) return rc;
    r->slots = sv_calloc((size_t)ns, sizeof *r->slots);
    r->geom = sv_calloc((size_t)ns, sizeof *r->geom);
    r->sae_of = sv_calloc((size_t)ns, sizeof *r->sae_of);
    r->failed_sae = sv_calloc((size_t)ns, sizeof *r->failed_sae);
    if (!r->slots || !r->geom || !r->sae_of || !r->failed_sae) rc = SV_EINTERNAL;
    if (r->stats) r->stats->block_rows = r->pl.block_rows;
    if ((rc = sv_agree(rc, r->comm)) != SV_OK) return rc;
    return claim_pairs(r);
}

/* Step 2: notes for pairs the plan already failed, progress totals, run.log
 * header and the opening line. */
static void announce(sv_runner *r)
{
    const sv_plan *pl = &r->pl;
    const int ns = pl->n_saes, nd = pl->n_ds;
    sv_progress_start(&r->pg);
    for (int p = 0; p < ns * nd; p++) {
        if (pl->in_shard[p] && pl->pair_err[p]) {
            r->any_failed = 1;
            if (r->rank == 0) sv_results_note_failure(r->out_dir, pl->ids[p / nd], r->cfg.datasets[p % nd].name, pl->pair_err[p]);
        }
        if (!pl->todo[p]) continue;
        r->pg.pairs_total++;
        r->pg.cost_total += (double)pl->stores[p % nd].n_tokens * (double)pl->cfg[p / nd].d_sae;
    }
    if (r->rank != 0) return;
    char *lp = sv_path_join(r->out_dir, "run.log");
    r->log = lp ? fopen(lp, "a") : NULL;
    free(lp);
    int skipped = 0, in_shard = 0;
    for (int p = 0; p < ns * nd; p++) {
        in_shard += pl->in_shard[p];
        skipped += pl->in_shard[p] && !pl->todo[p] && !pl->pair_err[p];
    }
    if (r->log) {
        sv_env_log_header(r->log, r->config_path, r->opts->shard, pl->n_shards, r->P, pl->block_rows, pl->budget);
        double flops = 0;
        int64_t k = 0;
        for (int p = 0; p < ns * nd; p++)
            if (pl->todo[p]) {
                const sv_sae_cfg *c = &pl->cfg[p / nd];
                flops += 2.0 * (double)pl->stores[p % nd].n_tokens * (double)c->d_in * (double)c->d_sae;
                if (c->d_in > k) k = c->d_in;
            }
        sv_env_log_gemm(r->log, r->cfg.precision, flops, k);
    }
    if (pl->floor_bytes > pl->budget) { /* say so rather than pretend */
        char msg[512];
        snprintf(msg, sizeof msg, "memory budget %llu MB per rank is below what SAE %s needs on its own (%llu MB with "
                 "%lld-row blocks%s): it runs with that", (unsigned long long)(pl->budget >> 20), pl->ids[pl->floor_sae],
                 (unsigned long long)((pl->floor_bytes + (1 << 20) - 1) >> 20), (long long)pl->block_rows,
                 pl->geometry ? " and its geometry" : "");
        fprintf(stderr, "[saeval] warning: %s\n", msg);
        if (r->log) fprintf(r->log, "warning: %s\n", msg);
    }
    if (!r->opts->quiet) {
        printf("[saeval] %d SAEs x %d datasets, %d ranks x %d threads, shard %d/%d: %d pairs, %d to compute, "
               "%d already complete, output %s\n",
               ns, nd, r->P, sv_fwd_get_threads(), r->opts->shard, pl->n_shards, in_shard, r->pg.pairs_total, skipped,
               r->out_dir);
        fflush(stdout);
    }
}

/* After a pass: the forward buffers each SAE reached against what the
 * plan counted for them (forward.h: a non-topk SAE's codes at
 * SV_FWD_PLAN_L0 per row); an SAE whose codes outgrew that made the pass
 * exceed the budget by the difference, and is named on stderr. */
static void check_fwd_bytes(sv_runner *r, int n)
{
    uint64_t held = 0, planned = 0;
    for (int k = 0; k < n; k++) {
        const sv_fwd *w = &r->slots[k].fwd;
        if (!w->sae) continue;
        const uint64_t b = sv_fwd_bytes(w), e = sv_fwd_mem_bytes(&w->sae->cfg, r->cfg.precision, w->max_rows);
        held += b;
        planned += e;
        if (b > e) {
            fprintf(stderr, "saeval: warning: rank %d: SAE %s: forward buffers %.1f MB, %.1f MB more than the memory "
                    "plan counts (its L0 exceeds %d per row in some block): that pass exceeded memory_budget_mb by as "
                    "much\n", r->rank, r->slots[k].id, (double)b / (1 << 20), (double)(b - e) / (1 << 20), SV_FWD_PLAN_L0);
            fflush(stderr);
        }
    }
    if (r->log && n > 0)
        fprintf(r->log, "forward buffers of the pass on rank 0: %.1f MB, planned %.1f MB\n", (double)held / (1 << 20),
                (double)planned / (1 << 20));
}

static void free_slots(sv_runner *r, int n)
{
    const double t = sv_now();
    check_fwd_bytes(r, n);
    for (int k = 0; k < n; k++) {
        sv_fwd_free(&r->slots[k].fwd);
        sv_sae_free(&r->slots[k].sae);
        free(r->slots[k].ints);
        free(r->slots[k].last_seq);
        sv_feat_free(r->slots[k].feat);
        memset(&r->slots[k], 0, sizeof r->slots[k]);
    }
    /* Buffers under the mmap threshold (the CLI sets 32 MiB) come from the
     * heap and stay mapped when freed, so that tiles and panels are reused
     * without page faults; a pass's memory goes back to the system here,
     * and the next pass starts within its own budget. */
    malloc_trim(0);
    r->t_free += sv_now() - t;
}

/* Bytes of an SAE's files as its format lists them (what a load reads). */
static void add_file_size(void *ctx, const char *file, sv_ident_kind kind)
{
    struct stat st;
    (void)kind;
    if (stat(file, &st) == 0) *(uint64_t *)ctx += (uint64_t)st.st_size;
}

/* Step 3a: load the SAEs of pass `pass` over dataset j into slots (their
 * geometry computed once per SAE). A bad SAE fails its own pairs only.
 * Returns the number of slots filled in *n. */
static sv_rc load_pass(sv_runner *r, int j, int pass, int *n)
{
    const sv_plan *pl = &r->pl;
    const sv_config *cfg = &r->cfg;
    const int ns = pl->n_saes, nd = pl->n_ds;
    sv_rc rc = SV_OK;
    *n = 0;
    for (int i = 0; i < ns && rc == SV_OK; i++) {
        if (r->failed_sae[i]) continue;
        if (j >= 0 && pl->pass_of[i * nd + j] != pass) continue;
        if (j < 0) { /* every SAE with a pair to compute on any dataset */
            int any = 0;
            for (int jj = 0; jj < nd; jj++) any |= pl->todo[i * nd + jj];
            if (!any) continue;
        }
        sv_slot *sl = &r->slots[*n];
        memset(sl, 0, sizeof *sl);
        double t = sv_now();
        sv_rc e = sv_sae_load(&sl->sae, cfg->saes[i].path, cfg->precision, cfg->saes[i].has_scale,
                              cfg->saes[i].scaling_factor);
        if (e == SV_OK && cfg->saes[i].transcoder) e = sv_sae_declare_transcoder(&sl->sae.cfg, cfg->saes[i].path);
        e = sv_agree(e, r->comm);
        r->t_load += sv_now() - t;
        if (e == SV_EINPUT) {
            sv_sae_free(&sl->sae);
            r->failed_sae[i] = 1;
            r->any_failed = 1;
            for (int jj = 0; jj < nd; jj++)
                if (pl->todo[i * nd + jj] && r->rank == 0)
                    sv_results_note_failure(r->out_dir, pl->ids[i], cfg->datasets[jj].name, sv_errmsg());
            continue;
        }
        if ((rc = e) != SV_OK) break;
        sv_format_for(cfg->saes[i].path)->identity(cfg->saes[i].path, add_file_size, &r->weight_bytes);
        r->weight_loads++;
        if (!r->geom[i] && cfg->geometry) { /* once per SAE, whatever the number of datasets */
            t = sv_now();
            r->geom[i] = sv_calloc(1, sizeof **r->geom);
            rc = r->geom[i] ? sv_geometry_compute(&sl->sae, 0, r->comm, r->geom[i]) : SV_EINTERNAL;
            r->t_geom += sv_now() - t;
            if ((rc = sv_agree(rc, r->comm)) != SV_OK) { (*n)++; break; }
        }
        sl->geom = r->geom[i];
        sl->id = pl->ids[i];
        t = sv_now();
        rc = sv_fwd_init(&sl->fwd, &sl->sae, pl->block_rows);
        if (rc == SV_OK) {
            int64_t m = sl->sae.cfg.d_sae;
            sl->ints = sv_malloc(sv_ints_len(m) * sizeof(int64_t));
            sl->last_seq = sv_malloc((size_t)m * sizeof(int64_t)); /* the feature accumulator: run_pass */
            if (!sl->ints || !sl->last_seq) rc = SV_EINTERNAL;
        }
        r->sae_of[(*n)++] = i;
        r->t_init += sv_now() - t;
        rc = sv_agree(rc, r->comm);
    }
    return rc;
}

/* Every SAE with work left fits the budget at once (with one geometry
 * workspace): then each is loaded once and kept across the datasets. */
static int all_fit(const sv_runner *r)
{
    const sv_plan *pl = &r->pl;
    const int ns = pl->n_saes, nd = pl->n_ds;
    uint64_t used = 0, geo = 0;
    int n = 0;
    for (int i = 0; i < ns; i++) {
        int any = 0;
        for (int j = 0; j < nd; j++) any |= pl->todo[i * nd + j];
        if (!any) continue;
        used += sv_plan_sae_bytes(pl, i, r->cfg.precision, pl->block_rows);
        uint64_t g = pl->geometry ? sv_geometry_mem_bytes(&pl->cfg[i], r->cfg.precision) : 0;
        if (g > geo) geo = g;
        n++;
    }
    uint64_t base = 0; /* the largest pass's own buffers (and downstream model) */
    for (int j = 0; j < nd; j++) {
        const uint64_t b = pl->ds_pass_bytes[j] + pl->ds_model_bytes[j] + (uint64_t)n * pl->ds_stream_bytes[j];
        if (b > base) base = b;
    }
    return n > 0 && base + used + geo <= pl->budget;
}

/* Step 3, when all SAEs fit: load once, then one pass per dataset over the
 * SAEs that still need it (a slot's place in the pass does not change its
 * sums: every SAE's partials are reduced on their own). */
static sv_rc evaluate_resident(sv_runner *r)
{
    const sv_plan *pl = &r->pl;
    const int nd = pl->n_ds;
    int n = 0;
    sv_rc rc = load_pass(r, -1, 0, &n);
    sv_slot *sub = sv_calloc((size_t)n + 1, sizeof *sub);
    int *sub_of = sv_calloc((size_t)n + 1, sizeof *sub_of), *pos = sv_calloc((size_t)n + 1, sizeof *pos);
    if (rc == SV_OK && (!sub || !sub_of || !pos)) rc = SV_EINTERNAL;
    rc = sv_agree(rc, r->comm);
    for (int j = 0; j < nd && rc == SV_OK; j++) {
        int m = 0;
        for (int k = 0; k < n; k++) {
            const int i = r->sae_of[k];
            if (!pl->todo[i * nd + j] || r->failed_sae[i]) continue;
            sub[m] = r->slots[k];
            sub_of[m] = i;
            pos[m++] = k;
        }
        if (m > 0) {
            const double t = sv_now();
            rc = run_pass(&r->cfg, pl, j, sub, m, sub_of, r->out_dir, r->comm, r->log, &r->pg, 1, 1, r->opts, r->stats);
            r->t_pass += sv_now() - t;
            for (int q = 0; q < m; q++) r->slots[pos[q]] = sub[q]; /* buffers may have grown */
            if (rc == SV_EINPUT) {
                r->any_failed = 1;
                for (int q = 0; q < m; q++)
                    if (r->rank == 0) sv_results_note_failure(r->out_dir, pl->ids[sub_of[q]], r->cfg.datasets[j].name, sv_errmsg());
                rc = SV_OK;
            }
        }
        for (int q = 0; q < m; q++) release_claim(r, sub_of[q] * nd + j);
    }
    free_slots(r, n);
    free(sub); free(sub_of); free(pos);
    return rc;
}

/* Step 3: every dataset, pass by pass. */
static sv_rc evaluate(sv_runner *r)
{
    const sv_plan *pl = &r->pl;
    const int ns = pl->n_saes, nd = pl->n_ds;
    sv_rc rc = SV_OK;
    if (nd > 1 && all_fit(r)) {
        rc = evaluate_resident(r);
        if (rc == SV_OK && r->rank == 0 && !r->opts->quiet) sv_progress_line(&r->pg, "all", 1, 1, 1.0, 0.0, 0.0, 1);
        return rc;
    }
    for (int j = 0; j < nd && rc == SV_OK; j++) {
        for (int pass = 1; pass <= pl->n_pass[j] && rc == SV_OK; pass++) {
            int n = 0;
            rc = load_pass(r, j, pass, &n);
            if (rc == SV_OK && n > 0) {
                const double t = sv_now();
                rc = run_pass(&r->cfg, pl, j, r->slots, n, r->sae_of, r->out_dir, r->comm, r->log, &r->pg, pass,
                              pl->n_pass[j], r->opts, r->stats);
                r->t_pass += sv_now() - t;
                if (rc == SV_EINPUT) {
                    /* Bad data in this store (non-finite values, all masked):
                     * its pairs fail, the other datasets go on. */
                    r->any_failed = 1;
                    for (int i = 0; i < ns; i++)
                        if (pl->todo[i * nd + j] && !r->failed_sae[i] && r->rank == 0)
                            sv_results_note_failure(r->out_dir, pl->ids[i], r->cfg.datasets[j].name, sv_errmsg());
                    rc = SV_OK;
                    pass = pl->n_pass[j];
                }
            }
            for (int i = 0; i < ns; i++) /* their results are written (or noted as failed) */
                if (pl->pass_of[i * nd + j] == pass) release_claim(r, i * nd + j);
            free_slots(r, n);
        }
    }
    if (rc == SV_OK && r->rank == 0 && !r->opts->quiet) sv_progress_line(&r->pg, "all", 1, 1, 1.0, 0.0, 0.0, 1);
    return rc;
}

/* Step 4: a full run (not one shard of many) ends with the summaries. */
static sv_rc summarize(sv_runner *r)
{
    sv_rc rc = SV_OK;
    if (r->left_to_others) {
        /* Another run is computing some of these pairs: the summaries wait
         * for `saeval merge` once it is done. */
        if (r->rank == 0)
            printf("[saeval] %d pairs were left to another run on this output directory (%s); "
                   "run `saeval merge` when it has finished\n", r->left_to_others, sv_claim_describe(&r->other));
        fflush(stdout);
    }
    if (r->rank == 0 && r->pl.n_shards == 1 && !r->left_to_others) {
        sv_merge_counts mc;
        /* Failures were already reported once each on stderr. */
        rc = sv_merge(&r->cfg, &r->pl, r->out_dir, NULL, r->opts->table ? stdout : NULL, &mc);
        if (rc == SV_OK && mc.failed + mc.missing > 0) r->any_failed = 1;
        /* A report that cannot be written (disk full, ...) fails the run
         * like any other output; the results stay complete. */
        if (rc == SV_OK && r->opts->report) rc = sv_report_cli(NULL, r->out_dir, r->cfg.tokenizer);
    }
    rc = sv_agree(rc, r->comm);
    /* Pairs refused on rank 0 alone (an input changed mid-run) count on every rank. */
    int failed = r->any_failed || r->stats->inputs_changed, any = failed;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, r->comm);
    r->any_failed = any;
    if (rc == SV_OK && r->any_failed) {
        rc = SV_EINPUT;
        if (r->rank == 0) {
            printf("[saeval] some pairs failed: see the error lines on stderr and all_eval_results.json\n");
            fflush(stdout);
        }
    }
    return rc;
}

sv_rc sv_run(const char *config_path, const sv_run_opts *opts, MPI_Comm comm, sv_run_stats *stats)
{
    sv_runner r;
    memset(&r, 0, sizeof r);
    r.config_path = config_path;
    r.opts = opts;
    r.comm = comm;
    sv_run_stats own;
    r.stats = stats ? stats : &own;
    MPI_Comm_rank(comm, &r.rank);
    MPI_Comm_size(comm, &r.P);
    memset(r.stats, 0, sizeof *r.stats);
    sv_rc rc = sv_env_check_launcher(comm);
    if (rc != SV_OK) return rc;
    sv_signals_install();
    sv_watchdog_start(r.rank);
    const double t0 = sv_now();

    rc = setup(&r);
    r.t_setup = sv_now() - t0;
    if (rc == SV_OK) {
        announce(&r);
        rc = evaluate(&r);
        const double t = sv_now();
        if (rc == SV_OK) rc = summarize(&r);
        r.t_summary = sv_now() - t;
    }

    if (r.claim_dir) { /* rank 0: whatever is still claimed goes, then the heartbeat */
        sv_watchdog_every(0, NULL, NULL);
        for (int p = 0; r.claimed && p < r.pl.n_saes * r.pl.n_ds; p++) release_claim(&r, p);
        sv_claim_done(r.claim_dir, &r.me);
    }
    if (r.log) {
        /* Per rank, next to the store bytes of the pass lines (those are all ranks'). */
        fprintf(r.log, "SAE weights: %d loads, %llu bytes read per rank\n", r.weight_loads,
                (unsigned long long)r.weight_bytes);
        /* Where rank 0's time went: the dataset passes against the rest. */
        fprintf(r.log, "rank 0 seconds: setup %.3f, SAE loads %.3f, geometry %.3f, forward buffers %.3f, dataset passes "
                "%.3f, releasing passes %.3f, summaries %.3f\n", r.t_setup, r.t_load, r.t_geom, r.t_init, r.t_pass,
                r.t_free, r.t_summary);
        sv_env_log_memory(r.log);
        fprintf(r.log, "%s after %.3f s\n", rc == SV_OK ? "finished" : "failed", sv_now() - t0);
        fclose(r.log);
    }
    if (rc == SV_OK && r.rank == 0 && !opts->quiet) {
        printf("[saeval] done in %.2f s, results in %s\n", sv_now() - t0, r.out_dir);
        fflush(stdout);
    }
    for (int i = 0; r.geom && i < r.cfg.n_saes; i++) {
        if (r.geom[i]) sv_geometry_free(r.geom[i]);
        free(r.geom[i]);
    }
    free(r.geom); free(r.slots); free(r.sae_of); free(r.failed_sae); free(r.out_dir);
    free(r.claimed); free(r.claim_dir);
    sv_plan_free(&r.pl);
    sv_config_free(&r.cfg);
    sv_watchdog_stop();
    malloc_trim(0); /* as after each pass: a caller's next run starts from what it holds */
    return rc;
}

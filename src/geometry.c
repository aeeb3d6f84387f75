/* Weight geometry from distributed Gram blocks; see geometry.h. */
#include "saeval/geometry.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/forward.h"
#include "saeval/gemm.h"
#include "multiarch.h"

/* Per-thread accumulators: exact merges only (max, int counts, top list). */
typedef struct {
    double *rowmax, *colmax; /* [m] */
    int64_t *rowarg, *colarg; /* [m]: where each maximum was found (m: nowhere yet) */
    /* Counts per bin in 4 lanes (column c counts in lane c % 4), added up at
     * the end: neighbouring pairs mostly fall in the same bin, and one
     * counter made every increment wait for the one before. */
    int64_t hist[4][SV_GEOM_BINS];
    int64_t over9, over99;
    sv_pair_cos top[SV_GEOM_TOP]; /* min-heap: top[0] is the worst kept */
    int n_top;
} sv_gacc;

/* One Gram row's state, carried across column panels. */
typedef struct { double max; int64_t arg; double sum_abs, sum; } sv_grow;

/* The layout of MPI_DOUBLE_INT, for MPI_MAXLOC. */
typedef struct { double v; int i; } sv_maxloc;

/* (v, i) beats (w, k): a higher value, or the same value at a lower index. */
static int arg_better(double v, int64_t i, double w, int64_t k) { return v > w || (v == w && i < k); }

/* Total order for "more similar": higher cos, then lower (j, l). */
static int pair_better(const sv_pair_cos *a, const sv_pair_cos *b)
{
    if (a->cos != b->cos) return a->cos > b->cos;
    if (a->j != b->j) return a->j < b->j;
    return a->l < b->l;
}

static void heap_down(sv_pair_cos *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && pair_better(&h[m], &h[l])) m = l;
        if (r < n && pair_better(&h[m], &h[r])) m = r;
        if (m == i) return;
        sv_pair_cos t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static void top_offer(sv_gacc *a, int64_t j, int64_t l, double v)
{
    sv_pair_cos p = {j, l, v};
    if (a->n_top < SV_GEOM_TOP) {
        a->top[a->n_top++] = p;
        if (a->n_top == SV_GEOM_TOP)
            for (int i = SV_GEOM_TOP / 2 - 1; i >= 0; i--) heap_down(a->top, SV_GEOM_TOP, i);
    } else if (pair_better(&p, &a->top[0])) {
        a->top[0] = p;
        heap_down(a->top, SV_GEOM_TOP, 0);
    }
}

#define REAL float
#define FN(name) name##_f32
#define GEMM sv_gemm_f32
#include "geometry_impl.h"
#undef REAL
#undef FN
#undef GEMM
#define REAL double
#define FN(name) name##_f64
#define GEMM sv_gemm_f64
#include "geometry_impl.h"
#undef REAL
#undef FN
#undef GEMM

/* Row blocks go to ranks in a zig-zag so that the long early blocks (they
 * scan all later latents) are spread out. Only speed depends on it. */
static int block_owner(int64_t b, int P)
{
    int64_t r = b % (2 * P);
    return (int)(r < P ? r : 2 * P - 1 - r);
}

static int cmp_pair_desc(const void *x, const void *y)
{
    const sv_pair_cos *a = x, *b = y;
    return pair_better(a, b) ? -1 : pair_better(b, a) ? 1 : 0;
}

/* One Gram pass over W (decoder rows or encoder columns). full: also the
 * pair statistics (decoder only). */
static sv_rc gram_pass(const sv_sae *s, int encoder, int full, int64_t B, int64_t panel, MPI_Comm comm,
                       double *maxcos, int64_t *argmax, sv_geometry *g)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    /* Rows of W_dec are d_out wide (a transcoder's output space). */
    const int64_t m = s->cfg.d_sae, d = encoder ? s->cfg.d_in : sv_cfg_d_out(&s->cfg), nb = (m + B - 1) / B;
    const int64_t Bm = B < m ? B : m, pw = panel < m ? panel : m;
    const int f64 = s->precision == 64;
    const size_t rs = f64 ? sizeof(double) : sizeof(float);
    const int T = sv_fwd_get_threads();
    const void *W = encoder ? s->W_enc : s->W_dec;
    sv_rc rc = SV_OK;
    double *inv = sv_malloc((size_t)m * sizeof(double));
    void *Ub = sv_malloc((size_t)(Bm * d) * rs);
    void **Up = sv_calloc((size_t)T, sizeof(void *)), **Cp = sv_calloc((size_t)T, sizeof(void *));
    sv_gacc *acc = sv_calloc((size_t)T, sizeof *acc);
    double *bsum = sv_calloc((size_t)nb * 2, sizeof(double));
    sv_grow *row = sv_malloc((size_t)Bm * sizeof *row);
    double *tot = rank == 0 ? sv_malloc((size_t)nb * 2 * sizeof(double)) : NULL;
    sv_pair_cos *mine = NULL, *all = NULL;
    sv_maxloc *mine_loc = sv_malloc((size_t)m * sizeof *mine_loc), *loc = rank == 0 ? sv_malloc((size_t)m * sizeof *loc) : NULL;
    if (!inv || !Ub || !Up || !Cp || !acc || !bsum || !row || (rank == 0 && !tot) || !mine_loc || (rank == 0 && !loc)) {
        rc = SV_EINTERNAL;
        goto out;
    }
    for (int t = 0; t < T; t++) {
        Up[t] = sv_malloc((size_t)(pw * d) * rs);
        Cp[t] = sv_malloc((size_t)(Bm * panel) * rs);
        acc[t].rowmax = sv_malloc((size_t)m * sizeof(double));
        acc[t].colmax = sv_malloc((size_t)m * sizeof(double));
        acc[t].rowarg = sv_malloc((size_t)m * sizeof(int64_t));
        acc[t].colarg = sv_malloc((size_t)m * sizeof(int64_t));
        if (!Up[t] || !Cp[t] || !acc[t].rowmax || !acc[t].colmax || !acc[t].rowarg || !acc[t].colarg) {
            rc = SV_EINTERNAL;
            goto out;
        }
        for (int64_t j = 0; j < m; j++) {
            acc[t].rowmax[j] = acc[t].colmax[j] = -INFINITY;
            acc[t].rowarg[j] = acc[t].colarg[j] = m;
        }
    }
    if (f64) inv_norms_f64(W, m, d, encoder, inv);
    else inv_norms_f32(W, m, d, encoder, inv);

    for (int64_t b = 0; b < nb; b++) {
        if (block_owner(b, P) != rank) continue;
        int64_t r0 = b * B, r1 = r0 + B < m ? r0 + B : m;
        if (f64) scan_block_f64(W, m, d, encoder, inv, r0, r1, Ub, (double **)Up, (double **)Cp, panel, full, acc, T, row);
        else scan_block_f32(W, m, d, encoder, inv, r0, r1, Ub, (float **)Up, (float **)Cp, panel, full, acc, T, row);
        /* The block's rows go back to the accumulators (each row lives in
         * one block); its sums are added in row order. */
        for (int64_t i = 0; i < r1 - r0; i++) {
            acc[0].rowmax[r0 + i] = row[i].max;
            acc[0].rowarg[r0 + i] = row[i].arg;
            bsum[2 * b] += row[i].sum_abs;
            bsum[2 * b + 1] += row[i].sum;
        }
    }
    /* Merge lanes, then threads: max of maxima, sums of counts, union of top lists. */
    for (int t = 0; t < T; t++)
        for (int q = 1; q < 4; q++)
            for (int k = 0; k < SV_GEOM_BINS; k++) acc[t].hist[0][k] += acc[t].hist[q][k];
    for (int t = 1; t < T; t++) {
        for (int64_t j = 0; j < m; j++) {
            if (arg_better(acc[t].rowmax[j], acc[t].rowarg[j], acc[0].rowmax[j], acc[0].rowarg[j])) {
                acc[0].rowmax[j] = acc[t].rowmax[j];
                acc[0].rowarg[j] = acc[t].rowarg[j];
            }
            if (arg_better(acc[t].colmax[j], acc[t].colarg[j], acc[0].colmax[j], acc[0].colarg[j])) {
                acc[0].colmax[j] = acc[t].colmax[j];
                acc[0].colarg[j] = acc[t].colarg[j];
            }
        }
        for (int k = 0; k < SV_GEOM_BINS; k++) acc[0].hist[0][k] += acc[t].hist[0][k];
        acc[0].over9 += acc[t].over9;
        acc[0].over99 += acc[t].over99;
        for (int k = 0; k < acc[t].n_top; k++) top_offer(&acc[0], acc[t].top[k].j, acc[t].top[k].l, acc[t].top[k].cos);
    }
    for (int64_t j = 0; j < m; j++)
        if (arg_better(acc[0].colmax[j], acc[0].colarg[j], acc[0].rowmax[j], acc[0].rowarg[j])) {
            acc[0].rowmax[j] = acc[0].colmax[j];
            acc[0].rowarg[j] = acc[0].colarg[j];
        }
    /* MPI_MAXLOC keeps the lower index on equal values: the same rule as
     * arg_better. (m fits an int: the counts of these reductions are ints.) */
    for (int64_t j = 0; j < m; j++) {
        mine_loc[j].v = acc[0].rowmax[j];
        mine_loc[j].i = (int)acc[0].rowarg[j];
    }
    MPI_Reduce(mine_loc, loc, (int)m, MPI_DOUBLE_INT, MPI_MAXLOC, 0, comm);
    if (rank == 0)
        for (int64_t j = 0; j < m; j++) {
            maxcos[j] = loc[j].v;
            if (argmax) argmax[j] = loc[j].i < m ? loc[j].i : -1;
        }
    if (rank == 0)
        for (int64_t j = 0; j < m; j++)
            if (isinf(maxcos[j])) maxcos[j] = -1.0; /* d_sae == 1: no other latent */
    if (!full) goto out;

    /* Each block's sums live on exactly one rank; adding zeros is exact, so
     * this MPI_SUM returns every block's value unchanged. */
    MPI_Reduce(bsum, tot, (int)(2 * nb), MPI_DOUBLE, MPI_SUM, 0, comm);
    MPI_Reduce(acc[0].hist[0], g->hist, SV_GEOM_BINS, MPI_INT64_T, MPI_SUM, 0, comm);
    MPI_Reduce(&acc[0].over9, &g->pairs_over_0_9, 1, MPI_INT64_T, MPI_SUM, 0, comm);
    MPI_Reduce(&acc[0].over99, &g->pairs_over_0_99, 1, MPI_INT64_T, MPI_SUM, 0, comm);
    mine = sv_calloc(SV_GEOM_TOP, sizeof *mine);
    all = rank == 0 ? sv_calloc((size_t)P * SV_GEOM_TOP, sizeof *all) : NULL;
    if (!mine || (rank == 0 && !all)) { rc = SV_EINTERNAL; goto out; }
    for (int k = 0; k < SV_GEOM_TOP; k++) mine[k] = (sv_pair_cos){-1, -1, -INFINITY};
    memcpy(mine, acc[0].top, (size_t)acc[0].n_top * sizeof *mine);
    MPI_Gather(mine, (int)(SV_GEOM_TOP * sizeof *mine), MPI_BYTE, all, (int)(SV_GEOM_TOP * sizeof *mine),
               MPI_BYTE, 0, comm);
    if (rank == 0) {
        double npairs = (double)m * (double)(m - 1) / 2.0, sa = 0, ss = 0;
        for (int64_t b = 0; b < nb; b++) {
            sa += tot[2 * b];
            ss += tot[2 * b + 1];
        }
        g->decoder_mean_abs_cos = npairs > 0 ? sa / npairs : NAN;
        g->decoder_mean_cos = npairs > 0 ? ss / npairs : NAN;
        qsort(all, (size_t)P * SV_GEOM_TOP, sizeof *all, cmp_pair_desc);
        g->n_top = 0;
        for (int k = 0; k < P * SV_GEOM_TOP && g->n_top < SV_GEOM_TOP; k++)
            if (all[k].j >= 0) g->top[g->n_top++] = all[k];
    }
out:
    for (int t = 0; t < T; t++) {
        if (acc) { free(acc[t].rowmax); free(acc[t].colmax); free(acc[t].rowarg); free(acc[t].colarg); }
        if (Up) free(Up[t]);
        if (Cp) free(Cp[t]);
    }
    free(acc); free(Up); free(Cp); free(inv); free(Ub); free(bsum); free(row); free(tot); free(mine); free(all);
    free(mine_loc); free(loc);
    return rc;
}

sv_rc sv_geometry_compute(const sv_sae *s, int64_t block_rows, MPI_Comm comm, sv_geometry *g)
{
    return sv_geometry_compute_panels(s, block_rows, 0, comm, g);
}

sv_rc sv_geometry_compute_panels(const sv_sae *s, int64_t block_rows, int64_t panel_cols, MPI_Comm comm,
                                 sv_geometry *g)
{
    const int64_t m = s->cfg.d_sae;
    const int64_t B = block_rows > 0 ? block_rows : 1024, pc = panel_cols > 0 ? panel_cols : SV_GRAM_PANEL;
    memset(g, 0, sizeof *g);
    g->max_decoder_cos = sv_malloc((size_t)m * sizeof(double));
    g->max_encoder_cos = sv_malloc((size_t)m * sizeof(double));
    g->nearest_decoder = sv_malloc((size_t)m * sizeof(int64_t));
    sv_rc rc = (g->max_decoder_cos && g->max_encoder_cos && g->nearest_decoder) ? SV_OK : SV_EINTERNAL;
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rc == SV_OK) rc = gram_pass(s, 0, 1, B, pc, comm, g->max_decoder_cos, g->nearest_decoder, g);
    if (rc == SV_OK) rc = gram_pass(s, 1, 0, B, pc, comm, g->max_encoder_cos, NULL, g);
    if (rc == SV_OK && rank == 0) {
        double a = 0, b = 0;
        for (int64_t j = 0; j < m; j++) {
            a += g->max_decoder_cos[j];
            b += g->max_encoder_cos[j];
        }
        g->average_max_decoder_cos = a / (double)m;
        g->average_max_encoder_cos = b / (double)m;
    }
    return rc;
}

double sv_geometry_gemm_seconds(const sv_sae *s, int64_t block_rows, MPI_Comm comm, double *flops)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const int64_t m = s->cfg.d_sae, d = s->cfg.d_in, B = block_rows > 0 ? block_rows : 1024, nb = (m + B - 1) / B;
    const int64_t Bm = B < m ? B : m, panel = SV_GRAM_PANEL, pw = panel < m ? panel : m;
    const size_t rs = s->precision == 64 ? sizeof(double) : sizeof(float);
    const int T = sv_fwd_get_threads();
    /* The buffers of gram_pass (zeros: GEMM speed does not depend on values). */
    void *Ub = sv_calloc((size_t)(Bm * d), rs), *Up = sv_calloc((size_t)(T * pw * d), rs);
    void *Cp = sv_malloc((size_t)(T * Bm * panel) * rs);
    double mine = 0, all = -1, f = 0;
    for (int64_t b = 0; b < nb; b++) f += 2.0 * (double)((b + 1) * B < m ? B : m - b * B) * (double)(m - b * B) * d;
    if (flops) *flops = 2 * f; /* decoder and encoder passes */
    MPI_Barrier(comm);
    const double t0 = MPI_Wtime();
    for (int pass = 0; pass < 2 && Ub && Up && Cp; pass++)
        for (int64_t b = 0; b < nb; b++) {
            if (block_owner(b, P) != rank) continue;
            const int64_t r0 = b * B, nr = (r0 + B < m ? B : m - r0), nc = m - r0;
            const int64_t np = (nc + panel - 1) / panel;
            for (int64_t p0 = 0; p0 < np; p0 += T) {
                const int64_t pn = np - p0 < T ? np - p0 : T;
#pragma omp parallel for num_threads(T) schedule(static, 1) if (pn > 1)
                for (int64_t q = 0; q < pn; q++) {
                    const int64_t c0 = (p0 + q) * panel, w = nc - c0 < panel ? nc - c0 : panel;
                    if (rs == sizeof(double))
                        sv_gemm_f64(1, nr, w, d, Ub, d, (const double *)Up + q * pw * d, d,
                                    (double *)Cp + q * Bm * panel, panel);
                    else
                        sv_gemm_f32(1, nr, w, d, Ub, d, (const float *)Up + q * pw * d, d,
                                    (float *)Cp + q * Bm * panel, panel);
                }
            }
        }
    mine = MPI_Wtime() - t0;
    MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_MAX, comm);
    free(Ub);
    free(Up);
    free(Cp);
    return all;
}

void sv_geometry_free(sv_geometry *g)
{
    free(g->max_decoder_cos);
    free(g->max_encoder_cos);
    free(g->nearest_decoder);
    memset(g, 0, sizeof *g);
}

/* Per-latent feature data against a brute-force reference: every activation
 * held in memory, sorted. Ties are planted (values on a coarse grid), plus
 * dead latents, values spanning many powers of two, negatives and NaN. The
 * same data is fed in store order, in shuffled order by several "ranks and
 * threads", merged along different trees and through the packed image: the
 * results must be identical to each other and to the reference. */
#define TEST_NAME "test_features"
#include "saeval/features.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static int64_t T, D, NSEQ;
static float *A;       /* [T x D] */
static int64_t *seqoff; /* [NSEQ + 1] */
static int64_t *tokid;  /* [T] */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static void make_data(int64_t t, int64_t d)
{
    T = t; D = d;
    A = xcalloc((size_t)(T * D), sizeof *A);
    tokid = xcalloc((size_t)T, sizeof *tokid);
    seqoff = xcalloc((size_t)T + 1, sizeof *seqoff);
    NSEQ = 0;
    for (int64_t p = 0; p < T;) {
        seqoff[NSEQ++] = p;
        p += 1 + (int64_t)(rnd() % 40);
        if (p > T) p = T;
    }
    seqoff[NSEQ] = T;
    for (int64_t i = 0; i < T; i++) tokid[i] = (i * 7919) % 50257;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < D; j++) {
            float v = 0;
            uint64_t r = rnd() % 100;
            if (j == 0) v = 0;                                              /* dead */
            else if (j == 1) v = (r < 50) ? 1.0f : 0;                         /* all ties */
            else if (j == 2) v = (r < 30) ? ldexpf(1.0f, (int)(rnd() % 80) - 40) : 0; /* many exponents */
            else if (j == 3) v = (i == T / 2) ? 1e30f : (r < 40 ? 0.125f * (float)(1 + rnd() % 6) : 0);
            else if (j == 4) v = (i == 17) ? 0.5f : 0;                      /* fires once */
            else if (r < 35) v = 0.0625f * (float)(1 + rnd() % 48);          /* coarse grid: ties */
            else if (r < 38) v = -0.5f;                                      /* not a firing */
            else if (r < 39) v = NAN;
            A[i * D + j] = v;
        }
}

/* ---- the reference: written from the documented rules, not from features.c ---- */
static uint64_t ref_mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint32_t ref_key(uint64_t seed, int64_t j, int64_t t)
{
    return (uint32_t)(ref_mix(ref_mix(seed ^ ((uint64_t)j * 0x9E3779B97F4A7C15ull)) ^ (uint64_t)t) >> 32);
}

typedef struct { float v; int64_t t; uint32_t key; } item;
static int by_value(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}
static int by_key(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->t > y->t) - (x->t < y->t);
}

/* bin of v on the grid F over [0, 2^e): the b with b 2^e <= v F < (b+1) 2^e */
static int ref_bin(float v, int e, int F)
{
    int b = 0;
    while (b + 1 < F && ldexp((double)(b + 1), e) <= (double)v * F) b++;
    return b;
}

static void check_reference(const sv_feat *f, const sv_feat_params *p)
{
    int64_t ntok = T;
    CHECK(sv_feat_tokens(f) == ntok);
    item *it = xcalloc((size_t)T, sizeof *it);
    sv_feat_ex *got = xcalloc(300, sizeof *got);
    for (int64_t j = 0; j < D; j++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++) {
            float v = A[t * D + j];
            if (v > 0 && isfinite(v)) { it[n].v = v; it[n].t = t; it[n].key = ref_key(p->seed, j, t); n++; }
        }
        CHECK(sv_feat_nonzero(f, j) == n);
        qsort(it, (size_t)n, sizeof *it, by_value);
        CHECK(sv_feat_max(f, j) == (n ? it[0].v : 0));
        int m = sv_feat_top(f, j, got);
        CHECK(m == (n < p->top_n ? n : p->top_n));
        for (int k = 0; k < m; k++) CHECK(got[k].token == it[k].t && got[k].value == it[k].v);
        double w;
        int64_t cnt[4096];
        int c = sv_feat_hist(f, j, &w, cnt);
        if (n == 0) { CHECK(c == 0); continue; }
        int e;
        frexp((double)it[0].v, &e);
        int F = p->grid_bins;
        int cref = 1;
        while (ldexp((double)cref, e) <= (double)it[0].v * F) cref++;
        CHECK(c == cref);
        CHECK(w == ldexp(1.0, e) / F);
        int64_t *hist = xcalloc((size_t)F, sizeof *hist);
        int *bin = xcalloc((size_t)n, sizeof *bin);
        for (int64_t k = 0; k < n; k++) { bin[k] = ref_bin(it[k].v, e, F); hist[bin[k]]++; }
        for (int b = 0; b < F; b++) CHECK(cnt[b] == hist[b]);
        int64_t total = 0;
        item *in = xcalloc((size_t)n, sizeof *in);
        for (int i = 0; i < p->n_intervals; i++) {
            int b0 = i * c / p->n_intervals, b1 = (i + 1) * c / p->n_intervals;
            int64_t q = 0;
            for (int64_t k = 0; k < n; k++)
                if (bin[k] >= b0 && bin[k] < b1) in[q++] = it[k];
            qsort(in, (size_t)q, sizeof *in, by_key);
            int keep = q < p->interval_k ? (int)q : p->interval_k;
            qsort(in, (size_t)keep, sizeof *in, by_value);
            double lo, hi;
            int64_t count;
            int ms = sv_feat_interval(f, j, i, &lo, &hi, &count, got);
            CHECK(count == q && ms == keep);
            CHECK(lo == b0 * w && hi == b1 * w);
            for (int k = 0; k < ms; k++) CHECK(got[k].token == in[k].t && got[k].value == in[k].v);
            total += count;
        }
        CHECK(total == n);
        free(in);
        free(hist);
        free(bin);
    }
    free(it);
    free(got);
}

/* Everything the accessors say, as one string of bytes (file content). */
static size_t dump(const sv_feat *f, const sv_feat_params *p, unsigned char **out)
{
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = xcalloc(cap, 1);
    sv_feat_ex ex[300];
#define PUT(x) do { if (n + sizeof(x) > cap) { cap *= 2; b = realloc(b, cap); if (!b) die("oom", NULL); } memcpy(b + n, &(x), sizeof(x)); n += sizeof(x); } while (0)
    int64_t tok = sv_feat_tokens(f);
    PUT(tok);
    for (int64_t j = 0; j < D; j++) {
        int64_t nz = sv_feat_nonzero(f, j);
        float mx = sv_feat_max(f, j);
        PUT(nz); PUT(mx);
        int m = sv_feat_top(f, j, ex);
        for (int k = 0; k < m; k++) { PUT(ex[k].token); PUT(ex[k].value); }
        double w;
        int64_t cnt[4096];
        int c = sv_feat_hist(f, j, &w, cnt);
        PUT(c); PUT(w);
        for (int k = 0; k < c; k++) PUT(cnt[k]);
        for (int i = 0; i < p->n_intervals; i++) {
            double lo, hi;
            int64_t count;
            m = sv_feat_interval(f, j, i, &lo, &hi, &count, ex);
            PUT(lo); PUT(hi); PUT(count);
            for (int k = 0; k < m; k++) { PUT(ex[k].token); PUT(ex[k].value); }
        }
    }
#undef PUT
    *out = b;
    return n;
}

static sv_feat *fresh(const sv_feat_params *p)
{
    sv_feat *f = NULL;
    if (sv_feat_new(&f, p) != SV_OK) die("sv_feat_new", sv_errmsg());
    return f;
}

/* Tokens [t0, t1) observed by one accumulator, in a shuffled (token, latent) order. */
static sv_feat *observe_shuffled(const sv_feat_params *p, int64_t t0, int64_t t1)
{
    sv_feat *f = fresh(p);
    int64_t n = (t1 - t0) * D;
    int64_t *ord = xcalloc((size_t)(n ? n : 1), sizeof *ord);
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { int64_t k = (int64_t)(rnd() % (uint64_t)(i + 1)); int64_t x = ord[i]; ord[i] = ord[k]; ord[k] = x; }
    for (int64_t i = 0; i < n; i++) {
        int64_t t = t0 + ord[i] / D, j = ord[i] % D;
        sv_feat_observe(f, j, t, A[t * D + j]);
    }
    sv_feat_add_tokens(f, t1 - t0);
    free(ord);
    return f;
}

/* A merge through the packed image, as between ranks. */
static void merge_packed(sv_feat *dst, const sv_feat *src)
{
    size_t n = sv_feat_pack_size(src);
    void *buf = xcalloc(n, 1);
    sv_feat_pack(src, buf);
    CHECK(sv_feat_merge_packed(dst, buf, n) == SV_OK);
    CHECK(sv_feat_merge_packed(dst, buf, n - 8) == SV_EINTERNAL);
    free(buf);
}

/* Rows [t0, t0 + rows) of latents [j0, j1) as CSR: the nonzero entries, latents ascending. */
static void to_csr(int64_t t0, int64_t rows, int64_t j0, int64_t j1, int64_t **rp, int32_t **ix, double **vv)
{
    *rp = xcalloc((size_t)rows + 1, sizeof **rp);
    *ix = xcalloc((size_t)(rows * (j1 - j0)), sizeof **ix);
    *vv = xcalloc((size_t)(rows * (j1 - j0)), sizeof **vv);
    int64_t n = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = j0; j < j1; j++) {
            float v = A[(t0 + r) * D + j];
            if (v != 0) { (*ix)[n] = (int32_t)j; (*vv)[n] = v; n++; }
        }
        (*rp)[r + 1] = n;
    }
}

static void invariance(const sv_feat_params *p)
{
    /* store order, one accumulator, blocks alternately dense and sparse (CSR as sv_fwd gives) */
    sv_feat *a = fresh(p);
    for (int64_t t = 0, blk = 0; t < T; t += 64, blk++) {
        int64_t rows = T - t < 64 ? T - t : 64;
        if (blk % 2 == 0) {
            sv_feat_observe_tile(a, t, rows, 0, D, A + t * D, (size_t)D, NULL);
        } else {
            int64_t *rp;
            int32_t *ix;
            double *vv;
            to_csr(t, rows, 0, D, &rp, &ix, &vv);
            sv_feat_observe_csr(a, t, rows, rp, ix, vv, NULL);
            free(rp); free(ix); free(vv);
        }
        sv_feat_add_tokens(a, rows);
    }
    check_reference(a, p);
    unsigned char *da, *db;
    size_t na = dump(a, p, &da);

    for (int ranks = 1; ranks <= 4; ranks++) {
        for (int tree = 0; tree < 3; tree++) {
            sv_feat *part[8];
            int np = 2 * ranks; /* two threads per rank */
            for (int r = 0; r < np; r++) part[r] = observe_shuffled(p, T * r / np, T * (r + 1) / np);
            sv_feat *root;
            if (tree == 0) { /* left fold */
                root = part[0];
                for (int r = 1; r < np; r++) { CHECK(sv_feat_merge(root, part[r]) == SV_OK); sv_feat_free(part[r]); }
            } else if (tree == 1) { /* right fold, through packed images */
                root = part[np - 1];
                for (int r = np - 2; r >= 0; r--) { merge_packed(root, part[r]); sv_feat_free(part[r]); }
            } else { /* pairwise tree into an empty accumulator */
                for (int step = 1; step < np; step *= 2)
                    for (int r = 0; r + step < np; r += 2 * step) { merge_packed(part[r], part[r + step]); sv_feat_free(part[r + step]); }
                root = fresh(p);
                CHECK(sv_feat_merge(root, part[0]) == SV_OK);
                sv_feat_free(part[0]);
            }
            size_t nb = dump(root, p, &db);
            CHECK(nb == na && memcmp(da, db, na) == 0);
            free(db);
            sv_feat_free(root);
        }
    }
    free(da);
    sv_feat_free(a);
}

static void windows(const sv_feat_params *p)
{
    sv_feat *f = fresh(p);
    sv_feat_observe_tile(f, 0, T, 0, D, A, (size_t)D, NULL);
    sv_feat_add_tokens(f, T);
    int64_t j0 = 1, j1 = D - 1;
    sv_feat_windows w;
    CHECK(sv_feat_windows_new(&w, f, j0, j1, seqoff, NSEQ) == SV_OK);
    /* fill from blocks of uneven sizes, only over the requested ranges */
    int64_t *rg, nr;
    CHECK(sv_feat_windows_ranges(&w, &rg, &nr) == SV_OK);
    unsigned char *need = xcalloc((size_t)T, 1), *cov = xcalloc((size_t)T, 1);
    for (int64_t i = 0; i < w.n; i++)
        for (int64_t t = w.win[i].start; t < w.win[i].start + w.win[i].len; t++) need[t] = 1;
    for (int64_t r = 0; r < nr; r++) {
        CHECK(rg[2 * r] < rg[2 * r + 1] && (r == 0 || rg[2 * r] > rg[2 * r - 1]));
        for (int64_t t = rg[2 * r]; t < rg[2 * r + 1]; t++) cov[t] = 1;
        float *blk = xcalloc((size_t)(rg[2 * r + 1] - rg[2 * r]) * (size_t)(j1 - j0), sizeof *blk);
        for (int64_t t = rg[2 * r]; t < rg[2 * r + 1]; t++)
            for (int64_t j = j0; j < j1; j++) blk[(t - rg[2 * r]) * (j1 - j0) + (j - j0)] = A[t * D + j];
        for (int64_t t = rg[2 * r]; t < rg[2 * r + 1];) {
            int64_t rows = 1 + (int64_t)(rnd() % 13);
            if (t + rows > rg[2 * r + 1]) rows = rg[2 * r + 1] - t;
            if (rows % 2) {
                sv_feat_windows_fill(&w, t, rows, blk + (t - rg[2 * r]) * (j1 - j0), (size_t)(j1 - j0), tokid + t);
            } else { /* sparse rows with every latent of the data (the windows use j0..j1-1) */
                int64_t *rp;
                int32_t *ix;
                double *vv;
                to_csr(t, rows, 0, D, &rp, &ix, &vv);
                sv_feat_windows_fill_csr(&w, t, rows, rp, ix, vv, tokid + t);
                free(rp); free(ix); free(vv);
            }
            t += rows;
        }
        free(blk);
    }
    CHECK(memcmp(need, cov, (size_t)T) == 0);
    /* every window against the data, in the documented order */
    sv_feat_ex ex[300];
    int64_t i = 0;
    for (int64_t j = j0; j < j1; j++) {
        for (int kind = 0; kind < 2; kind++)
            for (int g = 0; g < (kind ? p->n_intervals : 1); g++) {
                double lo, hi;
                int64_t cnt;
                int m = kind ? sv_feat_interval(f, j, g, &lo, &hi, &cnt, ex) : sv_feat_top(f, j, ex);
                for (int k = 0; k < m; k++, i++) {
                    const sv_feat_win *x = &w.win[i];
                    CHECK(x->latent == j && x->token == ex[k].token && x->kind == kind && x->value == ex[k].value);
                    int64_t s = 0;
                    while (seqoff[s + 1] <= x->token) s++;
                    int64_t st = seqoff[s], en = seqoff[s + 1];
                    if (p->ctx_before >= 0) {
                        if (x->token - p->ctx_before > st) st = x->token - p->ctx_before;
                        if (x->token + p->ctx_after + 1 < en) en = x->token + p->ctx_after + 1;
                    }
                    CHECK(x->start == st && x->len == en - st);
                    for (int64_t c = 0; c < w.width; c++) {
                        float want = c < x->len ? A[(st + c) * D + j] : 0;
                        int32_t wid = c < x->len ? (int32_t)tokid[st + c] : -1;
                        CHECK(memcmp(&w.values[i * w.width + c], &want, sizeof want) == 0);
                        CHECK(w.ids[i * w.width + c] == wid);
                    }
                }
            }
    }
    CHECK(i == w.n);
    CHECK(sv_feat_windows_mem(p, j1 - j0, 40) >= (size_t)w.n * (size_t)w.width * sizeof(float));
    free(rg);
    free(need);
    free(cov);
    sv_feat_windows_free(&w);
    sv_feat_free(f);
}

/* Windows captured during the pass (sv_feat_observe_rows): the data is fed
 * as sparse rows of whole sequences (masked tokens have no row), in groups
 * of sequences of random sizes over three "ranks" merged through packed
 * images; every window must equal the data around its example (a masked
 * token: 0), whatever the grouping. */
static int masked(int64_t t) { return t % 11 == 3; }

static sv_feat *feed_captured(const sv_feat_params *p, int ranks)
{
    sv_feat *all = fresh(p);
    int64_t s_lo = 0;
    for (int r = 0; r < ranks; r++) {
        int64_t s_hi = r == ranks - 1 ? NSEQ : s_lo + (NSEQ - s_lo) / (ranks - r);
        sv_feat *f = fresh(p);
        for (int64_t a = s_lo; a < s_hi;) {
            int64_t b = a + 1 + (int64_t)(rnd() % 5); /* a group of whole sequences */
            if (b > s_hi) b = s_hi;
            int64_t nt = seqoff[b] - seqoff[a], n = 0, e = 0;
            int64_t *tok = xcalloc((size_t)nt + 1, sizeof *tok), *sq = xcalloc((size_t)nt + 1, sizeof *sq);
            int64_t *rp = xcalloc((size_t)nt + 1, sizeof *rp);
            int32_t *ix = xcalloc((size_t)(nt * D) + 1, sizeof *ix);
            float *vv = xcalloc((size_t)(nt * D) + 1, sizeof *vv);
            for (int64_t s = a; s < b; s++)
                for (int64_t t = seqoff[s]; t < seqoff[s + 1]; t++) {
                    if (masked(t)) continue;
                    tok[n] = t;
                    sq[n] = s;
                    for (int64_t j = 0; j < D; j++)
                        if (A[t * D + j] != 0) { ix[e] = (int32_t)j; vv[e++] = A[t * D + j]; }
                    rp[++n] = e;
                }
            const sv_feat_rows R = {n, tok, sq, seqoff, rp, ix, vv};
            for (int64_t r0 = 0; r0 < n;) { /* observed in pieces: any split of the rows */
                int64_t r1 = r0 + 1 + (int64_t)(rnd() % 30);
                if (r1 > n) r1 = n;
                sv_feat_observe_rows(f, &R, r0, r1);
                r0 = r1;
            }
            sv_feat_add_tokens(f, n);
            free(tok); free(sq); free(rp); free(ix); free(vv);
            a = b;
        }
        size_t nb = sv_feat_pack_size(f);
        unsigned char *buf = xcalloc(nb, 1);
        sv_feat_pack(f, buf);
        CHECK(sv_feat_merge_packed(all, buf, nb) == SV_OK);
        free(buf);
        sv_feat_free(f);
        s_lo = s_hi;
    }
    return all;
}

static void captured(sv_feat_params p)
{
    int64_t W = p.ctx_before + 1 + p.ctx_after;
    if (p.ctx_before < 0)
        for (int64_t s = 0; s < NSEQ; s++) W = seqoff[s + 1] - seqoff[s] > W ? seqoff[s + 1] - seqoff[s] : W;
    p.window_width = W;
    sv_feat *f = feed_captured(&p, 3), *g = feed_captured(&p, 1);
    sv_feat_windows w, v;
    CHECK(sv_feat_windows_new(&w, f, 0, D, seqoff, NSEQ) == SV_OK);
    CHECK(sv_feat_windows_new(&v, g, 0, D, seqoff, NSEQ) == SV_OK);
    CHECK(w.width == W && w.n == v.n && w.n > 0);
    CHECK(sv_feat_windows_fill_captured(&w, f) == SV_OK && sv_feat_windows_fill_captured(&v, g) == SV_OK);
    sv_feat_windows_fill_ids(&w, 0, T, tokid);
    for (int64_t i = 0; i < w.n; i++) {
        const sv_feat_win *x = &w.win[i];
        CHECK(x->token == v.win[i].token && !masked(x->token) && A[x->token * D + x->latent] == x->value);
        for (int64_t c = 0; c < W; c++) {
            int64_t t = x->start + c;
            float want = c < x->len && !masked(t) ? A[t * D + x->latent] : 0;
            int32_t wid = c < x->len ? (int32_t)tokid[t] : -1;
            CHECK(memcmp(&w.values[i * W + c], &want, sizeof want) == 0, "latent %lld token %lld offset %lld",
                  (long long)x->latent, (long long)x->token, (long long)c);
            CHECK(w.ids[i * W + c] == wid);
        }
    }
    CHECK(memcmp(w.values, v.values, (size_t)(w.n * W) * sizeof(float)) == 0);
    /* a state without captured windows cannot fill them */
    sv_feat_params q = p;
    q.window_width = 0;
    sv_feat *h = fresh(&q);
    CHECK(sv_feat_windows_fill_captured(&w, h) == SV_EINTERNAL);
    sv_feat_free(h);
    sv_feat_windows_free(&w);
    sv_feat_windows_free(&v);
    sv_feat_free(f);
    sv_feat_free(g);
}

int main(void)
{
    make_data(1500, 12);
    sv_feat_params p;
    sv_feat_params_default(&p, D);
    CHECK(p.top_n == 20 && p.ctx_before == 5 && p.ctx_after == 5);
    p.top_n = 7;
    p.n_intervals = 4;
    p.interval_k = 3;
    p.grid_bins = 10;
    p.seed = 12345;
    invariance(&p);
    windows(&p);
    captured(p);
    p.ctx_before = p.ctx_after = -1; /* whole sequences */
    windows(&p);
    captured(p);
    sv_feat_params_default(&p, D);
    invariance(&p);
    windows(&p);
    captured(p);

    /* parameter checks and the memory formula */
    CHECK(sv_feat_mem(&p) >= (size_t)D * ((size_t)p.top_n + (size_t)p.grid_bins * (size_t)p.interval_k) * sizeof(sv_feat_ex));
    sv_feat_params q = p;
    q.grid_bins = 2 * q.n_intervals - 2;
    CHECK(sv_feat_params_check(&q, "cfg.json: features") == SV_EINPUT && strstr(sv_errmsg(), "cfg.json: features: histogram_bins"));
    q = p; q.top_n = 0;
    CHECK(sv_feat_params_check(&q, "c") == SV_EINPUT && strstr(sv_errmsg(), "top_examples"));
    q = p; q.ctx_before = -1;
    CHECK(sv_feat_params_check(&q, "c") == SV_EINPUT && strstr(sv_errmsg(), "context"));
    sv_feat *f = NULL;
    CHECK(sv_feat_new(&f, &q) == SV_EINPUT && f == NULL);
    /* a 65536-latent SAE with N = 20 and the defaults: the size stated in the README */
    sv_feat_params big;
    sv_feat_params_default(&big, 65536);
    printf("features: accumulator for d_sae 65536: %.1f MiB; windows: %.1f MiB\n",
           sv_feat_mem(&big) / 1048576.0, sv_feat_windows_mem(&big, 65536, 128) / 1048576.0);
    size_t m0 = sv_feat_mem(&big);
    CHECK(m0 - sv_feat_mem(&(sv_feat_params){.d_sae = 1, .top_n = 20, .grid_bins = 32, .interval_k = 5}) ==
          (size_t)65535 * (16 * (20 + 32 + 32 * 5) + 32)); /* the README's formula, per latent */
    big.window_width = 11; /* captured windows: 4 W (N + F K) bytes more per latent */
    CHECK(sv_feat_mem(&big) - m0 == (size_t)65536 * 4 * 11 * (20 + 32 * 5), "%zu", sv_feat_mem(&big));
    printf("features: with captured windows (W 11): %.1f MiB\n", sv_feat_mem(&big) / 1048576.0);
    free(A);
    free(tokid);
    free(seqoff);
    printf("features: all checks passed\n");
    return 0;
}

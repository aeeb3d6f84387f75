/* Per-latent feature data (see features.h for what is kept and why it is
 * order-free). Everything here is integer or exact comparisons of floats:
 * no sum depends on the order in which tokens arrive. The hot path touches
 * two cache lines per firing most of the time: the latent's record and the
 * grid bin's record; the heaps only when a value beats their worst entry. */
#include "saeval/features.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOEXP INT32_MIN
#define PACK_MAGIC 0x33544146564153ull /* "SAVFAT3" */

typedef struct {      /* 32 bytes: one cache line holds two */
    int64_t nz;       /* nonzero activations */
    double scale;     /* F * 2^-e: bin = floor(v * scale) (exact in double) */
    float maxv;
    float thr;        /* value of the worst kept top example once the list is full */
    int32_t ntop;
    int32_t ex;       /* grid exponent e: bins cover [0, 2^e); NOEXP before the first firing */
} hot_t;

typedef struct {      /* one grid bin of one latent */
    int64_t cnt;
    uint32_t n;       /* samples kept (<= K) */
    uint32_t root;    /* key at the root of the samples' heap (the worst kept) once n == K */
} bin_t;

struct sv_feat {
    sv_feat_params p;
    int64_t tokens;
    hot_t *hot;       /* [d] */
    sv_feat_ex *top;  /* [d x N] heaps, worst example at the root */
    bin_t *bins;      /* [d x F] */
    sv_feat_ex *smp;  /* [d x F x K] heaps, highest (key, token) at the root */
    /* Captured windows (W = p.window_width > 0): each heap has a pool of
     * window slots; a heap position holds the slot of its entry's window, so
     * sifting moves 2 bytes, not W floats. */
    size_t W;
    float *topw;      /* [d x N] slots of W floats */
    float *smpw;      /* [d x F x K] slots of W floats */
    uint16_t *tslot;  /* [d x N] slot of each top heap position */
    uint16_t *sslot;  /* [d x F x K] slot of each sample heap position */
    float *tmpw;      /* scratch: [W] unused + [W] new entry + [2K x W] regrid */
    int packed;       /* a view of a packed image: each latent's entries (and
                       * windows) follow the previous latent's, without gaps */
};

/* The window of heap position k of the heap starting at base (slot NULL:
 * windows in position order, as in a packed image). */
static float *winp(float *pool, const uint16_t *slot, size_t base, size_t k, size_t W)
{
    return pool + (base + (slot ? slot[base + k] : k)) * W;
}

void sv_feat_params_default(sv_feat_params *p, int64_t d_sae)
{
    memset(p, 0, sizeof *p);
    p->d_sae = d_sae;
    p->top_n = 20;
    p->n_intervals = 10;
    p->interval_k = 5;
    p->grid_bins = 32;
    p->ctx_before = 5;
    p->ctx_after = 5;
}

sv_rc sv_feat_params_check(const sv_feat_params *p, const char *where)
{
    if (p->d_sae < 1) return sv_fail(SV_EINPUT, "%s: d_sae must be >= 1", where);
    if (p->top_n < 1 || p->top_n > 10000) return sv_fail(SV_EINPUT, "%s: top_examples: must be in [1, 10000]", where);
    if (p->n_intervals < 1 || p->n_intervals > 1000)
        return sv_fail(SV_EINPUT, "%s: intervals: must be in [1, 1000]", where);
    if (p->interval_k < 0 || p->interval_k > 255)
        return sv_fail(SV_EINPUT, "%s: interval_examples: must be in [0, 255]", where);
    if (p->window_width < 0 || p->window_width > ((int64_t)1 << 24))
        return sv_fail(SV_EINPUT, "%s: window width %lld out of range", where, (long long)p->window_width);
    if (p->grid_bins < 2 * p->n_intervals || p->grid_bins % 2 || p->grid_bins > 4096)
        return sv_fail(SV_EINPUT, "%s: histogram_bins: must be even, >= 2 x intervals and <= 4096", where);
    int whole = p->ctx_before == -1 && p->ctx_after == -1;
    if (!whole && (p->ctx_before < 0 || p->ctx_after < 0 || p->ctx_before > 4096 || p->ctx_after > 4096))
        return sv_fail(SV_EINPUT, "%s: context: before/after must be in [0, 4096] (or the whole sequence)", where);
    return SV_OK;
}

static size_t per_latent(const sv_feat_params *p)
{
    size_t F = (size_t)p->grid_bins, K = (size_t)p->interval_k;
    size_t E = (size_t)p->top_n + F * K;
    return sizeof(hot_t) + E * sizeof(sv_feat_ex) + F * sizeof(bin_t) + E * (size_t)p->window_width * sizeof(float);
}

size_t sv_feat_mem(const sv_feat_params *p)
{
    return sizeof(struct sv_feat) + (size_t)p->d_sae * per_latent(p);
}

uint64_t sv_feat_key(uint64_t seed, int64_t latent, int64_t token)
{
    /* splitmix64's finalizer, applied twice: counter-based, no state. */
    uint64_t z = seed ^ ((uint64_t)latent * 0x9E3779B97F4A7C15ull);
    for (int r = 0; r < 2; r++) {
        z += 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        if (r == 0) z ^= (uint64_t)token;
    }
    return z;
}

static void *alloc64(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    memset(p, 0, n ? n : 64);
    return p;
}

/* Written before read (heaps' windows and slots): no zeroing, so pages
 * are touched only as examples arrive. */
static void *alloc64_raw(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 64) == 0 ? p : NULL;
}

static void reset(sv_feat *f)
{
    size_t d = (size_t)f->p.d_sae;
    f->tokens = 0;
    memset(f->hot, 0, d * sizeof *f->hot);
    memset(f->bins, 0, d * (size_t)f->p.grid_bins * sizeof *f->bins);
    for (size_t j = 0; j < d; j++) f->hot[j].ex = NOEXP;
}

sv_rc sv_feat_new(sv_feat **out, const sv_feat_params *p)
{
    *out = NULL;
    sv_rc rc = sv_feat_params_check(p, "features");
    if (rc != SV_OK) return rc;
    size_t d = (size_t)p->d_sae, F = (size_t)p->grid_bins, K = (size_t)p->interval_k;
    sv_feat *f = sv_calloc(1, sizeof *f);
    if (!f) return SV_EINTERNAL;
    f->p = *p;
    f->hot = alloc64(d * sizeof *f->hot);
    f->top = alloc64(d * (size_t)p->top_n * sizeof *f->top);
    f->bins = alloc64(d * F * sizeof *f->bins);
    f->smp = alloc64(d * F * (K ? K : 1) * sizeof *f->smp);
    f->W = (size_t)p->window_width;
    if (f->W) {
        f->topw = alloc64_raw(d * (size_t)p->top_n * f->W * sizeof(float));
        f->smpw = alloc64_raw(d * F * (K ? K : 1) * f->W * sizeof(float));
        f->tslot = alloc64_raw(d * (size_t)p->top_n * sizeof(uint16_t));
        f->sslot = alloc64_raw(d * F * (K ? K : 1) * sizeof(uint16_t));
        f->tmpw = alloc64((2 + 2 * K) * f->W * sizeof(float));
    }
    if (!f->hot || !f->top || !f->bins || !f->smp ||
        (f->W && (!f->topw || !f->smpw || !f->tslot || !f->sslot || !f->tmpw))) {
        sv_feat_free(f);
        return sv_fail(SV_EINTERNAL, "out of memory for the feature data of %zu latents", d);
    }
    /* Test hook: SAEVAL_TEST_FEAT_TOUCH=1 writes the window pools now, so
     * the peak RSS of a run is the worst case (every slot in use). */
    const char *touch = getenv("SAEVAL_TEST_FEAT_TOUCH");
    if (f->W && touch && *touch == '1') {
        memset(f->topw, 0, d * (size_t)p->top_n * f->W * sizeof(float));
        memset(f->smpw, 0, d * F * (K ? K : 1) * f->W * sizeof(float));
        memset(f->tslot, 0, d * (size_t)p->top_n * sizeof(uint16_t));
        memset(f->sslot, 0, d * F * (K ? K : 1) * sizeof(uint16_t));
    }
    reset(f);
    *out = f;
    return SV_OK;
}

void sv_feat_free(sv_feat *f)
{
    if (!f) return;
    free(f->hot); free(f->top); free(f->bins); free(f->smp);
    free(f->topw); free(f->smpw); free(f->tslot); free(f->sslot); free(f->tmpw);
    free(f);
}

const sv_feat_params *sv_feat_params_of(const sv_feat *f) { return &f->p; }

/* ---- heaps: "worse" at the root, so the root is what a better entry replaces ---- */
typedef int (*worse_fn)(const sv_feat_ex *a, const sv_feat_ex *b);

/* top examples: lower value is worse; equal values: the higher token is worse */
static int worse_top(const sv_feat_ex *a, const sv_feat_ex *b)
{
    return a->value < b->value || (a->value == b->value && a->token > b->token);
}

/* samples: higher key is worse; equal keys: the higher token is worse */
static int worse_smp(const sv_feat_ex *a, const sv_feat_ex *b)
{
    return a->key > b->key || (a->key == b->key && a->token > b->token);
}

/* A heap's window pool (W floats per slot; NULL: no windows) and the slot
 * of each position. */
typedef struct { float *pool; size_t W; uint16_t *slot; } heapw;

static void swap_ent(sv_feat_ex *h, const heapw *x, int a, int b)
{
    sv_feat_ex t = h[a]; h[a] = h[b]; h[b] = t;
    if (x && x->pool) {
        uint16_t u = x->slot[a]; x->slot[a] = x->slot[b]; x->slot[b] = u;
    }
}

static void sift_down(sv_feat_ex *h, const heapw *x, int n, int i, worse_fn worse)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(&h[l], &h[w])) w = l;
        if (r < n && worse(&h[r], &h[w])) w = r;
        if (w == i) return;
        swap_ent(h, x, i, w);
        i = w;
    }
}

static void sift_up(sv_feat_ex *h, const heapw *x, int i, worse_fn worse)
{
    while (i > 0) {
        int up = (i - 1) / 2;
        if (!worse(&h[i], &h[up])) return;
        swap_ent(h, x, i, up);
        i = up;
    }
}

/* Would heap_offer keep e? */
static int heap_takes(const sv_feat_ex *h, int n, int cap, const sv_feat_ex *e, worse_fn worse)
{
    return cap > 0 && (n < cap || worse(&h[0], e));
}

/* Where heap_offer puts the window of an entry it takes. */
static float *next_slot(const heapw *x, int n, int cap)
{
    return x->pool + (size_t)(n < cap ? (uint16_t)n : x->slot[0]) * x->W;
}

/* Keep the cap best entries: returns the new count. ew: e's window (with
 * x; NULL: already written at next_slot). */
static int heap_offer(sv_feat_ex *h, const heapw *x, int n, int cap, const sv_feat_ex *e, const float *ew,
                      worse_fn worse)
{
    if (!heap_takes(h, n, cap, e, worse)) return n;
    int at = n < cap ? n : 0;
    h[at] = *e;
    if (x && x->pool) { /* a new slot while the heap grows (slots 0..n-1 are in use), else the evicted root's */
        uint16_t sl = n < cap ? (uint16_t)n : x->slot[0];
        x->slot[at] = sl;
        if (ew) memcpy(x->pool + (size_t)sl * x->W, ew, x->W * sizeof(float));
    }
    if (n < cap) {
        sift_up(h, x, n, worse);
        return n + 1;
    }
    sift_down(h, x, n, 0, worse);
    return n;
}

static void top_offer(sv_feat *f, int64_t j, const sv_feat_ex *e, const float *ew)
{
    int N = f->p.top_n;
    hot_t *h = &f->hot[j];
    sv_feat_ex *hp = f->top + j * N;
    heapw x = {f->W ? f->topw + (size_t)j * (size_t)N * f->W : NULL, f->W, f->W ? f->tslot + (size_t)j * (size_t)N : NULL};
    h->ntop = heap_offer(hp, &x, h->ntop, N, e, ew, worse_top);
    if (h->ntop == N) h->thr = hp[0].value;
}

/* pool, slot: the bin's windows (pool NULL: none) */
static void smp_offer(bin_t *bn, sv_feat_ex *hp, float *pool, uint16_t *slot, size_t W, int K, const sv_feat_ex *e,
                      const float *ew)
{
    heapw x = {pool, W, slot};
    bn->n = (uint32_t)heap_offer(hp, &x, (int)bn->n, K, e, ew, worse_smp);
    if ((int)bn->n == K) bn->root = hp[0].key;
}

/* Regrid one latent's bins (bins, samples and their windows smpw (NULL:
 * none) given, so a scratch copy can be regridded too) from exponent e0 up
 * to e1: bins merge in pairs. scratch: f->tmpw. */
static void regrid(const sv_feat_params *p, bin_t *bins, sv_feat_ex *smp, float *smpw, uint16_t *slot, float *scratch,
                   int e0, int e1)
{
    int F = p->grid_bins, K = p->interval_k;
    size_t W = smpw ? (size_t)p->window_width : 0;
    sv_feat_ex tmp[2 * 255];
    float *tw = W ? scratch + 2 * W : NULL; /* [2K x W]: the pair's windows */
    for (int e = e0; e < e1; e++) {
        for (int i = 0; i < F / 2; i++) {
            int n = 0;
            for (int s = 0; s < 2; s++)
                for (uint32_t k = 0; k < bins[2 * i + s].n; k++) {
                    size_t at = (size_t)(2 * i + s) * K + k;
                    if (W) memcpy(tw + (size_t)n * W, winp(smpw, slot, (size_t)(2 * i + s) * K, k, W), W * sizeof(float));
                    tmp[n++] = smp[at];
                }
            bin_t nb = {bins[2 * i].cnt + bins[2 * i + 1].cnt, 0, 0};
            for (int k = 0; k < n; k++)
                smp_offer(&nb, smp + (size_t)i * K, W ? smpw + (size_t)i * K * W : NULL, W ? slot + (size_t)i * K : NULL,
                          W, K, &tmp[k], W ? tw + (size_t)k * W : NULL);
            bins[i] = nb;
        }
        for (int i = F / 2; i < F; i++) memset(&bins[i], 0, sizeof bins[i]);
    }
}

static int exponent_of(float v)
{
    int e;
    frexp((double)v, &e); /* v in [2^(e-1), 2^e) */
    return e;
}

static void set_grid(hot_t *h, int F, int e)
{
    h->ex = e;
    h->scale = ldexp((double)F, -e);
}

/* Where a firing's window is read from: latent j's column of rows R
 * (entries lo..hi of rows crow, values cval, tokens ascending), the firing
 * at position p. NULL: no rows (sv_feat_observe), zeros. */
typedef struct {
    const sv_feat_rows *R;
    const int32_t *crow;
    const float *cval;
    int64_t lo, hi, p;
} col_src;

/* The window into out (W floats): the latent's value on each token of
 * [start, start + len), 0 where a token has no entry: the column's
 * neighbours of the firing, as far as the window reaches. */
static void capture(const sv_feat *f, const col_src *c, float *out)
{
    const sv_feat_params *pr = &f->p;
    const int64_t W = (int64_t)f->W;
    for (int64_t k = 0; k < W; k++) out[k] = 0;
    if (!c) return;
    const sv_feat_rows *R = c->R;
    const int32_t *crow = c->crow;
    const int64_t r = crow[c->p], t = R->token[r], s0 = R->seq_off[R->seq[r]], s1 = R->seq_off[R->seq[r] + 1];
    int64_t st = pr->ctx_before < 0 ? s0 : (t - pr->ctx_before > s0 ? t - pr->ctx_before : s0);
    int64_t en = pr->ctx_before < 0 ? s1 : (t + pr->ctx_after + 1 < s1 ? t + pr->ctx_after + 1 : s1);
    if (en - st > W) en = st + W; /* W covers the longest sequence: not reached */
    for (int64_t q = c->p; q >= c->lo && R->token[crow[q]] >= st; q--) out[R->token[crow[q]] - st] = c->cval[q];
    for (int64_t q = c->p + 1; q < c->hi && R->token[crow[q]] < en; q++) out[R->token[crow[q]] - st] = c->cval[q];
}

/* One firing; c: where its window is read from (NULL: zeros). */
static void observe(sv_feat *f, int64_t j, int64_t token, float v, const col_src *c)
{
    if (!(v > 0) || !isfinite(v)) return;
    hot_t *h = &f->hot[j];
    h->nz++;
    if (v > h->maxv) h->maxv = v;
    sv_feat_ex e = {token, v, 0};
    const size_t F = (size_t)f->p.grid_bins, K = (size_t)f->p.interval_k, W = f->W, N = (size_t)f->p.top_n;
    const float *have = NULL; /* the window, captured once for both lists, straight into its slot */
    if (h->ntop < (int)N || v > h->thr || (v == h->thr && token < f->top[j * N].token)) {
        if (W) {
            heapw x = {f->topw + j * N * W, W, f->tslot + j * N};
            float *dst = next_slot(&x, h->ntop, (int)N);
            capture(f, c, dst);
            have = dst;
        }
        top_offer(f, j, &e, NULL);
    }

    if (h->ex == NOEXP) {
        set_grid(h, (int)F, exponent_of(v));
    } else if ((double)v * h->scale >= (double)F) {
        int e1 = exponent_of(v);
        regrid(&f->p, f->bins + j * F, f->smp + j * F * K, W ? f->smpw + j * F * K * W : NULL,
               W ? f->sslot + j * F * K : NULL, f->tmpw, h->ex, e1);
        set_grid(h, (int)F, e1);
    }
    size_t b = (size_t)((double)v * h->scale);
    bin_t *bn = &f->bins[j * F + b];
    bn->cnt++;
    if (K) {
        e.key = (uint32_t)(sv_feat_key(f->p.seed, j, token) >> 32);
        sv_feat_ex *hp = f->smp + (j * F + b) * K;
        if ((bn->n < K || e.key <= bn->root) && heap_takes(hp, (int)bn->n, (int)K, &e, worse_smp)) {
            float *pool = W ? f->smpw + (j * F + b) * K * W : NULL;
            uint16_t *slot = W ? f->sslot + (j * F + b) * K : NULL;
            if (W) {
                heapw x = {pool, W, slot};
                float *dst = next_slot(&x, (int)bn->n, (int)K);
                if (have) memcpy(dst, have, W * sizeof(float));
                else capture(f, c, dst);
            }
            smp_offer(bn, hp, pool, slot, W, (int)K, &e, NULL);
        }
    }
}

void sv_feat_observe(sv_feat *f, int64_t j, int64_t token, float v) { observe(f, j, token, v, NULL); }

/* Rows [r0, r1) latent by latent: a stable counting sort of R's entries by
 * latent gives each latent's firings in token order (its column), so the
 * per-latent state is visited in address order, a few firings at a time,
 * and a window is read from the column. The state does not depend on the
 * order firings arrive in, so this is the same as row by row. Scratch: 4 d
 * + 8 per entry of R bytes, for the call (without it: row by row). */
sv_rc sv_feat_observe_rows(sv_feat *f, const sv_feat_rows *R, int64_t r0, int64_t r1)
{
    if (r0 >= r1) return SV_OK;
    const int64_t d = f->p.d_sae, e0 = R->rowptr[0], ne = R->rowptr[R->rows] - e0;
    if (ne > INT32_MAX || R->rows > INT32_MAX) return sv_fail(SV_EINTERNAL, "features: %lld entries in one call", (long long)ne);
    int32_t *cnt = sv_calloc((size_t)d + 1, sizeof *cnt);
    int32_t *crow = sv_malloc((size_t)(ne ? ne : 1) * sizeof *crow);
    float *cval = sv_malloc((size_t)(ne ? ne : 1) * sizeof *cval);
    if (!cnt || !crow || !cval) {
        free(cnt); free(crow); free(cval);
        return sv_fail(SV_EINTERNAL, "out of memory for the feature rows' columns");
    }
    for (int64_t q = 0; q < ne; q++) cnt[R->idx[e0 + q] + 1]++;
    for (int64_t j = 0; j < d; j++) cnt[j + 1] += cnt[j]; /* cnt[j]: start of column j */
    for (int64_t r = 0; r < R->rows; r++)
        for (int64_t q = R->rowptr[r]; q < R->rowptr[r + 1]; q++) {
            int32_t at = cnt[R->idx[q]]++;
            crow[at] = (int32_t)r;
            cval[at] = R->val[q];
        }
    /* now cnt[j] is the end of column j */
    col_src c = {R, crow, cval, 0, 0, 0};
    for (int64_t j = 0; j < d; c.lo = cnt[j++]) {
        c.hi = cnt[j];
        for (c.p = c.lo; c.p < c.hi; c.p++)
            if (crow[c.p] >= r0 && crow[c.p] < r1) observe(f, j, R->token[crow[c.p]], cval[c.p], &c);
    }
    free(cnt);
    free(crow);
    free(cval);
    return SV_OK;
}

void sv_feat_observe_tile(sv_feat *f, int64_t token0, int64_t rows, int64_t j0, int64_t ncols,
                          const float *a, size_t lda, const unsigned char *skip)
{
    for (int64_t r = 0; r < rows; r++) {
        if (skip && skip[r]) continue;
        const float *row = a + (size_t)r * lda;
        for (int64_t c = 0; c < ncols; c++)
            if (row[c] > 0) sv_feat_observe(f, j0 + c, token0 + r, row[c]);
    }
}

void sv_feat_observe_csr(sv_feat *f, int64_t token0, int64_t rows, const int64_t *rowptr, const int32_t *idx,
                         const double *val, const unsigned char *skip)
{
    for (int64_t r = 0; r < rows; r++) {
        if (skip && skip[r]) continue;
        for (int64_t e = rowptr[r]; e < rowptr[r + 1]; e++) sv_feat_observe(f, idx[e], token0 + r, (float)val[e]);
    }
}

void sv_feat_add_tokens(sv_feat *f, int64_t n) { f->tokens += n; }

static int same_params(const sv_feat_params *a, const sv_feat_params *b)
{
    return a->d_sae == b->d_sae && a->top_n == b->top_n && a->n_intervals == b->n_intervals &&
           a->interval_k == b->interval_k && a->grid_bins == b->grid_bins && a->ctx_before == b->ctx_before &&
           a->ctx_after == b->ctx_after && a->seed == b->seed && a->window_width == b->window_width;
}

/* dst's latents [j0, j0 + n) U src's latents [0, n) (src: a whole state
 * or a view of a packed latent range). */
static sv_rc merge_view(sv_feat *dst, const sv_feat *src, int64_t j0, int64_t n)
{
    size_t F = (size_t)dst->p.grid_bins, K = (size_t)dst->p.interval_k, N = (size_t)dst->p.top_n, W = dst->W;
    bin_t *bins = sv_malloc(F * sizeof *bins);
    sv_feat_ex *smp = sv_malloc(F * (K ? K : 1) * sizeof *smp);
    float *smpw = W ? sv_malloc(F * (K ? K : 1) * W * sizeof *smpw) : NULL; /* src's windows, regridded */
    uint16_t *slot = W ? sv_malloc(F * (K ? K : 1) * sizeof *slot) : NULL;
    if (!bins || !smp || (W && (!smpw || !slot))) { free(bins); free(smp); free(smpw); free(slot); return SV_EINTERNAL; }
    size_t to = 0, so = 0; /* packed: where latent l's top entries and samples start */
    for (int64_t l = 0; l < n; l++) {
        const int64_t j = j0 + l;
        const hot_t *hs = &src->hot[l];
        hot_t *hd = &dst->hot[j];
        if (hs->nz == 0) { /* nothing (a packed view's offsets still move past any entries) */
            to += (size_t)hs->ntop;
            for (size_t b = 0; b < F; b++) so += src->bins[l * F + b].n;
            continue;
        }
        hd->nz += hs->nz;
        if (hs->maxv > hd->maxv) hd->maxv = hs->maxv;
        const size_t tb = src->packed ? to : (size_t)l * N; /* first top entry */
        for (int32_t k = 0; k < hs->ntop; k++)
            top_offer(dst, j, &src->top[tb + k], W ? winp(src->topw, src->tslot, tb, (size_t)k, W) : NULL);
        to += (size_t)hs->ntop;

        /* both grids at the larger exponent, then bins add */
        int es = hs->ex, ed = hd->ex;
        memcpy(bins, src->bins + l * F, F * sizeof *bins);
        for (size_t b = 0; b < F && K; b++) { /* in position order: slot k at position k */
            const size_t sb = src->packed ? so : (l * F + b) * K; /* the bin's first sample */
            memcpy(smp + b * K, src->smp + sb, bins[b].n * sizeof *smp);
            for (size_t k = 0; k < bins[b].n && W; k++) {
                slot[b * K + k] = (uint16_t)k;
                memcpy(smpw + (b * K + k) * W, winp(src->smpw, src->sslot, sb, k, W), W * sizeof(float));
            }
            so += bins[b].n;
        }
        if (ed == NOEXP) {
            set_grid(hd, (int)F, es);
        } else if (es < ed) {
            regrid(&src->p, bins, smp, smpw, slot, dst->tmpw, es, ed);
        } else if (ed < es) {
            regrid(&dst->p, dst->bins + j * F, dst->smp + j * F * K, W ? dst->smpw + j * F * K * W : NULL,
                   W ? dst->sslot + j * F * K : NULL, dst->tmpw, ed, es);
            set_grid(hd, (int)F, es);
        }
        for (size_t b = 0; b < F; b++) {
            bin_t *bn = &dst->bins[j * F + b];
            bn->cnt += bins[b].cnt;
            for (uint32_t k = 0; k < bins[b].n; k++)
                smp_offer(bn, dst->smp + (j * F + b) * K, W ? dst->smpw + (j * F + b) * K * W : NULL,
                          W ? dst->sslot + (j * F + b) * K : NULL, W, (int)K, &smp[b * K + k],
                          W ? winp(smpw, slot, b * K, k, W) : NULL);
        }
    }
    free(bins);
    free(smp);
    free(smpw);
    free(slot);
    return SV_OK;
}

sv_rc sv_feat_merge(sv_feat *dst, const sv_feat *src)
{
    if (!same_params(&dst->p, &src->p)) return sv_fail(SV_EINTERNAL, "features: merging accumulators with different parameters");
    dst->tokens += src->tokens;
    return merge_view(dst, src, 0, dst->p.d_sae);
}

/* ---- flat image: header, then each array padded to 8 bytes; the entries
 * and windows in use only, latent after latent (heap position order) ---- */
typedef struct {
    uint64_t magic;
    sv_feat_params p;
    int64_t tokens;   /* counted once: in the image of latent 0 */
    int64_t j0, n;    /* the latents [j0, j0 + n) it holds */
    int64_t ntop, nsmp; /* top entries and samples it holds */
} pack_hdr;

#define PAD8(x) (((x) + 7) & ~(size_t)7)
#define NARR 6

typedef struct { size_t off[NARR], size[NARR], total; } pack_layout;

/* n_latents latents holding ntop top entries and nsmp samples (at most
 * n_latents N and n_latents F K: the largest image) */
static pack_layout layout(const sv_feat_params *p, int64_t n_latents, size_t ntop, size_t nsmp)
{
    size_t d = (size_t)n_latents, F = (size_t)p->grid_bins;
    pack_layout L;
    size_t W = (size_t)p->window_width;
    size_t sz[NARR] = {d * sizeof(hot_t), ntop * sizeof(sv_feat_ex), d * F * sizeof(bin_t),
                       nsmp * sizeof(sv_feat_ex), ntop * W * sizeof(float), nsmp * W * sizeof(float)};
    size_t o = PAD8(sizeof(pack_hdr));
    for (int i = 0; i < NARR; i++) { L.off[i] = o; L.size[i] = sz[i]; o += PAD8(sz[i]); }
    L.total = o;
    return L;
}

static pack_layout layout_max(const sv_feat_params *p, int64_t n_latents)
{
    return layout(p, n_latents, (size_t)n_latents * (size_t)p->top_n,
                  (size_t)n_latents * (size_t)p->grid_bins * (size_t)p->interval_k);
}

/* Top entries and samples latents [j0, j0 + n) hold. */
static void range_counts(const sv_feat *f, int64_t j0, int64_t n, size_t *ntop, size_t *nsmp)
{
    const size_t F = (size_t)f->p.grid_bins;
    *ntop = *nsmp = 0;
    for (size_t j = (size_t)j0; j < (size_t)(j0 + n); j++) {
        *ntop += (size_t)f->hot[j].ntop;
        for (size_t b = 0; b < F; b++) *nsmp += f->bins[j * F + b].n;
    }
}

static size_t pack_range_size(const sv_feat *f, int64_t j0, int64_t n)
{
    size_t nt, ns;
    range_counts(f, j0, n, &nt, &ns);
    return layout(&f->p, n, nt, ns).total;
}

/* Returns the image's size. */
static size_t pack_range(const sv_feat *f, int64_t j0, int64_t n, void *buf)
{
    size_t nt, ns;
    range_counts(f, j0, n, &nt, &ns);
    pack_layout L = layout(&f->p, n, nt, ns);
    pack_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = PACK_MAGIC;
    h.p = f->p;
    h.tokens = j0 == 0 ? f->tokens : 0;
    h.j0 = j0;
    h.n = n;
    h.ntop = (int64_t)nt;
    h.nsmp = (int64_t)ns;
    memset(buf, 0, L.off[0]);
    memcpy(buf, &h, sizeof h);
    const size_t N = (size_t)f->p.top_n, F = (size_t)f->p.grid_bins, K = (size_t)f->p.interval_k, W = f->W;
    const size_t a = (size_t)j0;
    memcpy((char *)buf + L.off[0], f->hot + a, L.size[0]);
    memcpy((char *)buf + L.off[2], f->bins + a * F, L.size[2]);
    sv_feat_ex *top = (sv_feat_ex *)((char *)buf + L.off[1]), *smp = (sv_feat_ex *)((char *)buf + L.off[3]);
    float *tw = (float *)((char *)buf + L.off[4]), *sw = (float *)((char *)buf + L.off[5]);
    size_t to = 0, so = 0;
    for (size_t l = 0; l < (size_t)n; l++) {
        const size_t j = a + l, nt_l = (size_t)f->hot[j].ntop;
        memcpy(top + to, f->top + j * N, nt_l * sizeof *top);
        for (size_t k = 0; k < nt_l && W; k++) memcpy(tw + (to + k) * W, winp(f->topw, f->tslot, j * N, k, W), W * sizeof(float));
        to += nt_l;
        for (size_t b = 0; b < F; b++) {
            const size_t nb = f->bins[j * F + b].n;
            memcpy(smp + so, f->smp + (j * F + b) * K, nb * sizeof *smp);
            for (size_t k = 0; k < nb && W; k++)
                memcpy(sw + (so + k) * W, winp(f->smpw, f->sslot, (j * F + b) * K, k, W), W * sizeof(float));
            so += nb;
        }
    }
    for (int i = 0; i < NARR; i++) /* padding */
        memset((char *)buf + L.off[i] + L.size[i], 0, PAD8(L.size[i]) - L.size[i]);
    return L.total;
}

size_t sv_feat_pack_size(const sv_feat *f) { return pack_range_size(f, 0, f->p.d_sae); }

void sv_feat_pack(const sv_feat *f, void *buf) { (void)pack_range(f, 0, f->p.d_sae, buf); }

sv_rc sv_feat_merge_packed(sv_feat *dst, const void *buf, size_t n)
{
    pack_hdr h;
    if (n < sizeof h) return sv_fail(SV_EINTERNAL, "features: packed state of %zu bytes", n);
    memcpy(&h, buf, sizeof h);
    if (h.magic != PACK_MAGIC || !same_params(&h.p, &dst->p))
        return sv_fail(SV_EINTERNAL, "features: packed state from other parameters");
    if (h.j0 < 0 || h.n < 0 || h.j0 > dst->p.d_sae || h.n > dst->p.d_sae - h.j0 || h.ntop < 0 || h.nsmp < 0 ||
        h.ntop > h.n * h.p.top_n || h.nsmp > h.n * h.p.grid_bins * h.p.interval_k)
        return sv_fail(SV_EINTERNAL, "features: packed latents out of range");
    pack_layout L = layout(&dst->p, h.n, (size_t)h.ntop, (size_t)h.nsmp);
    if (n != L.total) return sv_fail(SV_EINTERNAL, "features: packed state of %zu bytes, expected %zu", n, L.total);
    /* A view on the (8-byte aligned) buffer; every count is checked first. */
    sv_feat v;
    memset(&v, 0, sizeof v);
    v.p = h.p;
    v.packed = 1;
    v.hot = (hot_t *)((char *)buf + L.off[0]);
    v.top = (sv_feat_ex *)((char *)buf + L.off[1]);
    v.bins = (bin_t *)((char *)buf + L.off[2]);
    v.smp = (sv_feat_ex *)((char *)buf + L.off[3]);
    v.W = (size_t)h.p.window_width;
    v.topw = (float *)((char *)buf + L.off[4]); /* windows are floats: any bits are valid */
    v.smpw = (float *)((char *)buf + L.off[5]);
    size_t F = (size_t)h.p.grid_bins, nt = 0, ns = 0;
    for (size_t j = 0; j < (size_t)h.n; j++) {
        const hot_t *x = &v.hot[j];
        if (x->ntop < 0 || x->ntop > h.p.top_n || (x->ex == NOEXP) != (x->nz == 0))
            return sv_fail(SV_EINTERNAL, "features: packed state corrupt at latent %zu", (size_t)h.j0 + j);
        nt += (size_t)x->ntop;
        for (size_t b = 0; b < F; b++) {
            if (v.bins[j * F + b].n > (uint32_t)h.p.interval_k)
                return sv_fail(SV_EINTERNAL, "features: packed state corrupt at latent %zu", (size_t)h.j0 + j);
            ns += v.bins[j * F + b].n;
        }
    }
    if (nt != (size_t)h.ntop || ns != (size_t)h.nsmp)
        return sv_fail(SV_EINTERNAL, "features: packed state corrupt (entry counts)");
    dst->tokens += h.tokens;
    return merge_view(dst, &v, h.j0, h.n);
}

/* ---- across ranks ---- */
#define MSG_CHUNK ((size_t)1 << 30) /* MPI counts are int: big images go in pieces */

static int send_bytes(const char *b, size_t n, int to, MPI_Comm comm)
{
    for (size_t o = 0; o < n || n == 0; o += MSG_CHUNK) {
        int c = (int)(n - o < MSG_CHUNK ? n - o : MSG_CHUNK);
        if (MPI_Send(b + o, c, MPI_BYTE, to, 7411, comm) != MPI_SUCCESS) return 0;
        if (n == 0) break;
    }
    return 1;
}

static int recv_bytes(char *b, size_t n, int from, MPI_Comm comm)
{
    for (size_t o = 0; o < n || n == 0; o += MSG_CHUNK) {
        int c = (int)(n - o < MSG_CHUNK ? n - o : MSG_CHUNK);
        if (MPI_Recv(b + o, c, MPI_BYTE, from, 7411, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS) return 0;
        if (n == 0) break;
    }
    return 1;
}

/* Latents per packed image in the reduction: about 64 MiB each. */
static int64_t reduce_chunk(const sv_feat_params *p)
{
    size_t per = layout_max(p, 1).total;
    int64_t c = (int64_t)(((size_t)64 << 20) / (per ? per : 1));
    return c < 1 ? 1 : c > p->d_sae ? p->d_sae : c;
}

size_t sv_feat_reduce_mem(const sv_feat_params *p) { return layout_max(p, reduce_chunk(p)).total; }

sv_rc sv_feat_reduce(sv_feat *f, MPI_Comm comm)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    const int64_t d = f->p.d_sae, C = reduce_chunk(&f->p);
    size_t cap = layout_max(&f->p, C).total;
    char *buf = size > 1 ? sv_malloc(cap) : NULL;
    if (size > 1 && !buf) return SV_EINTERNAL; /* a rank that cannot take part: the caller aborts */
    sv_rc rc = SV_OK;
    for (int step = 1; step < size; step *= 2) {
        if (rank % (2 * step) == step) {
            for (int64_t j0 = 0; j0 < d && rc == SV_OK; j0 += C) {
                int64_t n = d - j0 < C ? d - j0 : C;
                uint64_t nb = pack_range(f, j0, n, buf); /* its size first: images vary */
                if (MPI_Send(&nb, 1, MPI_UINT64_T, rank - step, 7411, comm) != MPI_SUCCESS ||
                    !send_bytes(buf, nb, rank - step, comm))
                    rc = sv_fail(SV_EINTERNAL, "features: send to rank %d failed", rank - step);
            }
            break;
        }
        if (rank % (2 * step) == 0 && rank + step < size) {
            for (int64_t j0 = 0; j0 < d && rc == SV_OK; j0 += C) {
                uint64_t nb = 0;
                if (MPI_Recv(&nb, 1, MPI_UINT64_T, rank + step, 7411, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
                    nb > cap || !recv_bytes(buf, nb, rank + step, comm))
                    rc = sv_fail(SV_EINTERNAL, "features: receive failed");
                else rc = sv_feat_merge_packed(f, buf, nb);
            }
            if (rc != SV_OK) break;
        }
    }
    free(buf);
    return rc;
}

sv_rc sv_feat_bcast(sv_feat *f, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    uint64_t n = rank == 0 ? sv_feat_pack_size(f) : 0; /* rank 0's image size, then the image */
    if (MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm) != MPI_SUCCESS) return sv_fail(SV_EINTERNAL, "features: broadcast failed");
    char *buf = sv_malloc(n);
    if (!buf) return SV_EINTERNAL;
    if (rank == 0) sv_feat_pack(f, buf);
    for (size_t o = 0; o < n; o += MSG_CHUNK) {
        int c = (int)(n - o < MSG_CHUNK ? n - o : MSG_CHUNK);
        if (MPI_Bcast(buf + o, c, MPI_BYTE, 0, comm) != MPI_SUCCESS) { free(buf); return sv_fail(SV_EINTERNAL, "features: broadcast failed"); }
    }
    sv_rc rc = SV_OK;
    if (rank != 0) {
        reset(f); /* replace the state: clear, then merge the image */
        rc = sv_feat_merge_packed(f, buf, n);
    }
    free(buf);
    return rc;
}

/* ---- results ---- */
int64_t sv_feat_tokens(const sv_feat *f) { return f->tokens; }
int64_t sv_feat_nonzero(const sv_feat *f, int64_t j) { return f->hot[j].nz; }
float sv_feat_max(const sv_feat *f, int64_t j) { return f->hot[j].maxv; }

/* value descending, then token ascending */
static int cmp_best(const void *a, const void *b)
{
    const sv_feat_ex *x = a, *y = b;
    if (x->value != y->value) return x->value > y->value ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

/* value descending, then token ascending: a total order, so any sort
 * gives the same result; insertion sort for the short lists (no calls) */
static int better(const sv_feat_ex *x, const sv_feat_ex *y)
{
    return x->value > y->value || (x->value == y->value && x->token < y->token);
}

static void sort_best(sv_feat_ex *a, int n)
{
    if (n > 64) { qsort(a, (size_t)n, sizeof *a, cmp_best); return; }
    for (int i = 1; i < n; i++) {
        sv_feat_ex x = a[i];
        int k = i;
        for (; k > 0 && better(&x, &a[k - 1]); k--) a[k] = a[k - 1];
        a[k] = x;
    }
}

int sv_feat_top(const sv_feat *f, int64_t j, sv_feat_ex *out)
{
    int n = f->hot[j].ntop;
    memcpy(out, f->top + (size_t)j * f->p.top_n, (size_t)n * sizeof *out);
    sort_best(out, n);
    return n;
}

static int grid_used(const sv_feat *f, int64_t j)
{
    const hot_t *h = &f->hot[j];
    if (h->ex == NOEXP) return 0;
    return (int)((double)h->maxv * h->scale) + 1;
}

int sv_feat_hist(const sv_feat *f, int64_t j, double *width, int64_t *counts)
{
    int c = grid_used(f, j), F = f->p.grid_bins;
    *width = c ? ldexp(1.0, f->hot[j].ex) / F : 0;
    for (int b = 0; b < F; b++) counts[b] = f->bins[(size_t)j * F + b].cnt;
    return c;
}

int sv_feat_interval(const sv_feat *f, int64_t j, int i, double *lo, double *hi, int64_t *count, sv_feat_ex *out)
{
    int c = grid_used(f, j), n = f->p.n_intervals, K = f->p.interval_k;
    *lo = *hi = 0;
    *count = 0;
    if (c == 0 || i < 0 || i >= n) return 0;
    int b0 = (int)((int64_t)i * c / n), b1 = (int)((int64_t)(i + 1) * c / n);
    double w = ldexp(1.0, f->hot[j].ex) / f->p.grid_bins;
    *lo = b0 * w;
    *hi = b1 * w;
    size_t F = (size_t)f->p.grid_bins;
    if (!out) { /* the count alone */
        for (int b = b0; b < b1; b++) *count += f->bins[j * F + b].cnt;
        return 0;
    }
    /* the K lowest keys among the bins' own lowest-K sets */
    sv_feat_ex best[255];
    int m = 0;
    for (int b = b0; b < b1; b++) {
        const bin_t *bn = &f->bins[j * F + b];
        *count += bn->cnt;
        const sv_feat_ex *s = f->smp + ((size_t)j * F + b) * K;
        for (uint32_t k = 0; k < bn->n; k++) m = heap_offer(best, NULL, m, K, &s[k], NULL, worse_smp);
    }
    sort_best(best, m);
    memcpy(out, best, (size_t)m * sizeof *out);
    return m;
}

/* ---- context windows ---- */
size_t sv_feat_windows_mem(const sv_feat_params *p, int64_t n_latents, int64_t max_seq_len)
{
    int64_t W = (p->ctx_before < 0) ? max_seq_len : p->ctx_before + 1 + p->ctx_after;
    size_t E = (size_t)p->top_n + (size_t)p->n_intervals * (size_t)p->interval_k;
    return (size_t)n_latents * E * (sizeof(sv_feat_win) + sizeof(int64_t) + (size_t)W * (sizeof(float) + sizeof(int32_t)));
}

static int cmp_pair(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

void sv_feat_windows_free(sv_feat_windows *w)
{
    free(w->win);
    free(w->values);
    free(w->ids);
    free(w->by_start);
    memset(w, 0, sizeof *w);
}

sv_rc sv_feat_windows_new(sv_feat_windows *w, const sv_feat *f, int64_t j0, int64_t j1, const int64_t *seq_off,
                          int64_t n_seq)
{
    memset(w, 0, sizeof *w);
    const sv_feat_params *p = &f->p;
    if (j0 < 0 || j1 > p->d_sae || j0 > j1) return sv_fail(SV_EINTERNAL, "features: window latents out of range");
    if (n_seq < 1 || seq_off[0] != 0) return sv_fail(SV_EINTERNAL, "features: no sequences");
    int whole = p->ctx_before < 0;
    int64_t W = p->ctx_before + 1 + p->ctx_after;
    if (whole) {
        W = 0;
        for (int64_t s = 0; s < n_seq; s++)
            if (seq_off[s + 1] - seq_off[s] > W) W = seq_off[s + 1] - seq_off[s];
    }
    int64_t cap = (j1 - j0) * ((int64_t)p->top_n + (int64_t)p->n_intervals * p->interval_k);
    w->j0 = j0;
    w->j1 = j1;
    w->width = W;
    w->win = sv_calloc((size_t)cap, sizeof *w->win);
    sv_feat_ex *ex = sv_calloc((size_t)(p->top_n > p->interval_k ? p->top_n : p->interval_k), sizeof *ex);
    if (!w->win || !ex) { free(ex); sv_feat_windows_free(w); return SV_EINTERNAL; }
    int64_t n = 0;
    for (int64_t j = j0; j < j1; j++) {
        for (int kind = 0; kind < 2; kind++) {
            int groups = kind ? p->n_intervals : 1;
            for (int g = 0; g < groups; g++) {
                double lo, hi;
                int64_t cnt;
                int m = kind ? sv_feat_interval(f, j, g, &lo, &hi, &cnt, ex) : sv_feat_top(f, j, ex);
                for (int k = 0; k < m; k++) {
                    int64_t t = ex[k].token;
                    /* the sequence holding t: last s with seq_off[s] <= t */
                    int64_t a = 0, b = n_seq;
                    while (b - a > 1) {
                        int64_t mid = a + (b - a) / 2;
                        if (seq_off[mid] <= t) a = mid; else b = mid;
                    }
                    if (t < 0 || t >= seq_off[n_seq]) { free(ex); sv_feat_windows_free(w); return sv_fail(SV_EINTERNAL, "features: token %" PRId64 " outside the store", t); }
                    int64_t s0 = seq_off[a], s1 = seq_off[a + 1];
                    int64_t st = whole ? s0 : (t - p->ctx_before > s0 ? t - p->ctx_before : s0);
                    int64_t en = whole ? s1 : (t + p->ctx_after + 1 < s1 ? t + p->ctx_after + 1 : s1);
                    sv_feat_win *x = &w->win[n++];
                    x->latent = j;
                    x->token = t;
                    x->start = st;
                    x->len = en - st;
                    x->kind = kind;
                    x->group = kind ? g : k;
                    x->value = ex[k].value;
                }
            }
        }
    }
    free(ex);
    w->n = n;
    w->values = sv_calloc((size_t)(n ? n : 1) * (size_t)(W ? W : 1), sizeof *w->values);
    w->ids = sv_malloc((size_t)(n ? n : 1) * (size_t)(W ? W : 1) * sizeof *w->ids);
    w->by_start = sv_malloc((size_t)(n ? n : 1) * sizeof *w->by_start);
    if (!w->values || !w->ids || !w->by_start) { sv_feat_windows_free(w); return SV_EINTERNAL; }
    for (int64_t i = 0; i < n * W; i++) w->ids[i] = -1;
    /* window indices by (start, index), for the fill lookups: a stable LSD
     * radix sort of the indices by start (11-bit digits, only as many as the
     * largest start needs) */
    int64_t *tmp = sv_malloc((size_t)(n ? n : 1) * sizeof *tmp);
    if (!tmp) { sv_feat_windows_free(w); return SV_EINTERNAL; }
    int64_t smax = 0;
    for (int64_t i = 0; i < n; i++) {
        w->by_start[i] = i;
        if (w->win[i].start > smax) smax = w->win[i].start;
    }
    int64_t *a = w->by_start, *b = tmp;
    for (int sh = 0; sh < 64 && (smax >> sh) > 0; sh += 11) {
        int64_t c[2049] = {0};
        for (int64_t i = 0; i < n; i++) c[((w->win[a[i]].start >> sh) & 2047) + 1]++;
        for (int k = 0; k < 2048; k++) c[k + 1] += c[k];
        for (int64_t i = 0; i < n; i++) b[c[(w->win[a[i]].start >> sh) & 2047]++] = a[i];
        int64_t *t = a; a = b; b = t;
    }
    if (a != w->by_start) memcpy(w->by_start, a, (size_t)n * sizeof *a);
    free(tmp);
    return SV_OK;
}

sv_rc sv_feat_windows_ranges(const sv_feat_windows *w, int64_t **ranges, int64_t *n)
{
    int64_t *r = sv_malloc((size_t)(w->n ? w->n : 1) * 2 * sizeof *r);
    if (!r) return SV_EINTERNAL;
    for (int64_t i = 0; i < w->n; i++) { r[2 * i] = w->win[i].start; r[2 * i + 1] = w->win[i].start + w->win[i].len; }
    qsort(r, (size_t)w->n, 2 * sizeof *r, cmp_pair);
    int64_t m = 0;
    for (int64_t i = 0; i < w->n; i++) {
        if (m > 0 && r[2 * i] <= r[2 * m - 1]) {
            if (r[2 * i + 1] > r[2 * m - 1]) r[2 * m - 1] = r[2 * i + 1];
        } else {
            r[2 * m] = r[2 * i];
            r[2 * m + 1] = r[2 * i + 1];
            m++;
        }
    }
    *ranges = r;
    *n = m;
    return SV_OK;
}

/* Windows that overlap rows [token0, token0 + rows): calls visit(i, t) per token. */
typedef struct {
    const float *a;
    size_t lda;
    const int64_t *rowptr;
    const int32_t *idx;
    const double *val;
} fill_src;

static float src_value(const fill_src *s, int64_t r, int64_t j, int64_t j0)
{
    if (s->a) return s->a[(size_t)r * s->lda + (size_t)(j - j0)];
    int64_t lo = s->rowptr[r], hi = s->rowptr[r + 1]; /* latents ascending in a row */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->idx[mid] < j) lo = mid + 1; else hi = mid;
    }
    return (lo < s->rowptr[r + 1] && s->idx[lo] == j) ? (float)s->val[lo] : 0.0f;
}

/* Values (from src) and/or token ids of the windows that overlap rows
 * [token0, token0 + rows); either source may be NULL. */
static void fill_from(sv_feat_windows *w, int64_t token0, int64_t rows, const fill_src *src, const int64_t *ids)
{
    /* windows starting in (token0 - W, token0 + rows) can overlap the rows */
    int64_t lo = 0, hi = w->n, first = token0 - w->width + 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (w->win[w->by_start[mid]].start < first) lo = mid + 1; else hi = mid;
    }
    for (int64_t k = lo; k < w->n; k++) {
        int64_t i = w->by_start[k];
        const sv_feat_win *x = &w->win[i];
        if (x->start >= token0 + rows) break;
        int64_t t0 = x->start > token0 ? x->start : token0;
        int64_t t1 = x->start + x->len < token0 + rows ? x->start + x->len : token0 + rows;
        for (int64_t t = t0; t < t1; t++) {
            size_t at = (size_t)i * (size_t)w->width + (size_t)(t - x->start);
            if (src) w->values[at] = src_value(src, t - token0, x->latent, w->j0);
            if (ids) w->ids[at] = (int32_t)ids[t - token0];
        }
    }
}

sv_rc sv_feat_windows_fill_captured(sv_feat_windows *w, const sv_feat *f)
{
    const size_t W = f->W, N = (size_t)f->p.top_n, F = (size_t)f->p.grid_bins, K = (size_t)f->p.interval_k;
    if (W == 0 || (int64_t)W != w->width)
        return sv_fail(SV_EINTERNAL, "features: captured windows of width %zu, windows of %lld", W, (long long)w->width);
    for (int64_t i = 0; i < w->n; i++) {
        const sv_feat_win *x = &w->win[i];
        const size_t j = (size_t)x->latent;
        const float *src = NULL;
        if (x->kind == 0) {
            for (size_t k = 0; k < (size_t)f->hot[j].ntop && !src; k++)
                if (f->top[j * N + k].token == x->token) src = winp(f->topw, f->tslot, j * N, k, W);
        } else { /* a token falls in one bin of a latent */
            for (size_t b = 0; b < F && !src; b++)
                for (size_t k = 0; k < f->bins[j * F + b].n && !src; k++)
                    if (f->smp[(j * F + b) * K + k].token == x->token) src = winp(f->smpw, f->sslot, (j * F + b) * K, k, W);
        }
        if (!src) return sv_fail(SV_EINTERNAL, "features: no captured window for latent %zu token %lld", j, (long long)x->token);
        memcpy(w->values + (size_t)i * W, src, W * sizeof(float));
    }
    return SV_OK;
}

void sv_feat_windows_fill_ids(sv_feat_windows *w, int64_t token0, int64_t rows, const int64_t *ids)
{
    fill_from(w, token0, rows, NULL, ids);
}

void sv_feat_windows_fill_csr(sv_feat_windows *w, int64_t token0, int64_t rows, const int64_t *rowptr,
                              const int32_t *idx, const double *val, const int64_t *ids)
{
    fill_src s = {NULL, 0, rowptr, idx, val};
    fill_from(w, token0, rows, &s, ids);
}

void sv_feat_windows_fill(sv_feat_windows *w, int64_t token0, int64_t rows, const float *a, size_t lda,
                          const int64_t *ids)
{
    fill_src s = {a, lda, NULL, NULL, NULL};
    fill_from(w, token0, rows, &s, ids);
}

sv_rc sv_feat_windows_reduce(sv_feat_windows *w, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    size_t total = (size_t)w->n * (size_t)w->width;
    for (size_t o = 0; o < total; o += MSG_CHUNK / 4) {
        int c = (int)(total - o < MSG_CHUNK / 4 ? total - o : MSG_CHUNK / 4);
        void *sv = rank == 0 ? MPI_IN_PLACE : (void *)(w->values + o);
        void *si = rank == 0 ? MPI_IN_PLACE : (void *)(w->ids + o);
        if (MPI_Reduce(sv, w->values + o, c, MPI_FLOAT, MPI_SUM, 0, comm) != MPI_SUCCESS ||
            MPI_Reduce(si, w->ids + o, c, MPI_INT32_T, MPI_MAX, 0, comm) != MPI_SUCCESS)
            return sv_fail(SV_EINTERNAL, "features: window reduction failed");
    }
    return SV_OK;
}

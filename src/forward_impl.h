/* Forward-pass body, instantiated twice by forward.c: REAL = float / double.
 * Kept as one text so both precisions cannot drift apart. */

/* The encoder input of rows x (w->ein) and each row's scales. With keep
 * (float32 rows that need no change) the rows are used where they are:
 * a copy would cost a pass over them and fresh pages for w->in. */
static void FN(normalize)(sv_fwd *w, const float *x, int64_t n, int keep)
{
    const sv_sae *s = w->sae;
    const int64_t d = s->cfg.d_in;
    REAL *in = w->in;
    const REAL *b_dec = s->b_dec;
#pragma omp parallel for num_threads(sv_fwd_threads) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        REAL *ir = in + r * d;
        double mu = 0, a = 1, o = 1;
        switch (s->cfg.normalize) {
        case SV_NORM_LAYER_NORM: {
            double sum = 0, ss = 0;
            for (int64_t i = 0; i < d; i++) sum += xr[i];
            mu = sum / (double)d;
            for (int64_t i = 0; i < d; i++) ss += ((double)xr[i] - mu) * ((double)xr[i] - mu);
            double sigma = d > 1 ? sqrt(ss / (double)(d - 1)) : 0.0;
            for (int64_t i = 0; i < d; i++) ir[i] = (REAL)(((double)xr[i] - mu) / (sigma + 1e-5));
            o = sigma;
            break;
        }
        case SV_NORM_CONSTANT_NORM_RESCALE: {
            double ss = 0;
            for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
            /* A zero vector has no scale to undo; leave it as is. */
            double c = ss > 0 ? sqrt((double)d) / sqrt(ss) : 1.0;
            for (int64_t i = 0; i < d; i++) ir[i] = (REAL)(c * xr[i]);
            a = c;
            o = 1.0 / c;
            break;
        }
        case SV_NORM_EXPECTED_AVERAGE_ONLY_IN:
            a = s->scaling_factor;
            o = 1.0 / a;
            for (int64_t i = 0; i < d; i++) ir[i] = (REAL)(a * xr[i]);
            break;
        default:
            if (!keep)
                for (int64_t i = 0; i < d; i++) ir[i] = (REAL)xr[i];
        }
        if (s->cfg.apply_b_dec_to_input)
            for (int64_t i = 0; i < d; i++) ir[i] -= b_dec[i];
        w->mu[r] = mu;
        w->inscale[r] = a;
        w->outscale[r] = o;
    }
    w->ein = keep ? (const void *)x : (const void *)in;
}

/* topk order: larger value first, ties broken by the lower index. */
static int FN(better)(REAL va, int32_t ja, REAL vb, int32_t jb)
{
    return (va > vb) | ((va == vb) & (ja < jb)); /* bitwise: no branch */
}

#define SV_ABS(v) ((v) < 0 ? -(v) : (v))
/* signed top-k order: larger |value| first, ties by the lower index. */
static int FN(better_abs)(REAL va, int32_t ja, REAL vb, int32_t jb)
{
    return FN(better)(SV_ABS(va), ja, SV_ABS(vb), jb);
}

/* Reorder v/j[0, n) so that [0, k) holds the k best by "better" (by
 * better_abs when absk) and position k-1 the worst of them (quickselect;
 * latents are distinct, so the order is strict and the kept set unique).
 * sv/sj: scratch for n entries. Always inlined into select_k below with
 * absk a constant, so the comparisons are inlined too (a call per
 * comparison cost more than the rest of the selection). */
static inline __attribute__((always_inline)) void FN(select_k_body)(REAL *v, int32_t *j, int64_t n, int64_t k,
                                                                     const int absk, REAL *sv, int32_t *sj)
{
#define SV_BETTER_V(va, ja, vb, jb) (absk ? FN(better_abs)(va, ja, vb, jb) : FN(better)(va, ja, vb, jb))
#define SV_BETTER(a, b) SV_BETTER_V(v[a], j[a], v[b], j[b])
#define SV_SWAP(a, b) do { REAL tv_ = v[a]; v[a] = v[b]; v[b] = tv_; int32_t tj_ = j[a]; j[a] = j[b]; j[b] = tj_; } while (0)
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2; /* median of three as the pivot, moved to hi */
        if (SV_BETTER(mid, lo)) SV_SWAP(mid, lo);
        if (SV_BETTER(hi, lo)) SV_SWAP(hi, lo);
        if (SV_BETTER(mid, hi)) SV_SWAP(mid, hi);
        const REAL pv = v[hi];
        const int32_t pj = j[hi];
        /* Partition [lo, hi) into the scratch without a branch (the
         * comparisons are unpredictable): each entry is written at both
         * ends, and the end it belongs to advances. Nothing read depends on
         * a store just made, unlike an in-place partition. */
        int64_t f = 0, r = hi - lo - 1;
        for (int64_t i = lo; i < hi; i++) {
            const REAL tv = v[i];
            const int32_t tj = j[i];
            const int b = SV_BETTER_V(tv, tj, pv, pj);
            sv[f] = tv;
            sj[f] = tj;
            sv[r] = tv;
            sj[r] = tj;
            f += b;
            r -= 1 - b;
        }
        /* [lo, st) better than the pivot, st the pivot, (st, hi] the rest */
        const int64_t st = lo + f, rest = hi - st;
        memcpy(v + lo, sv, (size_t)f * sizeof *v);
        memcpy(j + lo, sj, (size_t)f * sizeof *j);
        memcpy(v + st + 1, sv + f, (size_t)rest * sizeof *v);
        memcpy(j + st + 1, sj + f, (size_t)rest * sizeof *j);
        v[st] = pv;
        j[st] = pj;
        if (st == k - 1) break;
        if (st > k - 1) hi = st - 1;
        else lo = st + 1;
    }
#undef SV_SWAP
#undef SV_BETTER
#undef SV_BETTER_V
}

static void FN(select_k)(REAL *v, int32_t *j, int64_t n, int64_t k, int absk, REAL *sv, int32_t *sj)
{
    if (absk) FN(select_k_body)(v, j, n, k, 1, sv, sj);
    else FN(select_k_body)(v, j, n, k, 0, sv, sj);
}

/* Offer latents j0.. of one row's panel (hr: x'W_enc, biased and scaled
 * on the fly, the panel left as it is) to the row's top-k candidates: a
 * buffer of up to 2k entries, all better than thr, the k-th best value at
 * the last compaction (-inf before the first). Latents arrive in
 * ascending order, so a newcomer never wins a tie against a kept latent:
 * it is a candidate exactly when its value is > thr, and most of a row is
 * skipped by a branch-free test of 16 values against thr. The value is
 * (h + b_enc) * ds, each operation rounded as when it was done in place;
 * in a group of 16 that passes, the values above thr are found from a bit
 * mask and computed again (keeping the 16 in a stack array and testing
 * them one by one measured slower). sv/sj: the selection's scratch, 2k
 * entries. */
static inline __attribute__((always_inline)) void FN(topk_offer_body)(const REAL *hr, const REAL *b_enc, const REAL *ds,
                                                                       int64_t wdt, int64_t j0, int64_t k, REAL *hv,
                                                                       int32_t *hi, int64_t *hn, REAL *ht, REAL *sv,
                                                                       int32_t *sj)
{
    int64_t n = *hn;
    REAL thr = *ht;
    for (int64_t jj = 0; jj < wdt; jj += 16) {
        const int64_t e = wdt - jj < 16 ? wdt - jj : 16;
        int any = 0;
        if (e == 16) /* a constant trip count: one vector compare */
            for (int q = 0; q < 16; q++) {
                REAL v = hr[jj + q] + b_enc[jj + q];
                if (ds) v *= ds[jj + q];
                any |= v > thr;
            }
        else any = 1;
        if (!any) continue;
        unsigned mask = 0; /* the ones above thr, visited lowest first */
        for (int q = 0; q < e; q++) {
            REAL v = hr[jj + q] + b_enc[jj + q];
            if (ds) v *= ds[jj + q];
            mask |= (unsigned)(v > thr) << q;
        }
        while (mask) {
            const int64_t q = jj + __builtin_ctz(mask);
            mask &= mask - 1;
            REAL v = hr[q] + b_enc[q];
            if (ds) v *= ds[q];
            if (!(v > thr)) continue; /* thr rose at a compaction */
            hv[n] = v;
            hi[n] = (int32_t)(j0 + q);
            if (++n == 2 * k) {
                FN(select_k)(hv, hi, n, k, 0, sv, sj);
                n = k;
                thr = hv[k - 1];
            }
        }
    }
    *hn = n;
    *ht = thr;
}

SV_MULTIARCH static void FN(topk_offer)(const REAL *hr, const REAL *b_enc, const REAL *ds, int64_t wdt, int64_t j0,
                                        int64_t k, REAL *hv, int32_t *hi, int64_t *hn, REAL *ht, REAL *sv, int32_t *sj)
{
    if (ds) FN(topk_offer_body)(hr, b_enc, ds, wdt, j0, k, hv, hi, hn, ht, sv, sj);
    else FN(topk_offer_body)(hr, b_enc, NULL, wdt, j0, k, hv, hi, hn, ht, sv, sj);
}

/* signed top-k: as topk_offer with |h| as the key (thr is a |h|), the
 * signed value kept; no ReLU. */
static void FN(topk_offer_abs)(REAL *hr, const REAL *b_enc, int64_t wdt, int64_t j0, int64_t k, REAL *hv, int32_t *hi,
                               int64_t *hn, REAL *ht, REAL *sv, int32_t *sj)
{
    for (int64_t j = 0; j < wdt; j++) hr[j] += b_enc[j];
    int64_t n = *hn;
    REAL thr = *ht;
    for (int64_t q = 0; q < wdt; q++)
        if (SV_ABS(hr[q]) > thr) {
            hv[n] = hr[q];
            hi[n] = (int32_t)(j0 + q);
            if (++n == 2 * k) {
                FN(select_k)(hv, hi, n, k, 1, sv, sj);
                n = k;
                thr = SV_ABS(hv[k - 1]);
            }
        }
    *hn = n;
    *ht = thr;
}

/* groupmax: per group of gs latents the largest value > 0 so far (hv[g],
 * index hi[g], -1 while none): ReLU, then the first maximum of the group
 * (latents arrive in ascending order, so strict > keeps the lowest index). */
static void FN(groupmax_offer)(REAL *hr, const REAL *b_enc, int64_t wdt, int64_t j0, int64_t gs, REAL *hv, int32_t *hi)
{
    for (int64_t j = 0; j < wdt; j++) hr[j] += b_enc[j];
    for (int64_t q = 0; q < wdt; q++) {
        const int64_t g = (j0 + q) / gs;
        if (hr[q] > hv[g]) { hv[g] = hr[q]; hi[g] = (int32_t)(j0 + q); }
    }
}

typedef struct { int32_t j; REAL v; } FN(pair);

static int FN(by_latent)(const void *a, const void *b)
{
    int32_t x = ((const FN(pair) *)a)->j, y = ((const FN(pair) *)b)->j;
    return (x > y) - (x < y);
}

/* "better" first: a total order on distinct latents, so the first k are
 * the row's top k whichever panels the candidates came from. */
static int FN(by_rank)(const void *a, const void *b)
{
    const FN(pair) *x = a, *y = b;
    return FN(better)(x->v, x->j, y->v, y->j) ? -1 : FN(better)(y->v, y->j, x->v, x->j) ? 1 : 0;
}

static int FN(by_rank_abs)(const void *a, const void *b)
{
    const FN(pair) *x = a, *y = b;
    return FN(better_abs)(x->v, x->j, y->v, y->j) ? -1 : FN(better_abs)(y->v, y->j, x->v, x->j) ? 1 : 0;
}

/* Room for extra more entries: the list grows to what it needs, rounded
 * up to SV_FWD_GRAIN entries (not doubled: the plan counts what a block
 * holds, forward.h), and keeps that size for the next blocks. */
static int FN(list_reserve)(sv_fwd_list *l, int64_t extra)
{
    if (l->len + extra <= l->cap) return 0;
    const int64_t cap = (l->len + extra + SV_FWD_GRAIN - 1) / SV_FWD_GRAIN * SV_FWD_GRAIN;
    int32_t *ni = realloc(l->idx, (size_t)cap * sizeof *ni);
    if (ni) l->idx = ni;
    double *nv = realloc(l->val, (size_t)cap * sizeof *nv);
    if (nv) l->val = nv;
    if (!ni || !nv) return -1;
    l->cap = cap;
    return 0;
}

/* Panel of pre-activations (rows x wdt, latents j0..) through a non-topk
 * activation: entries appended to the task's list, counted per row. */
SV_MULTIARCH static int FN(activate_panel)(const sv_fwd *w, const REAL *hp, int64_t rows, int64_t wdt, int64_t j0,
                                           sv_fwd_list *sc, int64_t *cnt, int64_t np, int64_t p)
{
    const sv_sae *s = w->sae;
    /* Only the current architecture's vectors exist (the others are NULL). */
    const REAL *b_enc = s->b_enc ? (const REAL *)s->b_enc + j0 : NULL;
    const REAL *th = s->threshold ? (const REAL *)s->threshold + j0 : NULL;
    const REAL *bg = s->b_gate ? (const REAL *)s->b_gate + j0 : NULL, *bm = s->b_mag ? (const REAL *)s->b_mag + j0 : NULL;
    const REAL *er = w->exp_r_mag ? (const REAL *)w->exp_r_mag + j0 : NULL;
    const sv_act_args args = {b_enc, th, bg, er, bm};
    const FN(sv_act) kern = sv_arch_row_of(s->cfg.arch)->FN(act); /* the architecture's kernel */
    for (int64_t i = 0; i < rows; i++) {
        const REAL *hr = hp + i * SV_GEMM_PANEL;
        if (FN(list_reserve)(sc, wdt)) return -1;
        int32_t *oi = sc->idx + sc->len;
        double *ov = sc->val + sc->len;
        int64_t c = kern(hr, wdt, j0, &args, oi, ov);
        sc->len += c;
        cnt[i * np + p] = c;
    }
    return 0;
}

/* Panels [p0, p1) of row tile t are task (t, g): GEMM panel by panel into
 * the thread's buffer, each panel through the activation at once, into
 * the task's own state (top-k candidates, or entry list + counts). */
static int FN(task)(sv_fwd *w, int64_t t, int64_t g, int64_t rows, int tid)
{
    const sv_sae *s = w->sae;
    const int64_t m = s->cfg.d_sae, k = s->cfg.k, G = w->groups;
    const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL, p0 = g * np / G, p1 = (g + 1) * np / G;
    const int64_t tg = t * G + g;
    const int topk = sv_arch_has(s->cfg.arch, SV_AF_TOPK);
    const int absk = sv_arch_has(s->cfg.arch, SV_AF_SIGNED), gmax = sv_arch_has(s->cfg.arch, SV_AF_GROUPMAX);
    REAL *hp = (REAL *)w->hp + (int64_t)tid * SV_GEMM_ROWS * SV_GEMM_PANEL;
    const REAL *b_enc = s->b_enc;
    const REAL *ds = w->dec_scale;
    REAL *hv = topk ? (REAL *)w->heap_v + tg * SV_GEMM_ROWS * 2 * k : NULL;
    int32_t *hi = topk ? w->heap_i + tg * SV_GEMM_ROWS * 2 * k : NULL;
    int64_t *hn = topk ? w->heap_n + tg * SV_GEMM_ROWS : NULL;
    REAL *ht = topk ? (REAL *)w->heap_t + tg * SV_GEMM_ROWS : NULL;
    sv_fwd_list *sc = topk ? NULL : &w->lists[tg];
    /* the selection's scratch: this thread's pairs, free until the gather */
    REAL *sv = topk ? (REAL *)((FN(pair) *)w->pairs + (int64_t)tid * pair_slots(G, k)) : NULL;
    int32_t *sj = topk ? (int32_t *)(sv + 2 * k) : NULL;
    int64_t *cnt = topk ? NULL : w->panel_cnt + tg * SV_GEMM_ROWS * np;
    if (gmax)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t g = 0; g < k; g++) { hv[i * 2 * k + g] = 0; hi[i * 2 * k + g] = -1; }
    else if (topk) for (int64_t i = 0; i < rows; i++) { hn[i] = 0; ht[i] = -INFINITY; }
    else sc->len = 0;
    for (int64_t p = p0; p < p1; p++) {
        const int64_t j0 = p * SV_GEMM_PANEL, wdt = m - j0 < SV_GEMM_PANEL ? m - j0 : SV_GEMM_PANEL;
        if (FN(tile)(w, t * SV_GEMM_ROWS, rows, j0, wdt, hp)) return -1;
        if (!topk) {
            if (FN(activate_panel)(w, hp, rows, wdt, j0, sc, cnt, np, p)) return -1;
            continue;
        }
        for (int64_t i = 0; i < rows; i++) {
            if (gmax)
                FN(groupmax_offer)(hp + i * SV_GEMM_PANEL, b_enc + j0, wdt, j0, m / k, hv + i * 2 * k, hi + i * 2 * k);
            else if (absk)
                FN(topk_offer_abs)(hp + i * SV_GEMM_PANEL, b_enc + j0, wdt, j0, k, hv + i * 2 * k, hi + i * 2 * k,
                                   &hn[i], &ht[i], sv, sj);
            else
                FN(topk_offer)(hp + i * SV_GEMM_PANEL, b_enc + j0, ds ? ds + j0 : NULL, wdt, j0, k, hv + i * 2 * k,
                               hi + i * 2 * k, &hn[i], &ht[i], sv, sj);
        }
    }
    if (topk && !gmax)
        for (int64_t i = 0; i < rows; i++)
            if (hn[i] > k) {
                FN(select_k)(hv + i * 2 * k, hi + i * 2 * k, hn[i], k, absk, sv, sj);
                hn[i] = k;
            }
    return 0;
}

/* Row tile t's sparse codes, rows in order, into the block's CSR from
 * w->tile_at[t] on: top-k merged over the tasks' candidates, or each row's
 * pieces gathered task by task and panel by panel (that order is latent
 * order). */
static void FN(gather)(sv_fwd *w, int64_t t, int64_t rows, int tid)
{
    const sv_sae *s = w->sae;
    const int64_t m = s->cfg.d_sae, k = s->cfg.k, G = w->groups;
    const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL;
    const REAL *ds = w->dec_scale;
    struct { int32_t *idx; double *val; int64_t len; } o = {w->idx + w->tile_at[t], w->val + w->tile_at[t], 0}, *out = &o;
    if (sv_arch_has(s->cfg.arch, SV_AF_GROUPMAX)) {
        /* Each group's maximum over the tasks in latent order (strict >:
         * the lowest index of equal maxima), groups in latent order. */
        for (int64_t i = 0; i < rows; i++) {
            int64_t a = 0;
            for (int64_t gr = 0; gr < k; gr++) {
                REAL bv = 0;
                int32_t bj = -1;
                for (int64_t g = 0; g < G; g++) {
                    const int64_t at = ((t * G + g) * SV_GEMM_ROWS + i) * 2 * k + gr;
                    const REAL v = ((const REAL *)w->heap_v)[at];
                    if (w->heap_i[at] >= 0 && v > bv) { bv = v; bj = w->heap_i[at]; }
                }
                if (bj >= 0) { out->idx[out->len + a] = bj; out->val[out->len + a] = bv; a++; }
            }
            out->len += a;
            w->rowcnt[t * SV_GEMM_ROWS + i] = a;
        }
        return;
    }
    if (sv_arch_has(s->cfg.arch, SV_AF_TOPK)) {
        const int absk = sv_arch_has(s->cfg.arch, SV_AF_SIGNED);
        FN(pair) *c = (FN(pair) *)w->pairs + (int64_t)tid * pair_slots(G, k);
        for (int64_t i = 0; i < rows; i++) {
            int64_t n = 0;
            for (int64_t g = 0; g < G; g++) {
                const int64_t tg = t * G + g, hn = w->heap_n[tg * SV_GEMM_ROWS + i];
                const REAL *hv = (const REAL *)w->heap_v + (tg * SV_GEMM_ROWS + i) * 2 * k;
                const int32_t *hi = w->heap_i + (tg * SV_GEMM_ROWS + i) * 2 * k;
                for (int64_t q = 0; q < hn; q++, n++) { c[n].j = hi[q]; c[n].v = hv[q]; }
            }
            if (G > 1 && n > k) {
                qsort(c, (size_t)n, sizeof *c, absk ? FN(by_rank_abs) : FN(by_rank));
                n = k;
            }
            qsort(c, (size_t)n, sizeof *c, FN(by_latent));
            /* Kept latents in ascending order; positive ones are active
             * (signed top-k: nonzero ones). With rescale_acts_by_decoder_norm
             * the code holds the rescaled value, as SAELens reports it; the
             * decoder divides (decode_row). */
            int64_t a = 0;
            for (int64_t q = 0; q < n; q++) {
                const REAL v = c[q].v;
                if (absk ? v != 0 : v > 0) {
                    const REAL u = ds ? v / ds[c[q].j] : v;
                    if (u != 0) { out->idx[out->len + a] = c[q].j; out->val[out->len + a] = v; a++; }
                }
            }
            out->len += a;
            w->rowcnt[t * SV_GEMM_ROWS + i] = a;
        }
        return;
    }
    int64_t *run = w->run + (int64_t)tid * np; /* next unread entry per panel */
    for (int64_t g = 0; g < G; g++) {
        const int64_t tg = t * G + g, *cnt = w->panel_cnt + tg * SV_GEMM_ROWS * np;
        int64_t off = 0;
        for (int64_t p = g * np / G; p < (g + 1) * np / G; p++) {
            run[p] = off;
            for (int64_t i = 0; i < rows; i++) off += cnt[i * np + p];
        }
    }
    for (int64_t i = 0; i < rows; i++) {
        int64_t a = 0;
        for (int64_t g = 0; g < G; g++) {
            const int64_t tg = t * G + g, *cnt = w->panel_cnt + tg * SV_GEMM_ROWS * np;
            const sv_fwd_list *sc = &w->lists[tg];
            for (int64_t p = g * np / G; p < (g + 1) * np / G; p++) {
                const int64_t b = cnt[i * np + p];
                memcpy(out->idx + out->len + a, sc->idx + run[p], (size_t)b * sizeof *out->idx);
                memcpy(out->val + out->len + a, sc->val + run[p], (size_t)b * sizeof *out->val);
                run[p] += b;
                a += b;
            }
        }
        out->len += a;
        w->rowcnt[t * SV_GEMM_ROWS + i] = a;
    }
}

/* Sparse decode of one row: only the active latents' rows of W_dec, in
 * index order, then b_dec and the normalization undone. The rows stream
 * from memory at random places; the loop is bound by load bandwidth, and
 * AVX2 clones of it (SV_MULTIARCH) run ~1.3x faster than SSE2. Element-wise
 * float operations give the same bits at any vector width. */
SV_MULTIARCH static void FN(decode_row)(REAL *acc, const REAL *W_dec, const REAL *b_dec, const REAL *ds, int64_t d,
                                        const int32_t *oi, const double *ov, int64_t c, double *xr, int norm, double mu,
                                        double o)
{
    for (int64_t i = 0; i < d; i++) acc[i] = 0;
    for (int64_t q = 0; q < c; q++) {
        const REAL f = ds ? (REAL)ov[q] / ds[oi[q]] : (REAL)ov[q]; /* rescaled codes: back to decoder scale */
        const REAL *row = W_dec + (int64_t)oi[q] * d;
        for (int64_t i = 0; i < d; i++) acc[i] += f * row[i];
    }
    if (!norm)
        for (int64_t i = 0; i < d; i++) xr[i] = (double)(REAL)(acc[i] + b_dec[i]);
    else
        for (int64_t i = 0; i < d; i++) xr[i] = (double)(REAL)(acc[i] + b_dec[i]) * o + mu;
}

/* Latent-major decode (forward.h), step 1: the codes of the rows
 * [r0, r0 + rows) sorted by latent (a counting sort; rows ascending within
 * a latent), each at decoder scale as decode_row computes it. Returns the
 * number of active latents; -1 when out of memory. */
static int64_t FN(tile_by_latent)(sv_fwd *w, int64_t r0, int64_t rows)
{
    const int64_t m = w->sae->cfg.d_sae, e0 = w->rowptr[r0], ne = w->rowptr[r0 + rows] - e0;
    const REAL *ds = w->dec_scale;
    if (ne > w->dec_cap) { /* non-topk only: top-k's room is reserved at init */
        const int64_t cap = (ne + SV_FWD_GRAIN - 1) / SV_FWD_GRAIN * SV_FWD_GRAIN;
        free(w->dec_row);
        free(w->dec_f);
        w->dec_row = malloc((size_t)cap * sizeof *w->dec_row);
        w->dec_f = malloc((size_t)cap * sizeof(REAL));
        if (!w->dec_row || !w->dec_f) { w->dec_cap = 0; return -1; }
        w->dec_cap = cap;
    }
    int32_t *pos = w->dec_pos, *lat = w->dec_lat, *ptr = w->dec_ptr, *er = w->dec_row;
    REAL *ef = w->dec_f;
    const int32_t *idx = w->idx + e0;
    for (int64_t q = 0; q < ne; q++) pos[idx[q]]++;
    int64_t nl = 0;
    int32_t off = 0;
    for (int64_t j = 0; j < m; j++) {
        if (!pos[j]) continue;
        lat[nl] = (int32_t)j;
        ptr[nl++] = off;
        const int32_t c = pos[j];
        pos[j] = off;
        off += c;
    }
    ptr[nl] = off;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t q = w->rowptr[r0 + r]; q < w->rowptr[r0 + r + 1]; q++) {
            const int32_t j = w->idx[q];
            const int32_t at = pos[j]++;
            er[at] = (int32_t)r;
            ef[at] = ds ? (REAL)w->val[q] / ds[j] : (REAL)w->val[q];
        }
    for (int64_t q = 0; q < nl; q++) pos[lat[q]] = 0; /* zero again for the next tile */
    return nl;
}

/* One entry into a full strip: a constant trip count and no aliasing, so
 * the compiler emits the strip's vectors straight, without the checks and
 * remainder loop a runtime width costs per entry. */
static inline __attribute__((always_inline)) void FN(axpy_strip)(REAL *restrict a, const REAL *restrict seg, REAL f)
{
    for (int i = 0; i < SV_DEC_STRIP; i++) a[i] += f * seg[i];
}

/* Step 2: output columns [c0, c0 + sw) of the tile's rows, then b_dec and
 * the normalization undone (as decode_row). */
SV_MULTIARCH static void FN(decode_strip)(const sv_fwd *w, REAL *acc, int64_t r0, int64_t rows, int64_t nl,
                                          const REAL *W_dec, const REAL *b_dec, int64_t d, int64_t c0, int64_t sw,
                                          int norm)
{
    const int32_t *lat = w->dec_lat, *ptr = w->dec_ptr, *er = w->dec_row;
    const REAL *ef = w->dec_f;
    memset(acc, 0, (size_t)(rows * SV_DEC_STRIP) * sizeof *acc);
    const int full = sw == SV_DEC_STRIP;
    /* The segments lie d apart, a page or more on wide SAEs, where the
     * hardware prefetchers stop: fetch a few latents ahead by hand. */
    enum { AHEAD = 6 };
    const int64_t seg_bytes = sw * (int64_t)sizeof(REAL);
    for (int64_t q = 0; q < nl; q++) {
        const REAL *seg = W_dec + (int64_t)lat[q] * d + c0;
        if (q + AHEAD < nl) {
            const char *pf = (const char *)(W_dec + (int64_t)lat[q + AHEAD] * d + c0);
            for (int64_t b = 0; b < seg_bytes; b += 64) __builtin_prefetch(pf + b, 0, 0);
        }
        if (full)
            for (int32_t e = ptr[q]; e < ptr[q + 1]; e++) FN(axpy_strip)(acc + (int64_t)er[e] * SV_DEC_STRIP, seg, ef[e]);
        else
            for (int32_t e = ptr[q]; e < ptr[q + 1]; e++) {
                REAL *a = acc + (int64_t)er[e] * SV_DEC_STRIP;
                const REAL f = ef[e];
                for (int64_t i = 0; i < sw; i++) a[i] += f * seg[i];
            }
    }
    for (int64_t r = 0; r < rows; r++) {
        const REAL *a = acc + r * SV_DEC_STRIP;
        double *xr = w->xhat + (r0 + r) * d + c0;
        const double mu = w->mu[r0 + r], o = w->outscale[r0 + r];
        if (!norm)
            for (int64_t i = 0; i < sw; i++) xr[i] = (double)(REAL)(a[i] + b_dec[c0 + i]);
        else
            for (int64_t i = 0; i < sw; i++) xr[i] = (double)(REAL)(a[i] + b_dec[c0 + i]) * o + mu;
    }
}

/* The latent-major decode of a block: tile by tile, strips over threads. */
static int FN(decode_latents)(sv_fwd *w, int64_t n, const REAL *W_dec, const REAL *b_dec, int64_t dout, int norm)
{
    const int64_t ns = (dout + SV_DEC_STRIP - 1) / SV_DEC_STRIP;
    for (int64_t r0 = 0; r0 < n; r0 += SV_GEMM_ROWS) {
        const int64_t rows = n - r0 < SV_GEMM_ROWS ? n - r0 : SV_GEMM_ROWS;
        const int64_t nl = FN(tile_by_latent)(w, r0, rows);
        if (nl < 0) return -1;
#pragma omp parallel for num_threads(sv_fwd_threads) schedule(dynamic, 1) if (ns > 1)
        for (int64_t st = 0; st < ns; st++) {
            const int64_t c0 = st * SV_DEC_STRIP, sw = dout - c0 < SV_DEC_STRIP ? dout - c0 : SV_DEC_STRIP;
            REAL *acc = (REAL *)w->dec_acc + (int64_t)omp_get_thread_num() * SV_GEMM_ROWS * SV_DEC_STRIP;
            FN(decode_strip)(w, acc, r0, rows, nl, W_dec, b_dec, dout, c0, sw, norm);
        }
    }
    return 0;
}

/* Skip connection (sparsify, SAELens skip transcoders): x^ += x.W_skip^T
 * on the raw input x (no normalization: refused with a skip at load),
 * each output's dot product in input order in the working precision,
 * added after b_dec as both projects do. */
SV_MULTIARCH static void FN(skip_row)(const REAL *W_skip, int64_t dout, int64_t din, const float *x, double *xr)
{
    for (int64_t o = 0; o < dout; o++) {
        const REAL *wr = W_skip + o * din;
        REAL sk = 0;
        for (int64_t i = 0; i < din; i++) sk += (REAL)x[i] * wr[i];
        xr[o] = (double)(REAL)((REAL)xr[o] + sk);
    }
}

/* The encoder GEMM tiles alone, without activation, split over threads as
 * in FN(run): a benchmark limit. */
static void FN(encode_only)(sv_fwd *w, int64_t n)
{
    const sv_sae *s = w->sae;
    const int64_t m = s->cfg.d_sae, G = w->groups;
    const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL, nt = (n + SV_GEMM_ROWS - 1) / SV_GEMM_ROWS;
#pragma omp parallel for num_threads(sv_fwd_threads) schedule(dynamic, 1) if (nt * G > 1)
    for (int64_t task = 0; task < nt * G; task++) {
        const int64_t t = task / G, g = task % G;
        const int64_t r0 = t * SV_GEMM_ROWS, rows = n - r0 < SV_GEMM_ROWS ? n - r0 : SV_GEMM_ROWS;
        REAL *hp = (REAL *)w->hp + (int64_t)omp_get_thread_num() * SV_GEMM_ROWS * SV_GEMM_PANEL;
        for (int64_t p = g * np / G; p < (g + 1) * np / G; p++) {
            const int64_t j0 = p * SV_GEMM_PANEL, wdt = m - j0 < SV_GEMM_PANEL ? m - j0 : SV_GEMM_PANEL;
            FN(tile)(w, r0, rows, j0, wdt, hp);
        }
    }
}

static sv_rc FN(run)(sv_fwd *w, const float *x, int64_t n)
{
    const sv_sae *s = w->sae;
    const int64_t d = s->cfg.d_in, G = w->groups;
    const REAL *W_dec = s->W_dec, *b_dec = s->b_dec;
    const int T = sv_fwd_threads;
    const int keep = sizeof(REAL) == sizeof(float) && s->cfg.normalize == SV_NORM_NONE && !s->cfg.apply_b_dec_to_input;
    FN(normalize)(w, x, n, keep);
    if (w->bf16) round_input(w, n);
    /* The encoder is cut into fixed tiles of SV_GEMM_ROWS rows (counted
     * from the block start; blocks are multiples of SV_GEMM_ROWS and units
     * start blocks) x SV_GEMM_PANEL columns, each a single-threaded call:
     * OpenBLAS output bits depend on its thread count and on the call's
     * shape, so fixing the shape makes results independent of threads,
     * ranks, block size and memory budget. Threads take (row tile, range
     * of panels) tasks; a row's top-k is the same set however its panels
     * were split, and its other codes are gathered in panel order. */
    const int64_t nt = (n + SV_GEMM_ROWS - 1) / SV_GEMM_ROWS;
    int oom = 0;
#pragma omp parallel for num_threads(T) schedule(dynamic, 1) reduction(| : oom) if (nt * G > 1)
    for (int64_t task = 0; task < nt * G; task++) {
        const int64_t t = task / G, rows = n - t * SV_GEMM_ROWS < SV_GEMM_ROWS ? n - t * SV_GEMM_ROWS : SV_GEMM_ROWS;
        oom |= FN(task)(w, t, task % G, rows, omp_get_thread_num()) != 0;
    }
    if (oom) return sv_fail(SV_EINTERNAL, "out of memory in forward pass");
    /* A tile's rows are consecutive, so its codes are one CSR segment,
     * gathered straight into idx/val: top-k tiles at t x rows x k (room for
     * k a row, then packed), the others' at their exact offsets. */
    const int topk = sv_arch_has(s->cfg.arch, SV_AF_TOPK);
    w->tile_at[0] = 0;
    for (int64_t t = 0; t < nt; t++) {
        int64_t len = 0;
        for (int64_t g = 0; !topk && g < G; g++) len += w->lists[t * G + g].len;
        w->tile_at[t + 1] = topk ? (t + 1) * SV_GEMM_ROWS * s->cfg.k : w->tile_at[t] + len;
    }
    if (w->tile_at[nt] > w->cap) { /* non-topk only: top-k's room is reserved at init */
        const int64_t cap = (w->tile_at[nt] + SV_FWD_GRAIN - 1) / SV_FWD_GRAIN * SV_FWD_GRAIN;
        free(w->idx);
        free(w->val);
        w->idx = malloc((size_t)cap * sizeof *w->idx);
        w->val = malloc((size_t)cap * sizeof *w->val);
        if (!w->idx || !w->val) { w->cap = 0; return sv_fail(SV_EINTERNAL, "out of memory in forward pass"); }
        w->cap = cap;
    }
#pragma omp parallel for num_threads(T) schedule(dynamic, 1) if (nt > 1)
    for (int64_t t = 0; t < nt; t++) {
        const int64_t rows = n - t * SV_GEMM_ROWS < SV_GEMM_ROWS ? n - t * SV_GEMM_ROWS : SV_GEMM_ROWS;
        FN(gather)(w, t, rows, omp_get_thread_num());
    }
    w->rowptr[0] = 0;
    for (int64_t r = 0; r < n; r++) w->rowptr[r + 1] = w->rowptr[r] + w->rowcnt[r];
    for (int64_t t = 1; topk && t < nt; t++) { /* pack: a tile's start only moves down */
        const int64_t at = w->rowptr[t * SV_GEMM_ROWS], len = w->rowptr[t + 1 < nt ? (t + 1) * SV_GEMM_ROWS : n] - at;
        memmove(w->idx + at, w->idx + w->tile_at[t], (size_t)len * sizeof *w->idx);
        memmove(w->val + at, w->val + w->tile_at[t], (size_t)len * sizeof *w->val);
    }
    const int norm = s->cfg.normalize != SV_NORM_NONE;
    const int64_t dout = sv_cfg_d_out(&s->cfg);
    const REAL *W_skip = s->W_skip;
    if (w->latent_major) {
        if (FN(decode_latents)(w, n, W_dec, b_dec, dout, norm)) return sv_fail(SV_EINTERNAL, "out of memory in forward pass");
        if (W_skip) {
#pragma omp parallel for num_threads(T) schedule(static)
            for (int64_t r = 0; r < n; r++) FN(skip_row)(W_skip, dout, d, x + r * d, w->xhat + r * dout);
        }
        return SV_OK;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        FN(decode_row)((REAL *)w->acc + (int64_t)omp_get_thread_num() * dout, W_dec, b_dec, (const REAL *)w->dec_scale,
                       dout, w->idx + w->rowptr[r], w->val + w->rowptr[r], w->rowcnt[r], w->xhat + r * dout, norm,
                       w->mu[r], w->outscale[r]);
        if (W_skip) FN(skip_row)(W_skip, dout, d, x + r * d, w->xhat + r * dout);
    }
    return SV_OK;
}

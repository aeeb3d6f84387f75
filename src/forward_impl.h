/* Forward-pass body, instantiated twice by forward.c: REAL = float / double.
 * Kept as one text so both precisions cannot drift apart. */

static void FN(normalize)(sv_fwd *w, const float *x, int64_t n)
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
            for (int64_t i = 0; i < d; i++) ir[i] = (REAL)xr[i];
        }
        if (s->cfg.apply_b_dec_to_input)
            for (int64_t i = 0; i < d; i++) ir[i] -= b_dec[i];
        w->mu[r] = mu;
        w->inscale[r] = a;
        w->outscale[r] = o;
    }
}

/* topk order: larger value first, ties broken by the lower index. */
static int FN(better)(const REAL *v, int32_t a, int32_t b)
{
    return v[a] > v[b] || (v[a] == v[b] && a < b);
}

/* Min-heap on "better": the root is the worst of the kept candidates. */
static void FN(sift_down)(const REAL *v, int32_t *heap, int64_t n, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && FN(better)(v, heap[m], heap[l])) m = l;
        if (r < n && FN(better)(v, heap[m], heap[r])) m = r;
        if (m == i) return;
        int32_t t = heap[i]; heap[i] = heap[m]; heap[m] = t;
        i = m;
    }
}

static int FN(cmp_i32)(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Turn pre-activation row hr (holding x'W_enc) into the sparse code, in
 * ascending latent order. With oi == NULL only counts (non-topk archs).
 * heap: topk scratch of k entries owned by the calling thread. */
static int64_t FN(activate_row)(const sv_fwd *w, REAL *hr, int32_t *oi, double *ov, int32_t *heap)
{
    const sv_sae *s = w->sae;
    const int64_t m = s->cfg.d_sae;
    const REAL *b_enc = s->b_enc;
    int64_t c = 0;
#define SV_EMIT(j, v) do { if (oi) { oi[c] = (int32_t)(j); ov[c] = (v); } c++; } while (0)
    switch (s->cfg.arch) {
    case SV_ARCH_STANDARD:
        for (int64_t j = 0; j < m; j++) {
            REAL p = hr[j] + b_enc[j];
            if (p > 0) SV_EMIT(j, p);
        }
        break;
    case SV_ARCH_JUMPRELU: {
        const REAL *th = s->threshold;
        for (int64_t j = 0; j < m; j++) {
            REAL p = hr[j] + b_enc[j];
            if (p > th[j] && p > 0) SV_EMIT(j, p);
        }
        break;
    }
    case SV_ARCH_GATED: {
        const REAL *bg = s->b_gate, *bm = s->b_mag, *er = w->exp_r_mag;
        /* One GEMM serves both paths: r_mag scales whole latents, so
         * x'(W_enc * exp(r_mag)) = (x'W_enc) * exp(r_mag). */
        for (int64_t j = 0; j < m; j++) {
            if (hr[j] + bg[j] > 0) {
                REAL p = hr[j] * er[j] + bm[j];
                if (p > 0) SV_EMIT(j, p);
            }
        }
        break;
    }
    case SV_ARCH_TOPK: {
        const int64_t k = s->cfg.k;
        const REAL *ds = w->dec_scale;
        for (int64_t j = 0; j < m; j++) {
            hr[j] += b_enc[j];
            if (ds) hr[j] *= ds[j];
        }
        int64_t hn = 0;
        for (int64_t j = 0; j < m; j++) {
            if (hn < k) {
                heap[hn++] = (int32_t)j;
                if (hn == k) /* heapify once full */
                    for (int64_t i = k / 2 - 1; i >= 0; i--) FN(sift_down)(hr, heap, k, i);
            } else if (FN(better)(hr, (int32_t)j, heap[0])) {
                heap[0] = (int32_t)j;
                FN(sift_down)(hr, heap, k, 0);
            }
        }
        qsort(heap, (size_t)hn, sizeof *heap, FN(cmp_i32));
        for (int64_t q = 0; q < hn; q++) {
            int32_t j = heap[q];
            REAL p = hr[j];
            if (p > 0) {
                if (ds) p /= ds[j];
                if (p != 0) SV_EMIT(j, p);
            }
        }
        break;
    }
    }
#undef SV_EMIT
    return c;
}

/* h = in * W_enc for n rows, in fixed tiles. */
static void FN(encode)(const sv_sae *s, const REAL *in, REAL *h, int64_t n)
{
    const int64_t d = s->cfg.d_in, m = s->cfg.d_sae;
    if (n > 0) {
        /* The encoder GEMM is cut into fixed tiles of SV_GEMM_ROWS rows x
         * SV_GEMM_PANEL columns, each a single-threaded call. OpenBLAS output
         * bits depend on its thread count and on the call's shape, so the
         * shape is fixed here (rows counted from the unit start, since
         * blocks are multiples of SV_GEMM_ROWS) and threads only choose who
         * computes which tile: results do not depend on threads, ranks,
         * block size or memory budget. */
        const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL;
        const int64_t nr = (n + SV_GEMM_ROWS - 1) / SV_GEMM_ROWS;
        const REAL *W_enc = s->W_enc;
#pragma omp parallel for num_threads(sv_fwd_threads) schedule(dynamic, 1) if (np * nr > 1)
        for (int64_t t = 0; t < np * nr; t++) {
            int64_t p = t % np, r0 = (t / np) * SV_GEMM_ROWS;
            int64_t j0 = p * SV_GEMM_PANEL, wdt = m - j0 < SV_GEMM_PANEL ? m - j0 : SV_GEMM_PANEL;
            int64_t rows = n - r0 < SV_GEMM_ROWS ? n - r0 : SV_GEMM_ROWS;
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)wdt, (int)d, 1, in + r0 * d,
                 (int)d, W_enc + j0, (int)m, 0, h + r0 * m + j0, (int)m);
        }
    }
}

static sv_rc FN(run)(sv_fwd *w, const float *x, int64_t n)
{
    const sv_sae *s = w->sae;
    const int64_t d = s->cfg.d_in, m = s->cfg.d_sae;
    REAL *in = w->in, *h = w->h;
    const REAL *W_dec = s->W_dec, *b_dec = s->b_dec;
    FN(normalize)(w, x, n);
    FN(encode)(s, in, h, n);
    /* Sparse codes: rows are independent, so threads split them freely;
     * the CSR layout is fixed by the per-row counts alone. */
    const int T = sv_fwd_threads;
    const int topk = s->cfg.arch == SV_ARCH_TOPK;
    const int64_t k = s->cfg.k;
    if (topk) { /* at most k per row: fill fixed slots, then compact */
#pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t r = 0; r < n; r++)
            w->rowcnt[r] = FN(activate_row)(w, h + r * m, w->idx_tmp + r * k, w->val_tmp + r * k,
                                            w->heap + (int64_t)omp_get_thread_num() * k);
    } else {
#pragma omp parallel for num_threads(T) schedule(static)
        for (int64_t r = 0; r < n; r++) w->rowcnt[r] = FN(activate_row)(w, h + r * m, NULL, NULL, NULL);
    }
    w->rowptr[0] = 0;
    for (int64_t r = 0; r < n; r++) w->rowptr[r + 1] = w->rowptr[r] + w->rowcnt[r];
    const int64_t nnz = w->rowptr[n];
    if (nnz > w->cap) {
        int64_t cap = nnz + nnz / 4;
        free(w->idx);
        free(w->val);
        w->idx = malloc((size_t)cap * sizeof *w->idx);
        w->val = malloc((size_t)cap * sizeof *w->val);
        if (!w->idx || !w->val) { w->cap = 0; return sv_fail(SV_EINTERNAL, "out of memory in forward pass"); }
        w->cap = cap;
    }
#pragma omp parallel for num_threads(T) schedule(static)
    for (int64_t r = 0; r < n; r++) {
        REAL *acc = (REAL *)w->acc + (int64_t)omp_get_thread_num() * d;
        int32_t *oi = w->idx + w->rowptr[r];
        double *ov = w->val + w->rowptr[r];
        if (topk) {
            memcpy(oi, w->idx_tmp + r * k, (size_t)w->rowcnt[r] * sizeof *oi);
            memcpy(ov, w->val_tmp + r * k, (size_t)w->rowcnt[r] * sizeof *ov);
        } else {
            FN(activate_row)(w, h + r * m, oi, ov, NULL);
        }
        /* Sparse decode: only the active latents' rows, in index order. */
        for (int64_t i = 0; i < d; i++) acc[i] = 0;
        for (int64_t q = 0; q < w->rowcnt[r]; q++) {
            const REAL f = (REAL)ov[q];
            const REAL *row = W_dec + (int64_t)oi[q] * d;
            for (int64_t i = 0; i < d; i++) acc[i] += f * row[i];
        }
        double *xr = w->xhat + r * d;
        const double mu = w->mu[r], o = w->outscale[r];
        if (s->cfg.normalize == SV_NORM_NONE)
            for (int64_t i = 0; i < d; i++) xr[i] = (double)(REAL)(acc[i] + b_dec[i]);
        else
            for (int64_t i = 0; i < d; i++) xr[i] = (double)(REAL)(acc[i] + b_dec[i]) * o + mu;
    }
    return SV_OK;
}

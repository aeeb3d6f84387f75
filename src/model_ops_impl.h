/* Transformer layer ops, instantiated twice by model_ops.c: REAL = float /
 * double. Kept as one text so both precisions cannot drift apart.
 * Element-wise ops round to REAL after each step as torch does in float32;
 * reductions (norm statistics, softmax, log-sum-exp) run in double. */

/* y[T][out] (row stride ldy) = x[T][in] (ldx) . W (+ b): fixed tiles of
 * ws->rows rows from the sequence start x ws->cols columns, each
 * one single-threaded BLAS call, so no result depends on the threads. */
static void FN(linear)(const sv_model_ws *ws, const sv_lin *L, const REAL *x, int64_t ldx, int64_t T, REAL *y, int64_t ldy)
{
    const int64_t RB = ws->rows > 0 ? ws->rows : SV_MODEL_ROWS, CB = ws->cols > 0 ? ws->cols : SV_MODEL_COLS;
    const int threads = ws->threads;
    const int64_t nr = (T + RB - 1) / RB, nc = (L->out + CB - 1) / CB;
    const REAL *W = L->w, *b = L->b;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (nr * nc > 1 && threads > 1)
    for (int64_t task = 0; task < nr * nc; task++) {
        const int64_t r0 = (task / nc) * RB, c0 = (task % nc) * CB;
        const int64_t rows = T - r0 < RB ? T - r0 : RB;
        const int64_t cols = L->out - c0 < CB ? L->out - c0 : CB;
        if (L->trans) /* nn.Linear: W [out][in] */
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)L->in, 1, x + r0 * ldx, (int)ldx,
                 W + c0 * L->in, (int)L->in, 0, y + r0 * ldy + c0, (int)ldy);
        else /* Conv1D: W [in][out] */
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)L->in, 1, x + r0 * ldx,
                 (int)ldx, W + c0, (int)L->out, 0, y + r0 * ldy + c0, (int)ldy);
        if (b)
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < cols; j++) y[(r0 + r) * ldy + c0 + j] += b[c0 + j];
    }
}

static void FN(norm)(const sv_model_cfg *c, const sv_normw *n, const REAL *x, REAL *y, int64_t T, int threads)
{
    const int64_t d = c->d_model;
    const REAL *w = n->w, *b = n->b;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t t = 0; t < T; t++) {
        const REAL *xr = x + t * d;
        REAL *yr = y + t * d;
        if (c->norm == SV_NORMK_LAYER) { /* (x - mu) / sqrt(var + eps) * w + b, biased variance */
            double mu = 0, var = 0;
            for (int64_t i = 0; i < d; i++) mu += xr[i];
            mu /= (double)d;
            for (int64_t i = 0; i < d; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
            const double rs = 1.0 / sqrt(var / (double)d + c->norm_eps);
            for (int64_t i = 0; i < d; i++) {
                REAL v = (REAL)(((double)xr[i] - mu) * rs);
                v = v * w[i];
                yr[i] = b ? v + b[i] : v;
            }
        } else { /* x * rsqrt(mean(x^2) + eps), then * w (Llama) or * (1 + w) (Gemma) */
            double ms = 0;
            for (int64_t i = 0; i < d; i++) ms += (double)xr[i] * xr[i];
            const REAL rs = (REAL)(1.0 / sqrt(ms / (double)d + c->norm_eps));
            for (int64_t i = 0; i < d; i++) {
                const REAL v = xr[i] * rs;
                yr[i] = c->norm == SV_NORMK_RMS ? w[i] * v : v * ((REAL)1 + w[i]);
            }
        }
    }
}

static REAL FN(act)(sv_act a, REAL x)
{
    const double v = x;
    switch (a) {
    case SV_ACT_GELU_ERF: return (REAL)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    case SV_ACT_GELU_TANH:
        return (REAL)(0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))));
    case SV_ACT_RELU: return x > 0 ? x : 0;
    case SV_ACT_SILU: return (REAL)(v / (1.0 + exp(-v)));
    }
    return x;
}

/* cos/sin of position t times inv_freq[i] for i < rotary_dim / 2: the
 * angle is rounded to REAL first, as HF's float32 inv_freq @ positions. */
static void FN(rope_tables)(const sv_model *m, REAL *cosb, REAL *sinb, int64_t T)
{
    const int64_t h = m->cfg.rotary_dim / 2;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < h; i++) {
            const REAL ang = (REAL)(REAL)m->inv_freq[i] * (REAL)t;
            cosb[t * h + i] = (REAL)cos((double)ang);
            sinb[t * h + i] = (REAL)sin((double)ang);
        }
}

/* rotate_half RoPE on the first rotary_dim dims of one head vector. */
static void FN(rope)(REAL *v, const REAL *cs, const REAL *sn, int64_t half)
{
    for (int64_t i = 0; i < half; i++) {
        const REAL x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cs[i] - x2 * sn[i];
        v[i + half] = x2 * cs[i] + x1 * sn[i];
    }
}

/* Attention of layer l on ws->h -> ws->ao (after the output projection). */
static void FN(attention)(sv_model_ws *ws, int64_t l, int64_t T)
{
    const sv_model *m = ws->m;
    const sv_model_cfg *c = &m->cfg;
    const sv_layer *L = &m->layers[l];
    const int th = ws->threads;
    const int64_t d = c->d_model, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
    const int64_t hq = nh * hd, hk = nkv * hd, half = c->rotary_dim / 2;
    REAL *q = ws->q, *k = ws->k, *v = ws->v, *tmp = ws->tmp, *att = ws->att, *h = ws->h;
    const REAL *cosb = ws->cosb, *sinb = ws->sinb;

    /* Projections, then each head's vectors gathered to [head][T][hd]. */
    int64_t ld, qo, ko, vo, hs; /* row stride, q/k/v offsets of head 0, stride between heads */
    if (L->qkv.w) {
        FN(linear)(ws, &L->qkv, h, d, T, tmp, 3 * d);
        ld = 3 * d;
        if (L->qkv_per_head) { qo = 0; ko = hd; vo = 2 * hd; hs = 3 * hd; } /* NeoX [q_h k_h v_h] */
        else { qo = 0; ko = d; vo = 2 * d; hs = hd; }                       /* GPT-2 [q | k | v] */
    } else {
        FN(linear)(ws, &L->q, h, d, T, tmp, hq + 2 * hk);
        FN(linear)(ws, &L->k, h, d, T, tmp + hq, hq + 2 * hk);
        FN(linear)(ws, &L->v, h, d, T, tmp + hq + hk, hq + 2 * hk);
        ld = hq + 2 * hk;
        qo = 0; ko = hq; vo = hq + hk; hs = hd;
    }
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
    for (int64_t t = 0; t < T; t++) {
        const REAL *row = tmp + t * ld;
        for (int64_t hh = 0; hh < nh; hh++) {
            REAL *dst = q + (hh * T + t) * hd;
            memcpy(dst, row + qo + hh * hs, (size_t)hd * sizeof(REAL));
            if (half) FN(rope)(dst, cosb + t * half, sinb + t * half, half);
        }
        for (int64_t hh = 0; hh < nkv; hh++) {
            REAL *dk = k + (hh * T + t) * hd, *dv = v + (hh * T + t) * hd;
            memcpy(dk, row + ko + hh * hs, (size_t)hd * sizeof(REAL));
            memcpy(dv, row + vo + hh * hs, (size_t)hd * sizeof(REAL));
            if (half) FN(rope)(dk, cosb + t * half, sinb + t * half, half);
        }
    }

    /* Per (head, query block): scores by GEMM over the keys 0..q_end-1,
     * scale, soft-cap, causal (+ sliding window) mask, softmax in double,
     * then P V by GEMM. Shapes depend only on T and the block. */
    const int64_t QB = ws->qblock > 0 && ws->qblock < SV_MODEL_QBLOCK ? ws->qblock : SV_MODEL_QBLOCK, nb = (T + QB - 1) / QB, grp = nh / nkv;
    const REAL scale = (REAL)(c->attn_scale / (c->attn_scale_by_layer ? (double)(l + 1) : 1.0));
    const REAL cap = (REAL)c->attn_softcap;
    const int64_t win = (c->sliding_window > 0 && l % 2 == 0) ? c->sliding_window : 0; /* even layers slide */
    const int64_t lds = ws->max_T;
#pragma omp parallel for num_threads(th) schedule(dynamic, 1) if (nh * nb > 1 && th > 1)
    for (int64_t task = 0; task < nh * nb; task++) {
        const int64_t hh = task / nb, q0 = (task % nb) * QB;
        const int64_t qb = T - q0 < QB ? T - q0 : QB, kend = q0 + qb;
        /* Keys [kb, kend): a sliding layer skips keys no query of the
         * block can see (the shapes still depend only on T and W). */
        const int64_t kb = win && q0 - win + 1 > 0 ? q0 - win + 1 : 0, nk = kend - kb;
        const int tid = omp_get_thread_num();
        REAL *S = (REAL *)ws->scores + (int64_t)tid * SV_MODEL_QBLOCK * lds;
        double *e = ws->rowd + (int64_t)tid * lds;
        const REAL *Q = q + (hh * T + q0) * hd, *K = k + ((hh / grp) * T + kb) * hd, *V = v + ((hh / grp) * T + kb) * hd;
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)nk, (int)hd, 1, Q, (int)hd, K, (int)hd, 0, S,
             (int)lds);
        for (int64_t r = 0; r < qb; r++) {
            /* key j (absolute) is column j - kb */
            const int64_t i = q0 + r, j0 = win && i - win + 1 > 0 ? i - win + 1 : 0;
            REAL *s = S + r * lds;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = j0; j <= i; j++) {
                REAL z = s[j - kb] * scale;
                if (cap > 0) z = (REAL)tanh((double)(z / cap)) * cap;
                e[j] = z;
                if (e[j] > mx) mx = e[j];
            }
            for (int64_t j = j0; j <= i; j++) {
                e[j] = exp(e[j] - mx);
                sum += e[j];
            }
            for (int64_t j = kb; j < kend; j++) s[j - kb] = (j >= j0 && j <= i) ? (REAL)(e[j] / sum) : 0;
        }
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)qb, (int)hd, (int)nk, 1, S, (int)lds, V, (int)hd, 0,
             att + q0 * hq + hh * hd, (int)hq);
    }
    FN(linear)(ws, &L->o, att, hq, T, ws->ao, d);
}

static void FN(mlp)(sv_model_ws *ws, const sv_layer *L, int64_t T)
{
    const sv_model_cfg *c = &ws->m->cfg;
    const int th = ws->threads;
    const int64_t d = c->d_model, f = c->d_ff;
    REAL *f1 = ws->f1, *f2 = ws->f2;
    if (c->gated_mlp) {
        FN(linear)(ws, &L->gate, ws->h, d, T, f1, f);
        FN(linear)(ws, &L->up, ws->h, d, T, f2, f);
    } else {
        FN(linear)(ws, &L->fc, ws->h, d, T, f1, f);
    }
#pragma omp parallel for num_threads(th) schedule(static) if (th > 1)
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < f; i++) {
            const REAL a = FN(act)(c->act, f1[t * f + i]);
            f1[t * f + i] = c->gated_mlp ? a * f2[t * f + i] : a;
        }
    FN(linear)(ws, &L->down, f1, f, T, ws->mo, d);
}

/* One block on ws->x in place; ws->ao / ws->mo keep the hook values: the
 * module outputs, after Gemma-2's post-norms. */
void FN(sv_block)(sv_model_ws *ws, int64_t l, int64_t T)
{
    const sv_model *m = ws->m;
    const sv_model_cfg *c = &m->cfg;
    const sv_layer *L = &m->layers[l];
    const int64_t d = c->d_model, n = T * d;
    REAL *x = ws->x, *ao = ws->ao, *mo = ws->mo;
    FN(norm)(c, &L->ln_attn, x, ws->h, T, ws->threads);
    FN(attention)(ws, l, T);
    if (c->post_norms) {
        FN(norm)(c, &L->ln_attn_post, ao, ws->tmp, T, ws->threads);
        memcpy(ao, ws->tmp, (size_t)n * sizeof(REAL));
    }
    if (!c->parallel_residual)
        for (int64_t i = 0; i < n; i++) x[i] = x[i] + ao[i];
    FN(norm)(c, &L->ln_mlp, x, ws->h, T, ws->threads);
    FN(mlp)(ws, L, T);
    if (c->post_norms) {
        FN(norm)(c, &L->ln_mlp_post, mo, ws->tmp, T, ws->threads);
        memcpy(mo, ws->tmp, (size_t)n * sizeof(REAL));
    }
    if (c->parallel_residual) /* NeoX: mlp_output + attn_output + hidden_states */
        for (int64_t i = 0; i < n; i++) x[i] = (mo[i] + ao[i]) + x[i];
    else
        for (int64_t i = 0; i < n; i++) x[i] = x[i] + mo[i];
}

static void FN(embed)(sv_model_ws *ws, const int32_t *ids, int64_t T)
{
    const sv_model *m = ws->m;
    const int64_t d = m->cfg.d_model;
    const REAL *E = m->embed, *P = m->pos_embed;
    const REAL sc = (REAL)sqrt((double)d); /* Gemma: sqrt(hidden) rounded to the compute dtype */
    REAL *x = ws->x;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < d; i++) {
            REAL v = E[(int64_t)ids[t] * d + i];
            if (m->cfg.embed_scale) v = v * sc;
            if (P) v = v + P[t * d + i];
            x[t * d + i] = v;
        }
    if (m->cfg.rotary_dim) FN(rope_tables)(m, ws->cosb, ws->sinb, T);
}

/* Blocks 0..(last hook's layer), copying each hook's value on the way. */
static void FN(prefix)(sv_model_ws *ws, const int32_t *ids, int64_t T, int nh, const sv_hook *hk, void *const *out)
{
    const sv_model *m = ws->m;
    const size_t bytes = (size_t)(T * m->cfg.d_model) * sizeof(REAL);
    int64_t last = 0;
    for (int i = 0; i < nh; i++) last = hk[i].layer > last ? hk[i].layer : last;
    FN(embed)(ws, ids, T);
    for (int64_t l = 0; l <= last; l++) {
        for (int i = 0; i < nh; i++)
            if (hk[i].layer == l && hk[i].kind == SV_HOOK_RESID_PRE) memcpy(out[i], ws->x, bytes);
        int need = 0;
        for (int i = 0; i < nh; i++) need |= hk[i].layer == l && hk[i].kind != SV_HOOK_RESID_PRE;
        if (!need && l == last) break; /* only resid_pre hooks here: the block itself is not needed */
        m->fam->block[sizeof(REAL) == 8](ws, l, T);
        for (int i = 0; i < nh; i++) {
            if (hk[i].layer != l) continue;
            if (hk[i].kind == SV_HOOK_RESID_POST) memcpy(out[i], ws->x, bytes);
            if (hk[i].kind == SV_HOOK_ATTN_OUT) memcpy(out[i], ws->ao, bytes);
            if (hk[i].kind == SV_HOOK_MLP_OUT) memcpy(out[i], ws->mo, bytes);
        }
    }
}

static void FN(suffix)(sv_model_ws *ws, sv_hook hk, const REAL *resid, int64_t T, REAL *normed)
{
    const sv_model *m = ws->m;
    const int64_t n = T * m->cfg.d_model;
    memcpy(ws->x, resid, (size_t)n * sizeof(REAL));
    if (m->cfg.rotary_dim) FN(rope_tables)(m, ws->cosb, ws->sinb, T);
    for (int64_t l = hk.kind == SV_HOOK_RESID_PRE ? hk.layer : hk.layer + 1; l < m->cfg.n_layers; l++)
        m->fam->block[sizeof(REAL) == 8](ws, l, T);
    FN(norm)(&m->cfg, &m->ln_f, ws->x, normed, T, ws->threads);
}

static int FN(logit_tiles)(sv_model_ws *ws, int ns, const void *const *normed, int64_t T, sv_logit_tile_fn fn,
                           void *ctx)
{
    const sv_model *m = ws->m;
    const int64_t d = m->cfg.d_model, V = m->cfg.vocab;
    const REAL cap = (REAL)m->cfg.final_softcap;
    const void *tiles[ns > 0 ? ns : 1];
    const int64_t VT = ws->vtile > 0 && ws->vtile < SV_MODEL_VTILE ? ws->vtile : SV_MODEL_VTILE; /* buffers hold SV_MODEL_VTILE */
    for (int64_t v0 = 0; v0 < V; v0 += VT) {
        const int64_t vt = V - v0 < VT ? V - v0 : VT;
        const sv_lin U = {(REAL *)m->unembed + v0 * d, NULL, d, vt, 1};
        for (int s = 0; s < ns; s++) {
            REAL *y = (REAL *)ws->tiles + (int64_t)s * ws->max_T * VT;
            FN(linear)(ws, &U, normed[s], d, T, y, vt);
            if (cap > 0) /* Gemma-2: cap * tanh(z / cap) */
                for (int64_t i = 0; i < T * vt; i++) y[i] = (REAL)tanh((double)(y[i] / cap)) * cap;
            tiles[s] = y;
        }
        if (fn(ctx, v0, vt, T, tiles)) return 1;
    }
    return 0;
}

/* Online statistics of one tile for every position (parallel over
 * positions; each position's tiles arrive in vocabulary order). */
static void FN(acc_tile)(sv_lm_acc *a, const REAL *z, const REAL *zr, int64_t v0, int64_t vt, const int32_t *targets,
                         int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t t = 0; t < a->T; t++) {
        const REAL *zt = z + t * vt;
        double tm = -INFINITY;
        for (int64_t j = 0; j < vt; j++)
            if (zt[j] > tm) tm = zt[j];
        if (tm > a->mx[t]) {
            a->se[t] *= exp(a->mx[t] - tm);
            a->mx[t] = tm;
        }
        double s = 0;
        for (int64_t j = 0; j < vt; j++) s += exp((double)zt[j] - a->mx[t]);
        a->se[t] += s;
        if (targets && targets[t] >= v0 && targets[t] < v0 + vt) a->tgt[t] = zt[targets[t] - v0];
        if (!a->kl) continue;
        const REAL *rt = zr + t * vt;
        double rm = -INFINITY;
        for (int64_t j = 0; j < vt; j++)
            if (rt[j] > rm) rm = rt[j];
        if (rm > a->rmx[t]) {
            const double f = exp(a->rmx[t] - rm);
            a->rse[t] *= f;
            a->ks[t] *= f;
            a->rmx[t] = rm;
        }
        double rs = 0, ks = 0;
        for (int64_t j = 0; j < vt; j++) {
            const double p = exp((double)rt[j] - a->rmx[t]);
            rs += p;
            ks += p * ((double)rt[j] - (double)zt[j]);
        }
        a->rse[t] += rs;
        a->ks[t] += ks;
    }
}

/* The GEMMs of a suffix from layer 0 for ns streams alone (the same tiles,
 * threads and shapes; no attention, norms or softmax): the benchmark's
 * compute limit. Contents of the buffers are whatever they hold. */
static void FN(gemm_only)(sv_model_ws *ws, int64_t T, int ns, int unembed)
{
    const sv_model *m = ws->m;
    const sv_model_cfg *c = &m->cfg;
    const int64_t d = c->d_model, f = c->d_ff, hq = c->n_heads * c->head_dim, hk = c->n_kv_heads * c->head_dim;
    for (int s = 0; s < ns; s++) {
        for (int64_t l = 0; l < c->n_layers; l++) {
            const sv_layer *L = &m->layers[l];
            if (L->qkv.w) {
                FN(linear)(ws, &L->qkv, ws->h, d, T, ws->tmp, 3 * d);
            } else {
                FN(linear)(ws, &L->q, ws->h, d, T, ws->tmp, hq + 2 * hk);
                FN(linear)(ws, &L->k, ws->h, d, T, (REAL *)ws->tmp + hq, hq + 2 * hk);
                FN(linear)(ws, &L->v, ws->h, d, T, (REAL *)ws->tmp + hq + hk, hq + 2 * hk);
            }
            FN(linear)(ws, &L->o, ws->att, hq, T, ws->ao, d);
            if (c->gated_mlp) {
                FN(linear)(ws, &L->gate, ws->h, d, T, ws->f1, f);
                FN(linear)(ws, &L->up, ws->h, d, T, ws->f2, f);
            } else {
                FN(linear)(ws, &L->fc, ws->h, d, T, ws->f1, f);
            }
            FN(linear)(ws, &L->down, ws->f1, f, T, ws->mo, d);
        }
        const int64_t V = unembed ? c->vocab : 0, VT = ws->vtile > 0 && ws->vtile < SV_MODEL_VTILE ? ws->vtile : SV_MODEL_VTILE;
        for (int64_t v0 = 0; v0 < V; v0 += VT) {
            const int64_t vt = V - v0 < VT ? V - v0 : VT;
            const sv_lin U = {(REAL *)m->unembed + v0 * d, NULL, d, vt, 1};
            FN(linear)(ws, &U, ws->h, d, T, ws->tiles, vt);
        }
    }
}

/* One tile for a reference stream a[0] (z[0]) and streams a[1..n-1] with
 * KL against it: the reference's exp(zr - running max) row is computed
 * once per position and shared, with the same operations and order as
 * acc_tile, so every stream's numbers are bitwise those of acc_tile. */
static void FN(acc_tiles)(sv_lm_acc *const *a, int n, const REAL *const *z, int64_t v0, int64_t vt,
                          const int32_t *targets, int threads, double *rowbuf)
{
    const int64_t T = a[0]->T;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t t = 0; t < T; t++) {
        double *er = rowbuf + (int64_t)omp_get_thread_num() * vt;
        for (int s = 0; s < n; s++) {
            sv_lm_acc *A = a[s];
            const REAL *zt = z[s] + t * vt;
            double tm = -INFINITY;
            for (int64_t j = 0; j < vt; j++)
                if (zt[j] > tm) tm = zt[j];
            if (tm > A->mx[t]) {
                A->se[t] *= exp(A->mx[t] - tm);
                A->mx[t] = tm;
            }
            double sum = 0;
            if (s == 0) { /* the reference: keep its exps for the KL sums */
                for (int64_t j = 0; j < vt; j++) sum += er[j] = exp((double)zt[j] - A->mx[t]);
            } else {
                for (int64_t j = 0; j < vt; j++) sum += exp((double)zt[j] - A->mx[t]);
            }
            A->se[t] += sum;
            if (targets && targets[t] >= v0 && targets[t] < v0 + vt) A->tgt[t] = zt[targets[t] - v0];
            if (!A->kl || s == 0) continue;
            /* rmx/rse follow the reference exactly as acc_tile computes them,
             * so they equal a[0]'s mx/se and er[] holds exp(zr - rmx). */
            const REAL *rt = z[0] + t * vt;
            if (a[0]->mx[t] > A->rmx[t]) {
                const double f = exp(A->rmx[t] - a[0]->mx[t]);
                A->rse[t] *= f;
                A->ks[t] *= f;
                A->rmx[t] = a[0]->mx[t];
            }
            double rs = 0, ks = 0;
            for (int64_t j = 0; j < vt; j++) {
                rs += er[j];
                ks += er[j] * ((double)rt[j] - (double)zt[j]);
            }
            A->rse[t] += rs;
            A->ks[t] += ks;
        }
    }
}

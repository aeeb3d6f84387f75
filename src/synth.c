/* Synthetic sweep for the demo and the tests.
 *
 * Activations imitate a residual stream: a mean offset, a sparse mix of
 * ground-truth (GT) directions with Zipf-like frequencies, small noise, two
 * "massive activation" dimensions, and a BOS token of huge norm at the start
 * of every sequence (masked through special_token_ids). The OOS stores shift
 * these statistics. SAE encoders are noisy copies of GT directions with
 * biases set from pre-activation quantiles to hit an L0 target; decoders are
 * least-squares fitted on in-sample tokens, so reconstruction is genuinely
 * learned rather than planted. Everything follows from the seed. */
#include "saeval/synth.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/output.h"
#include "saeval/safetensors.h"
#include "saeval/store.h"

#define D_IN 128
#define N_GT 1024
#define N_GT_IN 896 /* GT features used in-sample; the rest appear only OOS */
#define BOS_ID 1
#define MASSIVE_A 17
#define MASSIVE_B 93
#define N_TRAIN 6000

/* xoshiro256** seeded by splitmix64. */
typedef struct { uint64_t s[4]; } sv_rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(sv_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rng_next(sv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

static double rng_unif(sv_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static int64_t rng_int(sv_rng *r, int64_t lo, int64_t hi) { return lo + (int64_t)(rng_unif(r) * (double)(hi - lo)); }

static double rng_normal(sv_rng *r)
{
    double u = rng_unif(r), v = rng_unif(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void unit_random(sv_rng *r, double *v, int d)
{
    double n = 0;
    for (int i = 0; i < d; i++) { v[i] = rng_normal(r); n += v[i] * v[i]; }
    n = sqrt(n);
    for (int i = 0; i < d; i++) v[i] /= n;
}

static void shuffle(sv_rng *r, int *p, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_int(r, 0, i + 1), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
}

/* How one store's tokens are drawn. */
typedef struct {
    const char *name, *file;
    sv_store_dtype dtype;
    int chunked, use_context;
    int64_t target_tokens, context;
    int64_t min_len, max_len;
    double mag_sigma, mag_scale, noise, mean_shift;
    double frac_novel;      /* share of active features drawn from the OOS-only GT set */
    double reshuffle;       /* fraction of the frequency ranking permuted */
    int n_active_lo, n_active_hi;
} sv_store_plan;

typedef struct {
    double *gt;             /* [N_GT][D_IN] unit rows */
    double *mean;           /* [D_IN] */
    double *bos;            /* [D_IN] direction of the BOS outlier */
    int rank_to_gt[N_GT_IN];
    double zipf_cdf[N_GT_IN];
} sv_world;

static int zipf_draw(const sv_world *w, sv_rng *r)
{
    double u = rng_unif(r);
    int lo = 0, hi = N_GT_IN - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (w->zipf_cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Fill x [n][D_IN] (float) for plan p; returns offsets and ids. */
static sv_rc gen_tokens(const sv_world *w, const sv_store_plan *p, sv_rng *r, float **xo, int64_t **offo,
                        int64_t *n_seq_o, int64_t **ido, int64_t *n_tok_o)
{
    int64_t cap_seq = p->target_tokens / (p->use_context ? p->context : p->min_len) + 2;
    int64_t *off = sv_malloc((size_t)(cap_seq + 1) * sizeof *off);
    if (!off) return SV_EINTERNAL;
    int64_t ns = 0, nt = 0;
    off[0] = 0;
    while (nt < p->target_tokens && ns < cap_seq) {
        int64_t len = p->use_context ? p->context : rng_int(r, p->min_len, p->max_len + 1);
        nt += len;
        off[++ns] = nt;
    }
    float *x = sv_malloc((size_t)(nt * D_IN) * sizeof *x);
    int64_t *ids = sv_malloc((size_t)nt * sizeof *ids);
    if (!x || !ids) { free(off); free(x); free(ids); return SV_EINTERNAL; }

    int perm[N_GT_IN];
    for (int i = 0; i < N_GT_IN; i++) perm[i] = w->rank_to_gt[i];
    /* A different frequency ranking: permute a fraction of the ranks. */
    int nshuf = (int)(p->reshuffle * N_GT_IN);
    for (int i = 0; i < nshuf; i++) {
        int a = (int)rng_int(r, 0, N_GT_IN), b = (int)rng_int(r, 0, N_GT_IN), t = perm[a];
        perm[a] = perm[b];
        perm[b] = t;
    }
    double mean[D_IN], shift[D_IN];
    unit_random(r, shift, D_IN);
    for (int i = 0; i < D_IN; i++) mean[i] = w->mean[i] + p->mean_shift * shift[i];

    double v[D_IN];
    for (int64_t s = 0; s < ns; s++) {
        for (int64_t t = off[s]; t < off[s + 1]; t++) {
            for (int i = 0; i < D_IN; i++) v[i] = mean[i] + p->noise * rng_normal(r);
            if (t == off[s]) {
                /* BOS: a huge, nearly fixed vector, as in real models. */
                for (int i = 0; i < D_IN; i++) v[i] += 300.0 * w->bos[i];
                ids[t] = BOS_ID;
            } else {
                int na = (int)rng_int(r, p->n_active_lo, p->n_active_hi + 1);
                for (int a = 0; a < na; a++) {
                    int g = rng_unif(r) < p->frac_novel ? N_GT_IN + (int)rng_int(r, 0, N_GT - N_GT_IN)
                                                        : perm[zipf_draw(w, r)];
                    double mag = p->mag_scale * exp(p->mag_sigma * rng_normal(r));
                    const double *gv = w->gt + (size_t)g * D_IN;
                    for (int i = 0; i < D_IN; i++) v[i] += mag * gv[i];
                }
                ids[t] = rng_int(r, 2, 50000);
            }
            /* Massive activations: large on every token, nearly constant. */
            v[MASSIVE_A] += 12.0 + 0.5 * rng_normal(r);
            v[MASSIVE_B] -= 9.0 + 0.5 * rng_normal(r);
            for (int i = 0; i < D_IN; i++) x[t * D_IN + i] = (float)v[i];
        }
    }
    *xo = x;
    *offo = off;
    *n_seq_o = ns;
    *ido = ids;
    *n_tok_o = nt;
    return SV_OK;
}

/* SAE recipe. */
typedef struct {
    const char *name;
    sv_arch arch;
    int d_sae, k;
    double l0_target;
    int expected_avg;       /* normalize_activations = expected_average_only_in */
} sv_sae_plan;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Cholesky solve of A X = B in place; A [m][m] SPD, B [m][n]. */
static sv_rc chol_solve(double *A, double *B, int m, int n)
{
    for (int j = 0; j < m; j++) {
        double s = A[(size_t)j * m + j];
        for (int k = 0; k < j; k++) s -= A[(size_t)j * m + k] * A[(size_t)j * m + k];
        if (s <= 0) return sv_fail(SV_EINTERNAL, "synth: decoder fit is not positive definite");
        double L = sqrt(s);
        A[(size_t)j * m + j] = L;
        for (int i = j + 1; i < m; i++) {
            double t = A[(size_t)i * m + j];
            for (int k = 0; k < j; k++) t -= A[(size_t)i * m + k] * A[(size_t)j * m + k];
            A[(size_t)i * m + j] = t / L;
        }
    }
    for (int c = 0; c < n; c++) {
        for (int i = 0; i < m; i++) { /* L y = b */
            double t = B[(size_t)i * n + c];
            for (int k = 0; k < i; k++) t -= A[(size_t)i * m + k] * B[(size_t)k * n + c];
            B[(size_t)i * n + c] = t / A[(size_t)i * m + i];
        }
        for (int i = m - 1; i >= 0; i--) { /* L^T x = y */
            double t = B[(size_t)i * n + c];
            for (int k = i + 1; k < m; k++) t -= A[(size_t)k * m + i] * B[(size_t)k * n + c];
            B[(size_t)i * n + c] = t / A[(size_t)i * m + i];
        }
    }
    return SV_OK;
}

static sv_rc write_text(const char *path, const char *text)
{
    return sv_write_atomic(path, text, strlen(text));
}

/* Build, fit and write one SAE. X: [n][D_IN] training tokens (no BOS). */
static sv_rc make_sae(const char *dir, const sv_sae_plan *sp, const sv_world *w, const double *X, int n,
                      double mean_norm, sv_rng *r)
{
    const int m = sp->d_sae, d = D_IN;
    sv_rc rc = SV_OK;
    double s = sp->expected_avg ? sqrt((double)d) / mean_norm : 1.0;
    double *Xs = sv_malloc((size_t)n * d * sizeof(double));
    double *We = sv_malloc((size_t)d * m * sizeof(double));
    double *be = sv_calloc((size_t)m, sizeof(double));
    double *Wd = sv_malloc((size_t)m * d * sizeof(double));
    double *bd = sv_calloc((size_t)d, sizeof(double));
    double *H = sv_malloc((size_t)n * m * sizeof(double));
    double *F = sv_calloc((size_t)n * m, sizeof(double));
    double *th = sv_calloc((size_t)m, sizeof(double));
    double *rmag = sv_calloc((size_t)m, sizeof(double));
    double *bmag = sv_calloc((size_t)m, sizeof(double));
    double *G = sv_malloc((size_t)m * m * sizeof(double));
    double *hs = sv_malloc((size_t)n * m * sizeof(double));
    int *dead = sv_calloc((size_t)m, sizeof(int));
    char path[4096];
    if (!Xs || !We || !be || !Wd || !bd || !H || !F || !th || !rmag || !bmag || !G || !hs || !dead) {
        rc = SV_EINTERNAL;
        goto out;
    }
    /* Work in the SAE's input space (scaled when expected_average_only_in). */
    for (size_t i = 0; i < (size_t)n * d; i++) Xs[i] = s * X[i];
    for (int i = 0; i < d; i++) {
        double acc = 0;
        for (int t = 0; t < n; t++) acc += Xs[(size_t)t * d + i];
        bd[i] = acc / n;
    }
    for (size_t t = 0; t < (size_t)n; t++)
        for (int i = 0; i < d; i++) Xs[t * d + i] -= bd[i];

    /* Encoder columns: the most frequent GT features first, a few
     * duplicates (absorption-like pairs), ~2% dead latents. */
    double col[D_IN];
    for (int j = 0; j < m; j++) {
        int g;
        if (j % 50 == 49) g = w->rank_to_gt[(int)rng_int(r, 0, 20)];      /* duplicate of a top feature */
        else g = w->rank_to_gt[j < N_GT_IN ? j : (int)rng_int(r, 0, N_GT_IN)];
        dead[j] = (j % 47 == 46);
        if (dead[j]) unit_random(r, col, d);
        else {
            double nn = 0;
            for (int i = 0; i < d; i++) {
                col[i] = w->gt[(size_t)g * d + i] + 0.15 * rng_normal(r) / sqrt((double)d);
                nn += col[i] * col[i];
            }
            for (int i = 0; i < d; i++) col[i] /= sqrt(nn);
        }
        for (int i = 0; i < d; i++) We[(size_t)i * m + j] = col[i];
    }
    /* Pre-activations without bias; one quantile sets every latent's bias
     * so the mean L0 hits the target. */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, m, d, 1.0, Xs, d, We, m, 0.0, H, m);
    memcpy(hs, H, (size_t)n * m * sizeof(double));
    qsort(hs, (size_t)n * m, sizeof(double), cmp_dbl);
    double frac = sp->l0_target / (double)m;
    double q = hs[(size_t)((1.0 - frac) * ((double)n * m - 1))];
    if (q < 1e-3) q = 1e-3;
    for (int j = 0; j < m; j++) {
        switch (sp->arch) {
        case SV_ARCH_STANDARD: be[j] = dead[j] ? -1e3 : -q; break;
        case SV_ARCH_JUMPRELU: be[j] = dead[j] ? -1e3 : 0.0; th[j] = q * (0.9 + 0.2 * rng_unif(r)); break;
        case SV_ARCH_TOPK: be[j] = dead[j] ? -1e3 : 0.0; break;
        case SV_ARCH_GATED:
            be[j] = dead[j] ? -1e3 : -q; /* becomes b_gate */
            rmag[j] = 0.1 * rng_normal(r);
            bmag[j] = 0.2 * q;
            break;
        }
    }
    /* Codes on the training tokens, with the forward semantics. */
    for (int t = 0; t < n; t++) {
        const double *h = H + (size_t)t * m;
        double *f = F + (size_t)t * m;
        if (sp->arch == SV_ARCH_TOPK) {
            for (int c = 0; c < sp->k; c++) { /* k passes: small k, small m */
                int best = -1;
                for (int j = 0; j < m; j++)
                    if (f[j] == 0 && h[j] + be[j] > 0 && (best < 0 || h[j] + be[j] > h[best] + be[best])) best = j;
                if (best < 0) break;
                f[best] = h[best] + be[best];
            }
        } else {
            for (int j = 0; j < m; j++) {
                double p = h[j] + be[j];
                if (sp->arch == SV_ARCH_STANDARD) f[j] = p > 0 ? p : 0;
                else if (sp->arch == SV_ARCH_JUMPRELU) f[j] = p > th[j] ? p : 0;
                else if (p > 0) { double mg = h[j] * exp(rmag[j]) + bmag[j]; f[j] = mg > 0 ? mg : 0; }
            }
        }
    }
    /* Ridge least squares: (F'F + lambda I) W_dec = F'(X - b_dec). */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, n, 1.0, F, m, F, m, 0.0, G, m);
    double tr = 0;
    for (int j = 0; j < m; j++) tr += G[(size_t)j * m + j];
    for (int j = 0; j < m; j++) G[(size_t)j * m + j] += 1e-3 * tr / m + 1e-9;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, d, n, 1.0, F, m, Xs, d, 0.0, Wd, d);
    if ((rc = chol_solve(G, Wd, m, d)) != SV_OK) goto out;
    for (int j = 0; j < m; j++) { /* a latent that never fired keeps a random unit row */
        double nn = 0;
        for (int i = 0; i < d; i++) nn += Wd[(size_t)j * d + i] * Wd[(size_t)j * d + i];
        if (nn < 1e-12) unit_random(r, Wd + (size_t)j * d, d);
    }

    snprintf(path, sizeof path, "%s/saes/%s", dir, sp->name);
    if ((rc = sv_mkdir_p(path)) != SV_OK) goto out;
    {
        sv_st_wtensor ts[8];
        int nt = 0;
        ts[nt++] = (sv_st_wtensor){"W_enc", SV_DT_F32, 2, {d, m}, We};
        if (sp->arch == SV_ARCH_GATED) {
            ts[nt++] = (sv_st_wtensor){"b_gate", SV_DT_F32, 1, {m}, be};
            ts[nt++] = (sv_st_wtensor){"r_mag", SV_DT_F32, 1, {m}, rmag};
            ts[nt++] = (sv_st_wtensor){"b_mag", SV_DT_F32, 1, {m}, bmag};
        } else {
            ts[nt++] = (sv_st_wtensor){"b_enc", SV_DT_F32, 1, {m}, be};
        }
        ts[nt++] = (sv_st_wtensor){"W_dec", SV_DT_F32, 2, {m, d}, Wd};
        ts[nt++] = (sv_st_wtensor){"b_dec", SV_DT_F32, 1, {d}, bd};
        if (sp->arch == SV_ARCH_JUMPRELU) ts[nt++] = (sv_st_wtensor){"threshold", SV_DT_F32, 1, {m}, th};
        snprintf(path, sizeof path, "%s/saes/%s/sae_weights.safetensors", dir, sp->name);
        if ((rc = sv_st_write(path, ts, nt)) != SV_OK) goto out;
    }
    {
        char cfg[1024], kline[64] = "";
        if (sp->arch == SV_ARCH_TOPK) snprintf(kline, sizeof kline, "  \"k\": %d,\n", sp->k);
        snprintf(cfg, sizeof cfg,
                 "{\n  \"architecture\": \"%s\",\n  \"d_in\": %d,\n  \"d_sae\": %d,\n%s"
                 "  \"apply_b_dec_to_input\": true,\n  \"normalize_activations\": \"%s\",\n"
                 "  \"dtype\": \"float32\",\n  \"model_name\": \"synthetic-lm\",\n"
                 "  \"hook_name\": \"blocks.6.hook_resid_post\",\n  \"context_size\": 128\n}\n",
                 sv_arch_name(sp->arch), d, m, kline,
                 sp->expected_avg ? "expected_average_only_in" : "none");
        snprintf(path, sizeof path, "%s/saes/%s/cfg.json", dir, sp->name);
        if ((rc = write_text(path, cfg)) != SV_OK) goto out;
    }
    if (sp->expected_avg) {
        char js[128];
        snprintf(js, sizeof js, "{\"scaling_factor\": %.17g}\n", s);
        snprintf(path, sizeof path, "%s/saes/%s/activation_scaler.json", dir, sp->name);
        rc = write_text(path, js);
    }
out:
    free(Xs); free(We); free(be); free(Wd); free(bd); free(H); free(F); free(th);
    free(rmag); free(bmag); free(G); free(hs); free(dead);
    return rc;
}

static const sv_store_plan store_plans[] = {
    /* name, file, dtype, chunked, use_context, tokens, context, min/max len,
     * mag sigma/scale, noise, mean shift, novel, reshuffle, active lo/hi */
    {"in_sample", "in_sample.h5", SV_STORE_F32, 0, 0, 16000, 0, 40, 160, 0.5, 1.0, 0.12, 0.0, 0.0, 0.0, 20, 40},
    {"oos_domain", "oos_domain.h5", SV_STORE_BF16, 1, 1, 8192, 128, 0, 0, 0.5, 1.0, 0.12, 1.5, 0.2, 0.5, 20, 40},
    {"oos_task", "oos_task.h5", SV_STORE_F16, 1, 0, 8192, 0, 48, 144, 0.8, 1.2, 0.3, 0.5, 0.05, 0.1, 20, 40},
};

static const sv_sae_plan sae_plans[] = {
    {"std_w512", SV_ARCH_STANDARD, 512, 0, 60, 0},
    {"std_w1024", SV_ARCH_STANDARD, 1024, 0, 90, 0},
    {"topk_k32_w512", SV_ARCH_TOPK, 512, 32, 0, 0},
    {"topk_k64_w1024", SV_ARCH_TOPK, 1024, 64, 0, 1},
    {"jumprelu_w512", SV_ARCH_JUMPRELU, 512, 0, 40, 0},
    {"gated_w512", SV_ARCH_GATED, 512, 0, 50, 0},
};

sv_rc sv_synth(const char *dir, uint64_t seed)
{
    sv_rng r;
    sv_world w;
    sv_rc rc = SV_OK;
    char path[4096];
    double *train = NULL;
    int n_train = 0;
    double norm_sum = 0;
    memset(&w, 0, sizeof w);
    rng_seed(&r, seed);
    w.gt = sv_malloc((size_t)N_GT * D_IN * sizeof(double));
    w.mean = sv_malloc(D_IN * sizeof(double));
    w.bos = sv_malloc(D_IN * sizeof(double));
    train = sv_malloc((size_t)N_TRAIN * D_IN * sizeof(double));
    if (!w.gt || !w.mean || !w.bos || !train) { rc = SV_EINTERNAL; goto out; }
    for (int g = 0; g < N_GT; g++) unit_random(&r, w.gt + (size_t)g * D_IN, D_IN);
    unit_random(&r, w.mean, D_IN);
    for (int i = 0; i < D_IN; i++) w.mean[i] *= 3.0;
    unit_random(&r, w.bos, D_IN);
    for (int i = 0; i < N_GT_IN; i++) w.rank_to_gt[i] = i;
    shuffle(&r, w.rank_to_gt, N_GT_IN);
    {
        double z = 0;
        for (int i = 0; i < N_GT_IN; i++) z += pow(i + 10.0, -1.1);
        double c = 0;
        for (int i = 0; i < N_GT_IN; i++) {
            c += pow(i + 10.0, -1.1) / z;
            w.zipf_cdf[i] = c;
        }
        w.zipf_cdf[N_GT_IN - 1] = 1.0;
    }
    snprintf(path, sizeof path, "%s/stores", dir);
    if ((rc = sv_mkdir_p(path)) != SV_OK) goto out;

    for (size_t sidx = 0; sidx < sizeof store_plans / sizeof *store_plans; sidx++) {
        const sv_store_plan *p = &store_plans[sidx];
        float *x = NULL;
        int64_t *off = NULL, *ids = NULL, ns = 0, nt = 0;
        if ((rc = gen_tokens(&w, p, &r, &x, &off, &ns, &ids, &nt)) != SV_OK) goto out;
        if (sidx == 0) { /* in-sample training tokens for the decoder fits */
            for (int64_t t = 0; t < nt && n_train < N_TRAIN; t++) {
                if (ids[t] == BOS_ID) continue;
                double nn = 0;
                for (int i = 0; i < D_IN; i++) {
                    train[(size_t)n_train * D_IN + i] = x[t * D_IN + i];
                    nn += (double)x[t * D_IN + i] * x[t * D_IN + i];
                }
                norm_sum += sqrt(nn);
                n_train++;
            }
        }
        int64_t special[1] = {BOS_ID};
        sv_store_wopts o;
        memset(&o, 0, sizeof o);
        o.dtype = p->dtype;
        o.chunked = p->chunked;
        o.chunk_rows = 256;
        o.chunk_cols = 64;
        if (p->use_context) o.context_size = p->context;
        else { o.seq_offsets = off; o.n_seq = ns; }
        o.token_ids = ids;
        o.special_ids = special;
        o.n_special = 1;
        o.model_name = "synthetic-lm";
        o.hook_name = "blocks.6.hook_resid_post";
        o.dataset_name = p->name;
        snprintf(path, sizeof path, "%s/stores/%s", dir, p->file);
        rc = sv_store_write(path, x, nt, D_IN, &o);
        free(x); free(off); free(ids);
        if (rc != SV_OK) goto out;
    }
    for (size_t k = 0; k < sizeof sae_plans / sizeof *sae_plans; k++)
        if ((rc = make_sae(dir, &sae_plans[k], &w, train, n_train, norm_sum / n_train, &r)) != SV_OK) goto out;

    {
        char cfg[2048];
        int n = snprintf(cfg, sizeof cfg, "{\n  \"output_dir\": \"results\",\n  \"saes\": [");
        for (size_t k = 0; k < sizeof sae_plans / sizeof *sae_plans; k++)
            n += snprintf(cfg + n, sizeof cfg - (size_t)n, "%s\n    \"saes/%s\"", k ? "," : "", sae_plans[k].name);
        snprintf(cfg + n, sizeof cfg - (size_t)n,
                 "\n  ],\n  \"datasets\": [\n"
                 "    {\"name\": \"in_sample\", \"path\": \"stores/in_sample.h5\", \"role\": \"in_sample\"},\n"
                 "    {\"name\": \"oos_domain\", \"path\": \"stores/oos_domain.h5\", \"role\": \"oos\", \"shift\": \"domain\"},\n"
                 "    {\"name\": \"oos_task\", \"path\": \"stores/oos_task.h5\", \"role\": \"oos\", \"shift\": \"task\"}\n"
                 "  ],\n  \"exclude_token_ids\": [],\n  \"legacy_batch_sequences\": 16,\n"
                 "  \"precision\": \"float32\"\n}\n");
        snprintf(path, sizeof path, "%s/config.json", dir);
        rc = write_text(path, cfg);
    }
out:
    free(w.gt); free(w.mean); free(w.bos); free(train);
    return rc;
}

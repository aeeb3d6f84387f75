/* Synthetic sweep: activation stores that look like residual streams, and
 * SAEs of the four architectures whose decoders are least-squares fitted on
 * the in-sample store, plus a run config over all of it.
 *
 * Generative model of one (non-BOS) token:
 *   x = mean + massive(17, 93) + sum_{f in S} m_f g_f + noise
 * where g_f are ground-truth (GT) unit directions, S holds 20-40 features
 * drawn from a Zipf law over a per-store frequency ranking, and m_f > 0 is
 * log-normal. BOS tokens (one per sequence, token id 1) have a huge norm.
 *
 * Everything is computed with our own loops in double (no BLAS, no libc
 * rand) so the bytes written depend on the seed only. */
#include "saeval/synth.h"
#include "saeval/config.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "synthwrite.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "saeval/error.h"
#include "saeval/safetensors.h"
#include "saeval/store.h"

#define D_IN 128
#define N_GT 1024     /* GT features used in-sample */
#define N_NOVEL 128   /* extra GT directions that only oos_domain uses */
#define DIM_A 17      /* massive-activation dimensions */
#define DIM_B 93
#define BOS_ID 1
#define VOCAB 50000
#define MODEL_NAME "synthetic-lm"
#define HOOK_NAME "blocks.6.hook_resid_post"

/* ---------------------------------------------------------------- PRNG */

/* xoshiro256** seeded through splitmix64; one independent stream per
 * component so that changing one part of the generator leaves the others. */
typedef struct { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_init(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in the open interval (0, 1). */
static double rng_unif(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53; }

/* Uniform integer in [0, n); the bias of the multiply-shift is < 2^-40 here. */
static int64_t rng_below(rng *r, int64_t n) { return (int64_t)(rng_unif(r) * (double)n); }

/* Standard normal by Box-Muller (one value per pair: simpler, no state). */
static double rng_normal(rng *r)
{
    double u = rng_unif(r), v = rng_unif(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void normalize(double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i] * v[i];
    s = 1.0 / sqrt(s);
    for (int i = 0; i < n; i++) v[i] *= s;
}

static void random_unit(rng *r, double *v, int n)
{
    for (int i = 0; i < n; i++) v[i] = rng_normal(r);
    normalize(v, n);
}

static void shuffle_int(rng *r, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, i + 1), t = a[i];
        a[i] = a[j]; a[j] = t;
    }
}

/* ---------------------------------------------------------- the world */

typedef struct {
    double dirs[(N_GT + N_NOVEL) * D_IN]; /* unit rows */
    double feat_scale[N_GT + N_NOVEL];    /* per-feature typical magnitude */
    int rank_in[N_GT];                    /* rank of feature f in-sample (0 = most frequent) */
    double mean[D_IN];                    /* in-sample mean offset (massive dims included) */
    double bos[D_IN];                     /* BOS offset */
} world;

/* One store's generative statistics. */
typedef struct {
    const char *name, *dataset_name;
    sv_store_dtype dtype;
    int chunked;
    int64_t n_target;      /* about this many tokens */
    int64_t context_size;  /* > 0: fixed-length sequences, else variable 40-160 */
    double rank_jitter;    /* log-normal jitter of the in-sample frequency ranking */
    double novel_frac;     /* fraction of drawn features from the novel directions */
    double mag_mu, mag_sigma;
    double noise;
    double mean_shift;     /* norm of a constant shift added to the mean */
    uint64_t stream;
} store_spec;

static const store_spec STORES[3] = {
    {"in_sample", "synthetic-web-text", SV_STORE_F32, 0, 16000, 0,
     0.0, 0.0, 0.0, 0.45, 0.06, 0.0, 101},
    {"oos_domain", "synthetic-code", SV_STORE_BF16, 1, 8192, 128,
     1.2, 0.20, 0.0, 0.45, 0.06, 1.5, 102},
    {"oos_task", "synthetic-chat", SV_STORE_F16, 1, 8192, 0,
     0.0, 0.0, -0.3, 0.45, 0.24, 0.0, 103},
};

typedef struct {
    int64_t n, n_seq;
    float *x;            /* [n][D_IN] */
    int64_t *offsets;    /* [n_seq+1] */
    int64_t *tok;        /* [n] */
    unsigned char *bos;  /* [n] 1 at sequence starts */
} store_data;

static void store_data_free(store_data *s)
{
    free(s->x); free(s->offsets); free(s->tok); free(s->bos);
    memset(s, 0, sizeof *s);
}

static void make_world(world *w, uint64_t seed)
{
    rng r;
    rng_init(&r, seed, 1);
    for (int f = 0; f < N_GT + N_NOVEL; f++) {
        random_unit(&r, &w->dirs[(size_t)f * D_IN], D_IN);
        w->feat_scale[f] = exp(0.3 * rng_normal(&r));
    }
    int perm[N_GT];
    for (int f = 0; f < N_GT; f++) perm[f] = f;
    shuffle_int(&r, perm, N_GT);
    for (int k = 0; k < N_GT; k++) w->rank_in[perm[k]] = k;

    /* Mean: a modest random offset plus the two massive dimensions, about
     * 10-15x a typical coordinate (which is ~0.6). */
    random_unit(&r, w->mean, D_IN);
    for (int i = 0; i < D_IN; i++) w->mean[i] *= 3.0;
    w->mean[DIM_A] = 9.0;
    w->mean[DIM_B] = -7.5;
    /* BOS: mostly along the massive dimensions, norm ~ 60x a typical token. */
    random_unit(&r, w->bos, D_IN);
    for (int i = 0; i < D_IN; i++) w->bos[i] *= 150.0;
    w->bos[DIM_A] += 600.0;
    w->bos[DIM_B] -= 450.0;
}

static int cmp_key(const void *a, const void *b)
{
    const double *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* order[k] = feature at frequency rank k: the in-sample ranking, optionally
 * re-ranked by multiplying each rank by a log-normal factor. */
static sv_rc store_ranking(const world *w, rng *r, double jitter, int *order)
{
    double (*key)[2] = sv_malloc(sizeof(double[2]) * N_GT);
    if (!key) return SV_EINTERNAL;
    for (int f = 0; f < N_GT; f++) {
        key[f][0] = (w->rank_in[f] + 1.0) * exp(jitter * rng_normal(r));
        key[f][1] = f;
    }
    qsort(key, N_GT, sizeof *key, cmp_key);
    for (int k = 0; k < N_GT; k++) order[k] = (int)key[k][1];
    free(key);
    return SV_OK;
}

/* Zipf-like law over ranks: p(k) ~ (k + 8)^-1.1. cdf has n entries. */
static void zipf_cdf(double *cdf, int n)
{
    double s = 0;
    for (int k = 0; k < n; k++) cdf[k] = (s += pow(k + 8.0, -1.1));
    for (int k = 0; k < n; k++) cdf[k] /= s;
    cdf[n - 1] = 1.0;
}

static int sample_cdf(const double *cdf, int n, double u)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static sv_rc gen_store(const world *w, const store_spec *sp, uint64_t seed, store_data *out)
{
    memset(out, 0, sizeof *out);
    rng r;
    rng_init(&r, seed, sp->stream);

    /* Sequence layout first, so the token count is known. */
    int64_t cap = sp->n_target / 40 + 2;
    out->offsets = sv_malloc(sizeof(int64_t) * (size_t)(cap + 1));
    if (!out->offsets) return SV_EINTERNAL;
    int64_t n = 0, ns = 0;
    out->offsets[0] = 0;
    if (sp->context_size > 0) {
        for (; n + sp->context_size <= sp->n_target; n += sp->context_size) out->offsets[++ns] = n + sp->context_size;
    } else {
        for (;;) {
            int64_t len = 40 + rng_below(&r, 121);
            if (n + len > sp->n_target) break;
            n += len;
            out->offsets[++ns] = n;
        }
    }
    out->n = n;
    out->n_seq = ns;
    out->x = sv_malloc(sizeof(float) * (size_t)n * D_IN);
    out->tok = sv_malloc(sizeof(int64_t) * (size_t)n);
    out->bos = sv_calloc((size_t)n, 1);
    int order[N_GT];
    double cdf[N_GT], cdf_novel[N_NOVEL], shift[D_IN], x[D_IN];
    int stamp[N_GT + N_NOVEL];
    if (!out->x || !out->tok || !out->bos) { store_data_free(out); return SV_EINTERNAL; }
    for (int64_t s = 0; s < ns; s++) out->bos[out->offsets[s]] = 1;

    if (store_ranking(w, &r, sp->rank_jitter, order) != SV_OK) { store_data_free(out); return SV_EINTERNAL; }
    zipf_cdf(cdf, N_GT);
    zipf_cdf(cdf_novel, N_NOVEL);
    random_unit(&r, shift, D_IN);
    for (int i = 0; i < D_IN; i++) shift[i] = w->mean[i] + sp->mean_shift * shift[i];
    for (int f = 0; f < N_GT + N_NOVEL; f++) stamp[f] = -1;

    for (int64_t t = 0; t < n; t++) {
        for (int i = 0; i < D_IN; i++) x[i] = shift[i] + sp->noise * rng_normal(&r);
        if (out->bos[t]) {
            out->tok[t] = BOS_ID;
            for (int i = 0; i < D_IN; i++) x[i] += w->bos[i] * (1.0 + 0.02 * rng_normal(&r));
        } else {
            out->tok[t] = 2 + rng_below(&r, VOCAB - 2);
            /* The massive dimensions jitter a little around their mean. */
            x[DIM_A] += 0.4 * rng_normal(&r);
            x[DIM_B] += 0.4 * rng_normal(&r);
            int k = 20 + (int)rng_below(&r, 21);
            for (int a = 0; a < k; a++) {
                int f;
                do {
                    if (sp->novel_frac > 0 && rng_unif(&r) < sp->novel_frac)
                        f = N_GT + sample_cdf(cdf_novel, N_NOVEL, rng_unif(&r));
                    else
                        f = order[sample_cdf(cdf, N_GT, rng_unif(&r))];
                } while (stamp[f] == (int)t); /* without replacement */
                stamp[f] = (int)t;
                double m = w->feat_scale[f] * exp(sp->mag_mu + sp->mag_sigma * rng_normal(&r));
                const double *g = &w->dirs[(size_t)f * D_IN];
                for (int i = 0; i < D_IN; i++) x[i] += m * g[i];
            }
        }
        for (int i = 0; i < D_IN; i++) out->x[t * D_IN + i] = (float)x[i];
    }
    return SV_OK;
}

/* ------------------------------------------------------------- the SAEs */

typedef enum { A_STANDARD, A_TOPK, A_JUMPRELU, A_GATED } arch;
static const char *const ARCH_NAME[] = {"standard", "topk", "jumprelu", "gated"};

typedef struct {
    const char *name;
    arch a;
    int d_sae, k;
    int target_l0;   /* calibration target (not for topk) */
    int scaled;      /* normalize_activations = expected_average_only_in */
    uint64_t stream;
} sae_spec;

static const sae_spec SAES[] = {
    {"std_w512", A_STANDARD, 512, 0, 45, 0, 201},
    {"std_w1024", A_STANDARD, 1024, 0, 70, 0, 202},
    {"topk_k32_w512", A_TOPK, 512, 32, 0, 0, 203},
    {"topk_k64_w1024", A_TOPK, 1024, 64, 0, 1, 204},
    {"jumprelu_w512", A_JUMPRELU, 512, 0, 40, 0, 205},
    {"gated_w512", A_GATED, 512, 0, 40, 0, 206},
};
#define N_SAES ((int)(sizeof SAES / sizeof *SAES))

typedef struct {
    const sae_spec *sp;
    int m;                /* d_sae */
    double *W_enc;        /* [D_IN][m] */
    double *Wp;           /* W_enc packed for pre_act */
    double *b_enc;        /* [m] (gated: unused) */
    double *W_dec;        /* [m][D_IN] */
    double b_dec[D_IN];
    double *threshold, *b_gate, *r_mag, *b_mag; /* [m] */
    double *jit;          /* per-latent calibration factor (enc norm x jitter) */
    unsigned char *dead;
} sae;

static void sae_free(sae *s)
{
    free(s->W_enc); free(s->Wp); free(s->b_enc); free(s->W_dec); free(s->threshold);
    free(s->b_gate); free(s->r_mag); free(s->b_mag); free(s->jit); free(s->dead);
    memset(s, 0, sizeof *s);
}

/* h0 = (x - b_dec) . W_enc without bias for nb <= TB centred tokens xc
 * [TB][D_IN] (rows past nb zero), into h0 [nb][m]. A 4 tokens x 4 latents
 * register block over the packed encoder Wp (see pack_enc); every h0
 * element is still summed over i in order, so the result does not depend on
 * the blocking or on vectorization. */
#define TB 8
static void pre_act(const sae *s, const double *xc, int nb, double *h0)
{
    int m = s->m; /* a multiple of 4 */
    for (int b0 = 0; b0 < nb; b0 += 4) {
        const double *x = &xc[(size_t)b0 * D_IN];
        int nr = nb - b0 < 4 ? nb - b0 : 4;
        for (int jb = 0; jb < m; jb += 4) {
            const double *w = &s->Wp[(size_t)jb * D_IN];
            double acc[4][4] = {{0}};
            for (int i = 0; i < D_IN; i++, w += 4)
                for (int b = 0; b < 4; b++) {
                    double xi = x[b * D_IN + i];
                    for (int q = 0; q < 4; q++) acc[b][q] += xi * w[q];
                }
            for (int b = 0; b < nr; b++) memcpy(&h0[(size_t)(b0 + b) * m + jb], acc[b], sizeof acc[b]);
        }
    }
}

/* Wp[jb*D_IN + 4i + q] = W_enc[i][jb + q] for latent blocks jb of 4. */
static void pack_enc(sae *s)
{
    int m = s->m;
    for (int jb = 0; jb < m; jb += 4)
        for (int i = 0; i < D_IN; i++)
            for (int q = 0; q < 4; q++) s->Wp[(size_t)jb * D_IN + 4 * i + q] = s->W_enc[(size_t)i * m + jb + q];
}

/* Codes from h0 under the architecture; writes the active (index, value)
 * pairs in increasing index order and returns their count. top is scratch. */
static int codes(const sae *s, const double *h0, int *idx, double *val, int *top)
{
    int m = s->m, n = 0;
    switch (s->sp->a) {
    case A_STANDARD:
        for (int j = 0; j < m; j++) {
            double h = h0[j] + s->b_enc[j];
            if (h > 0) { idx[n] = j; val[n++] = h; }
        }
        break;
    case A_JUMPRELU:
        for (int j = 0; j < m; j++) {
            double h = h0[j] + s->b_enc[j];
            if (h > s->threshold[j]) { idx[n] = j; val[n++] = h; }
        }
        break;
    case A_GATED:
        for (int j = 0; j < m; j++) {
            if (h0[j] + s->b_gate[j] > 0) {
                double mag = h0[j] * exp(s->r_mag[j]) + s->b_mag[j];
                if (mag > 0) { idx[n] = j; val[n++] = mag; }
            }
        }
        break;
    case A_TOPK: {
        /* top[] holds the current best k, sorted by value descending; a new
         * index only displaces strictly smaller values, so ties keep the
         * lower index. */
        int k = s->sp->k, c = 0;
        for (int j = 0; j < m; j++) {
            double h = h0[j] + s->b_enc[j];
            if (c == k && !(h > h0[top[k - 1]] + s->b_enc[top[k - 1]])) continue;
            int p = c < k ? c++ : k - 1;
            while (p > 0 && h > h0[top[p - 1]] + s->b_enc[top[p - 1]]) { top[p] = top[p - 1]; p--; }
            top[p] = j;
        }
        /* Emit in index order (ReLU after the selection). */
        for (int a = 1; a < c; a++) {
            int v = top[a], p = a;
            for (; p > 0 && top[p - 1] > v; p--) top[p] = top[p - 1];
            top[p] = v;
        }
        for (int a = 0; a < c; a++) {
            double h = h0[top[a]] + s->b_enc[top[a]];
            if (h > 0) { idx[n] = top[a]; val[n++] = h; }
        }
        break;
    }
    }
    return n;
}

/* Sets the calibrated parameters from the scale t. */
static void set_scale(sae *s, double t)
{
    for (int j = 0; j < s->m; j++) {
        if (s->dead[j]) continue;
        double c = t * s->jit[j];
        switch (s->sp->a) {
        case A_STANDARD: s->b_enc[j] = -c; break;
        case A_JUMPRELU: s->threshold[j] = c; break;
        case A_GATED: s->b_gate[j] = -c; s->b_mag[j] = -0.25 * c; break;
        case A_TOPK: break;
        }
    }
}

/* Dot product of n doubles with 8 fixed partial sums (a fixed order, so
 * deterministic; the fixed-length inner loop vectorizes at -O2). */
static double dot8(const double *a, const double *b, int n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int q = 0; q < 8; q++) acc[q] += a[k + q] * b[k + q];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < n; k++) s += a[k] * b[k];
    return s;
}

/* In-place Cholesky A = L L^T of an n x n SPD matrix (lower triangle used,
 * row by row so both rows of each dot product are contiguous), then solves
 * L L^T Y = B in place for the n x D_IN right-hand sides B. */
static sv_rc chol_solve(double *A, int n, double *B)
{
    enum { c = D_IN }; /* constant trip count: the row updates vectorize */
    for (int i = 0; i < n; i++) {
        double *ri = &A[(size_t)i * n];
        for (int j = 0; j < i; j++) {
            const double *rj = &A[(size_t)j * n];
            ri[j] = (ri[j] - dot8(ri, rj, j)) / rj[j];
        }
        double d = ri[i] - dot8(ri, ri, i);
        if (!(d > 0)) return sv_fail(SV_EINTERNAL, "synth: decoder normal equations not positive definite");
        ri[i] = sqrt(d);
    }
    for (int i = 0; i < n; i++) { /* forward: L Y = B */
        double *bi = &B[(size_t)i * c];
        for (int k = 0; k < i; k++) {
            double l = A[(size_t)i * n + k];
            if (l == 0) continue;
            const double *bk = &B[(size_t)k * c];
            for (int j = 0; j < c; j++) bi[j] -= l * bk[j];
        }
        double d = A[(size_t)i * n + i];
        for (int j = 0; j < c; j++) bi[j] /= d;
    }
    for (int i = n - 1; i >= 0; i--) { /* backward: L^T Y = B */
        double *bi = &B[(size_t)i * c];
        double d = A[(size_t)i * n + i];
        for (int j = 0; j < c; j++) bi[j] /= d;
        for (int k = 0; k < i; k++) {
            double l = A[(size_t)i * n + k];
            if (l == 0) continue;
            double *bk = &B[(size_t)k * c];
            for (int j = 0; j < c; j++) bk[j] -= l * bi[j];
        }
    }
    return SV_OK;
}

/* Builds one SAE against the in-sample store. xs: the in-sample tokens as
 * double, already multiplied by the SAE's input scale; train: indices of
 * the non-BOS training tokens; mean: the non-BOS mean of xs. */
static sv_rc build_sae(sae *s, const sae_spec *sp, const world *w, uint64_t seed,
                       const double *xs, int64_t n_all, const int64_t *train, int64_t n_train,
                       const double *mean)
{
    memset(s, 0, sizeof *s);
    s->sp = sp;
    int m = s->m = sp->d_sae;
    rng r;
    rng_init(&r, seed, sp->stream);
    s->W_enc = sv_calloc((size_t)D_IN * m, sizeof(double));
    s->Wp = sv_calloc((size_t)D_IN * m, sizeof(double));
    s->b_enc = sv_calloc((size_t)m, sizeof(double));
    s->W_dec = sv_calloc((size_t)m * D_IN, sizeof(double));
    s->threshold = sv_calloc((size_t)m, sizeof(double));
    s->b_gate = sv_calloc((size_t)m, sizeof(double));
    s->r_mag = sv_calloc((size_t)m, sizeof(double));
    s->b_mag = sv_calloc((size_t)m, sizeof(double));
    s->jit = sv_calloc((size_t)m, sizeof(double));
    s->dead = sv_calloc((size_t)m, 1);
    int *role = sv_malloc(sizeof(int) * (size_t)m);
    double *dir = sv_malloc(sizeof(double) * (size_t)m * D_IN); /* encoder directions, rows */
    double *h0 = sv_malloc(sizeof(double) * (size_t)n_train * m);
    double *G = NULL, *B = NULL, *val = NULL;
    int *idx = NULL, *top = NULL;
    int64_t *start = NULL;
    int *aidx = NULL;
    double *aval = NULL;
    sv_rc rc = SV_EINTERNAL;
    if (!s->W_enc || !s->Wp || !s->b_enc || !s->W_dec || !s->threshold || !s->b_gate || !s->r_mag ||
        !s->b_mag || !s->jit || !s->dead || !role || !dir || !h0)
        goto done;
    memcpy(s->b_dec, mean, sizeof s->b_dec);

    /* Latent roles: GT features covered roughly in order of in-sample
     * frequency (with jitter), a few duplicates of frequent features, a few
     * random directions, and ~2% dead. Then shuffled. */
    int n_dead = (m * 2 + 50) / 100, n_dup = m * 4 / 100, n_rand = m * 5 / 100;
    int n_cov = m - n_dead - n_dup - n_rand;
    {
        int order[N_GT];
        if (store_ranking(w, &r, 0.7, order) != SV_OK) goto done;
        int p = 0;
        for (int a = 0; a < n_cov; a++) role[p++] = order[a];
        for (int a = 0; a < n_dup; a++) role[p++] = order[rng_below(&r, 100)];
        for (int a = 0; a < n_rand; a++) role[p++] = -1;
        for (int a = 0; a < n_dead; a++) role[p++] = -2;
        shuffle_int(&r, role, m);
    }
    for (int j = 0; j < m; j++) {
        double *v = &dir[(size_t)j * D_IN];
        if (role[j] >= 0) {
            /* Noisy copy of the GT direction (cos ~0.95). */
            double eps = 0.3 * exp(0.3 * rng_normal(&r)) / sqrt((double)D_IN);
            const double *g = &w->dirs[(size_t)role[j] * D_IN];
            for (int i = 0; i < D_IN; i++) v[i] = g[i] + eps * rng_normal(&r);
            normalize(v, D_IN);
        } else {
            random_unit(&r, v, D_IN);
        }
        s->dead[j] = role[j] == -2;
        double norm = exp(0.15 * rng_normal(&r)); /* encoder norms vary */
        s->jit[j] = norm * exp(0.1 * rng_normal(&r));
        for (int i = 0; i < D_IN; i++) s->W_enc[(size_t)i * m + j] = norm * v[i];
        if (sp->a == A_GATED) s->r_mag[j] = 0.1 * rng_normal(&r);
    }

    /* Pre-activations on the training tokens. */
    pack_enc(s);
    for (int64_t a0 = 0; a0 < n_train; a0 += TB) {
        int nb = n_train - a0 < TB ? (int)(n_train - a0) : TB;
        double xc[TB * D_IN] = {0};
        for (int b = 0; b < nb; b++) {
            const double *x = &xs[train[a0 + b] * D_IN];
            for (int i = 0; i < D_IN; i++) xc[b * D_IN + i] = x[i] - s->b_dec[i];
        }
        pre_act(s, xc, nb, &h0[a0 * m]);
    }
    /* Small random encoder biases for the architectures where the bias is
     * not the sparsity knob; scaled to the typical pre-activation. */
    double hs = 0;
    for (int64_t a = 0; a < n_train * m; a++) hs += h0[a] * h0[a];
    hs = sqrt(hs / (double)(n_train * m));
    if (sp->a == A_TOPK || sp->a == A_JUMPRELU)
        for (int j = 0; j < m; j++) s->b_enc[j] = 0.05 * hs * rng_normal(&r);

    /* Dead latents: a bias more negative than any projection of any
     * in-sample token (BOS included) so they can never fire. */
    for (int j = 0; j < m; j++) {
        if (!s->dead[j]) continue;
        double mx = 0, wj[D_IN];
        for (int i = 0; i < D_IN; i++) wj[i] = s->W_enc[(size_t)i * m + j];
        for (int64_t t = 0; t < n_all; t++) {
            double h = 0;
            const double *x = &xs[t * D_IN];
            for (int i = 0; i < D_IN; i++) h += (x[i] - s->b_dec[i]) * wj[i];
            if (fabs(h) > mx) mx = fabs(h);
        }
        double b = -(2.0 * mx + 10.0 * hs);
        s->b_enc[j] = b;
        s->b_gate[j] = b;
        s->b_mag[j] = b;
        s->threshold[j] = hs;
    }

    idx = sv_malloc(sizeof(int) * (size_t)m);
    val = sv_malloc(sizeof(double) * (size_t)m);
    top = sv_malloc(sizeof(int) * (size_t)m);
    if (!idx || !val || !top) goto done;

    /* Calibrate the sparsity scale by bisection on the mean L0 of every
     * 4th training token (L0 is monotone in the scale). */
    if (sp->a != A_TOPK) {
        double lo = 0, hi = 20.0 * hs;
        for (int it = 0; it < 30; it++) {
            double t = 0.5 * (lo + hi);
            set_scale(s, t);
            int64_t tot = 0, nc = 0;
            for (int64_t a = 0; a < n_train; a += 4, nc++) tot += codes(s, &h0[a * m], idx, val, top);
            if ((double)tot / (double)nc > sp->target_l0) lo = t; else hi = t;
        }
        set_scale(s, hi);
    }

    /* Codes of the training tokens, kept sparse. */
    start = sv_malloc(sizeof(int64_t) * (size_t)(n_train + 1));
    if (!start) goto done;
    int64_t tot = 0, capn = n_train * 64;
    aidx = sv_malloc(sizeof(int) * (size_t)capn);
    aval = sv_malloc(sizeof(double) * (size_t)capn);
    if (!aidx || !aval) goto done;
    for (int64_t a = 0; a < n_train; a++) {
        start[a] = tot;
        int c = codes(s, &h0[a * m], idx, val, top);
        if (tot + c > capn) {
            capn = 2 * capn + c;
            int *ni = realloc(aidx, sizeof(int) * (size_t)capn);
            if (ni) aidx = ni;
            double *nv = realloc(aval, sizeof(double) * (size_t)capn);
            if (nv) aval = nv;
            if (!ni || !nv) { rc = sv_fail(SV_EINTERNAL, "synth: out of memory"); goto done; }
        }
        memcpy(&aidx[tot], idx, sizeof(int) * (size_t)c);
        memcpy(&aval[tot], val, sizeof(double) * (size_t)c);
        tot += c;
    }
    start[n_train] = tot;
    free(h0); h0 = NULL;

    /* Normal equations (F^T F + lam I) W = F^T (X - b_dec) + lam W0, where
     * the prior W0 is the unit encoder direction: a latent that (almost)
     * never fires keeps it, and dead latents keep exactly a random unit row. */
    G = sv_calloc((size_t)m * m, sizeof(double));
    B = sv_calloc((size_t)m * D_IN, sizeof(double));
    if (!G || !B) goto done;
    for (int64_t a = 0; a < n_train; a++) {
        const double *x = &xs[train[a] * D_IN];
        double xc[D_IN];
        for (int i = 0; i < D_IN; i++) xc[i] = x[i] - s->b_dec[i];
        for (int64_t p = start[a]; p < start[a + 1]; p++) {
            int ja = aidx[p];
            double fa = aval[p];
            double *grow = &G[(size_t)ja * m];
            for (int64_t q = start[a]; q <= p; q++) grow[aidx[q]] += fa * aval[q];
            double *brow = &B[(size_t)ja * D_IN];
            for (int i = 0; i < D_IN; i++) brow[i] += fa * xc[i];
        }
    }
    double tr = 0;
    for (int j = 0; j < m; j++) tr += G[(size_t)j * m + j];
    double lam = 1e-3 * tr / m;
    if (!(lam > 0)) lam = 1e-3;
    for (int j = 0; j < m; j++) {
        G[(size_t)j * m + j] += lam;
        for (int i = 0; i < D_IN; i++) B[(size_t)j * D_IN + i] += lam * dir[(size_t)j * D_IN + i];
    }
    if ((rc = chol_solve(G, m, B)) != SV_OK) goto done;
    for (int j = 0; j < m; j++) {
        const double *src = s->dead[j] ? &dir[(size_t)j * D_IN] : &B[(size_t)j * D_IN];
        memcpy(&s->W_dec[(size_t)j * D_IN], src, sizeof(double) * D_IN);
    }
    rc = SV_OK;
done:
    free(role); free(dir); free(h0); free(G); free(B); free(idx); free(val); free(top);
    free(start); free(aidx); free(aval);
    return rc;
}

/* ------------------------------------------------------------- output */

static sv_rc write_store(const char *dir, const store_spec *sp, const store_data *d)
{
    char name[64];
    snprintf(name, sizeof name, "stores/%s.h5", sp->name);
    char *path = sv_path_join(dir, name);
    if (!path) return SV_EINTERNAL;
    const int64_t special[1] = {BOS_ID};
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = sp->dtype;
    o.chunked = sp->chunked;
    o.chunk_rows = 256;
    o.chunk_cols = 64;
    if (sp->context_size > 0) o.context_size = sp->context_size;
    else { o.seq_offsets = d->offsets; o.n_seq = d->n_seq; }
    o.token_ids = d->tok;
    o.special_ids = special;
    o.n_special = 1;
    o.model_name = MODEL_NAME;
    o.hook_name = HOOK_NAME;
    o.dataset_name = sp->dataset_name;
    sv_rc rc = sv_store_write(path, d->x, d->n, D_IN, &o);
    free(path);
    return rc;
}

static sv_rc write_sae(const char *dir, const sae *s, double scale)
{
    const sae_spec *sp = s->sp;
    char rel[128];
    snprintf(rel, sizeof rel, "saes/%s", sp->name);
    char *sdir = sv_path_join(dir, rel);
    if (!sdir) return SV_EINTERNAL;
    sv_synth_sae o;
    memset(&o, 0, sizeof o);
    o.architecture = ARCH_NAME[sp->a];
    o.d_in = D_IN;
    o.d_sae = s->m;
    o.k = sp->a == A_TOPK ? sp->k : 0;
    o.scaling_factor = sp->scaled ? scale : 0.0;
    o.model_name = MODEL_NAME;
    o.hook_name = HOOK_NAME;
    o.dataset_path = "synthetic-web-text";
    o.context_size = 128;
    o.W_enc = s->W_enc;
    o.b_enc = sp->a != A_GATED ? s->b_enc : NULL;
    o.W_dec = s->W_dec;
    o.b_dec = s->b_dec;
    o.threshold = sp->a == A_JUMPRELU ? s->threshold : NULL;
    if (sp->a == A_GATED) { o.b_gate = s->b_gate; o.r_mag = s->r_mag; o.b_mag = s->b_mag; }
    sv_rc rc = sv_synth_write_sae(sdir, &o);
    free(sdir);
    return rc;
}

static sv_rc write_config(const char *dir)
{
    char *path = sv_path_join(dir, "config.json");
    if (!path) return SV_EINTERNAL;
    cJSON *c = cJSON_CreateObject(), *saes = cJSON_CreateArray(), *ds = cJSON_CreateArray();
    cJSON_AddStringToObject(c, "output_dir", "results");
    char rel[128];
    for (int i = 0; i < N_SAES; i++) {
        snprintf(rel, sizeof rel, "saes/%s", SAES[i].name);
        cJSON_AddItemToArray(saes, cJSON_CreateString(rel));
    }
    cJSON_AddItemToObject(c, "saes", saes);
    static const char *const shift[3] = {NULL, "domain", "task"};
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", STORES[i].name);
        snprintf(rel, sizeof rel, "stores/%s.h5", STORES[i].name);
        cJSON_AddStringToObject(d, "path", rel);
        cJSON_AddStringToObject(d, "role", i == 0 ? "in_sample" : "oos");
        if (shift[i]) cJSON_AddStringToObject(d, "shift", shift[i]);
        cJSON_AddItemToArray(ds, d);
    }
    cJSON_AddItemToObject(c, "datasets", ds);
    cJSON_AddItemToObject(c, "exclude_token_ids", cJSON_CreateArray());
    cJSON_AddNumberToObject(c, "legacy_batch_sequences", 16);
    cJSON_AddStringToObject(c, "precision", "float32");
    sv_rc rc = sv_synth_write_cjson(path, c);
    free(path);
    return rc;
}

/* ------------------------------------------------------ debug statistics */

#ifdef SV_SYNTH_STATS
/* Compile with -DSV_SYNTH_STATS to print EV and L0 of every SAE on every
 * store to stderr, computed here in double on the values as stored
 * (float32 input; the 16-bit stores are checked before rounding). */
static void print_stats(const sae *s, const store_data *d, const char *name, double scale)
{
    int m = s->m;
    double *h0 = malloc(sizeof(double) * m), *val = malloc(sizeof(double) * m), mu[D_IN] = {0};
    int *idx = malloc(sizeof(int) * m), *top = malloc(sizeof(int) * m);
    unsigned char *fired = calloc(m, 1);
    int64_t cnt = 0, l0 = 0;
    for (int64_t t = 0; t < d->n; t++) {
        if (d->bos[t]) continue;
        for (int i = 0; i < D_IN; i++) mu[i] += d->x[t * D_IN + i];
        cnt++;
    }
    for (int i = 0; i < D_IN; i++) mu[i] /= (double)cnt;
    double sse = 0, sst = 0;
    for (int64_t t = 0; t < d->n; t++) {
        if (d->bos[t]) continue;
        double xc[TB * D_IN] = {0}, y[D_IN];
        for (int i = 0; i < D_IN; i++) xc[i] = scale * d->x[t * D_IN + i] - s->b_dec[i];
        pre_act(s, xc, 1, h0);
        int c = codes(s, h0, idx, val, top);
        l0 += c;
        for (int i = 0; i < D_IN; i++) y[i] = s->b_dec[i];
        for (int a = 0; a < c; a++) {
            fired[idx[a]] = 1;
            for (int i = 0; i < D_IN; i++) y[i] += val[a] * s->W_dec[(size_t)idx[a] * D_IN + i];
        }
        for (int i = 0; i < D_IN; i++) {
            double x = d->x[t * D_IN + i], e = x - y[i] / scale;
            sse += e * e;
            sst += (x - mu[i]) * (x - mu[i]);
        }
    }
    int nf = 0, nd = 0;
    for (int j = 0; j < m; j++) { nf += !fired[j]; nd += s->dead[j]; }
    fprintf(stderr, "[synth] %-15s %-10s EV %.4f  L0 %6.1f  never fired %d (dead by construction %d)\n",
            s->sp->name, name, 1.0 - sse / sst, (double)l0 / (double)cnt, nf, nd);
    free(h0); free(val); free(idx); free(top); free(fired);
}
#endif

/* --------------------------------------------------------------- driver */

sv_rc sv_synth(const char *dir, uint64_t seed)
{
    sv_rc rc = SV_OK;
    world *w = sv_malloc(sizeof *w);
    store_data st[3];
    memset(st, 0, sizeof st);
    double *xs = NULL;
    int64_t *train = NULL;
    char *sdir = NULL;
    if (!w) return SV_EINTERNAL;
    make_world(w, seed);

    if ((rc = sv_mkdir_p(dir)) != SV_OK) goto done;
    if (!(sdir = sv_path_join(dir, "stores"))) { rc = SV_EINTERNAL; goto done; }
    if ((rc = sv_mkdir_p(sdir)) != SV_OK) goto done;
    for (int i = 0; i < 3; i++) {
        if ((rc = gen_store(w, &STORES[i], seed, &st[i])) != SV_OK) goto done;
        if ((rc = write_store(dir, &STORES[i], &st[i])) != SV_OK) goto done;
    }

    /* In-sample statistics: non-BOS mean, mean norm (for the scaler), and
     * the training subset (every other non-BOS token). */
    const store_data *in = &st[0];
    double mean[D_IN] = {0}, norm_sum = 0;
    int64_t cnt = 0, n_train = 0;
    train = sv_malloc(sizeof(int64_t) * (size_t)(in->n / 2 + 1));
    xs = sv_malloc(sizeof(double) * (size_t)in->n * D_IN);
    if (!train || !xs) { rc = SV_EINTERNAL; goto done; }
    for (int64_t t = 0; t < in->n; t++) {
        if (in->bos[t]) continue;
        double q = 0;
        for (int i = 0; i < D_IN; i++) {
            double v = in->x[t * D_IN + i];
            mean[i] += v;
            q += v * v;
        }
        norm_sum += sqrt(q);
        if (cnt++ % 2 == 0) train[n_train++] = t;
    }
    for (int i = 0; i < D_IN; i++) mean[i] /= (double)cnt;
    double scaler = sqrt((double)D_IN) / (norm_sum / (double)cnt);

    for (int k = 0; k < N_SAES; k++) {
        const sae_spec *sp = &SAES[k];
        double scale = sp->scaled ? scaler : 1.0, smean[D_IN];
        for (int64_t t = 0; t < in->n * D_IN; t++) xs[t] = scale * (double)in->x[t];
        for (int i = 0; i < D_IN; i++) smean[i] = scale * mean[i];
        sae s;
        rc = build_sae(&s, sp, w, seed, xs, in->n, train, n_train, smean);
        if (rc == SV_OK) rc = write_sae(dir, &s, scale);
#ifdef SV_SYNTH_STATS
        if (rc == SV_OK)
            for (int i = 0; i < 3; i++) print_stats(&s, &st[i], STORES[i].name, scale);
#endif
        sae_free(&s);
        if (rc != SV_OK) goto done;
    }
    rc = write_config(dir);
done:
    for (int i = 0; i < 3; i++) store_data_free(&st[i]);
    free(w); free(xs); free(train); free(sdir);
    return rc;
}

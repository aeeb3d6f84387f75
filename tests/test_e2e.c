/* End-to-end generator and checker.
 *
 *   test_e2e gen DIR CASE         write stores, SAEs, DIR/config.json and
 *                                 DIR/expected.json (from tests/ref.c)
 *   test_e2e check DIR OUTDIR TOL compare saeval's result files with
 *                                 DIR/expected.json
 *   test_e2e selftest             sanity checks of the reference itself
 *
 * Stored activations are generated already representable in the store dtype
 * (own rounding code below), so the reference sees exactly the stored values.
 * For float32 runs every token is resampled until no decision quantity lies
 * within 1e-3 (relative to its scale) of its boundary, so float rounding in
 * the evaluator cannot flip a latent. The "exact" cases instead use dyadic
 * data and weights so pre-activations are exact, and put tokens exactly on
 * boundaries on purpose. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ref.h"
#include "saeval/safetensors.h"
#include "saeval/output.h"
#include "saeval/store.h"

#define TEST_NAME "test_e2e"
#include "testutil.h"

/* ---------- small utilities ---------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) die("cannot write", path);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = xcalloc((size_t)n + 1, 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(b); return NULL; }
    fclose(f);
    return b;
}

static void write_json(const char *path, cJSON *j)
{
    char *s = cJSON_Print(j);
    if (!s) die("cJSON_Print failed", path);
    size_t n = strlen(s);
    char *t = xcalloc(n + 2, 1);
    memcpy(t, s, n);
    t[n] = '\n';
    write_text(path, t);
    free(t);
    cJSON_free(s);
}

/* splitmix64: deterministic, good enough for test data. */
typedef struct { uint64_t s; } rng;
static uint64_t rnext(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double runif(rng *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }
static int rint_in(rng *r, int lo, int hi) { return lo + (int)(runif(r) * (hi - lo + 1)); } /* [lo, hi] */
static double rnorm(rng *r)
{
    double u = runif(r), v = runif(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* ---------- rounding to the storage formats (own code, not src/half.c) ---------- */

/* Round to a binary format with `bits` significant bits; values below `tiny`
 * (which keeps them clear of subnormals) become 0. */
static double round_bits(double v, int bits, double tiny)
{
    if (fabs(v) < tiny) return 0.0;
    int e;
    double f = frexp(v, &e); /* v = f * 2^e, 0.5 <= |f| < 1 */
    return ldexp(nearbyint(ldexp(f, bits)), e - bits);
}
static double to_f32(double v) { return (double)(float)v; }
static double to_f16(double v) { return round_bits(v, 11, 0x1.0p-13); }  /* |v| < 65504 assumed */
static double to_bf16(double v) { return round_bits(v, 8, 0x1.0p-100); }
static double to_store(double v, sv_store_dtype dt)
{
    switch (dt) {
    case SV_STORE_F16: return to_f16(v);
    case SV_STORE_BF16:
    case SV_STORE_BF16_U16: return to_bf16(v);
    default: return to_f32(v);
    }
}

/* Round to a multiple of 2^-bits, clamped to |v| <= lim. */
static double grid(double v, int bits, double lim)
{
    v = fmax(-lim, fmin(lim, v));
    return ldexp(nearbyint(ldexp(v, bits)), -bits);
}

/* ---------- case descriptions ---------- */

typedef struct {
    const char *name;
    ref_arch arch;
    int k, rescale, apply_b_dec;
    ref_norm norm;
    int scale_mode; /* expected_average_only_in: 1 config scaling_factor, 2 activation_scaler.json */
    double scale;
    int batchtopk; /* jumprelu saved as "batchtopk": one scalar threshold for every latent */
    int cfg_form;  /* SAELens cfg/weights variants (issue 11), CFG_* below; 0: the plain 6.x form */
    /* Transcoders and skip connections (issue 11): d_out > 0 makes a
     * transcoder whose decoder writes d_out values, compared with the
     * store's /targets; skip adds W_skip [d_out][d_in]. fmt NULL writes
     * SAELens (transcoder, skip_transcoder, jumprelu_transcoder), else the
     * native format through tests/formats_write.py (sparsify, gemma_scope). */
    int d_out, skip;
    const char *fmt;
} sae_spec;

/* CFG_PRE6_TOPK: a SAELens 4.x top-k cfg ("architecture": "standard",
 * activation_fn_str "topk", activation_fn_kwargs.k, no sae_lens_version):
 * SAELens's loader reads it as top-k. CFG_V6_STANDARD: the same keys but
 * metadata.sae_lens_version 6.5.0: SAELens 6 reads "standard" (ReLU).
 * CFG_BF16: cfg dtype bfloat16 (saeval computes in the run's precision).
 * CFG_SF_ONES: a scaling_factor tensor of ones (SAELens drops it).
 * CFG_SF_BAD: a scaling_factor tensor of 1.5 (refused). */
enum { CFG_PLAIN = 0, CFG_PRE6_TOPK, CFG_V6_STANDARD, CFG_BF16, CFG_SF_ONES, CFG_SF_BAD };

typedef struct {
    const char *name, *file;
    sv_store_dtype dtype;
    int chunked, chunk_rows, chunk_cols;
    int n_seq, context_size, min_len, max_len; /* context_size 0: variable lengths */
    int token_ids;
    int n_special;
    int64_t special[4];
    int masked_batch;  /* >= 0: every token of this legacy batch gets special id 1 */
    int zero_tokens;   /* a few exact-zero and tiny tokens (float64 cases only) */
    double shift;      /* OOS mean shift */
    int omit_sequences;
} ds_spec;

typedef struct {
    const char *name;
    int precision, d_in, d_sae, legacy_B, write_legacy_B;
    int n_exclude;
    int64_t exclude[4];
    int n_saes;
    sae_spec saes[8];
    int n_ds;
    ds_spec ds[3];
    uint64_t seed;
    int exact; /* dyadic data and encoder weights: pre-activations exact in float and double */
    double dead_density; /* > 0: "dead_density_threshold" in the config; 0: left out (default 1e-6) */
    int d_targets;       /* > 0: every store gets /targets [n_tokens][d_targets] */
} case_spec;

#define SAES_ARCH                                                                     \
    { {"std", REF_STANDARD, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                            \
      {"topk", REF_TOPK, 8, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                               \
      {"topk_rs", REF_TOPK, 6, 1, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                            \
      {"jumprelu", REF_JUMPRELU, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                       \
      {"gated", REF_GATED, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                         \
      {"batchtopk", REF_JUMPRELU, 0, 0, 1, REF_NORM_NONE, 0, 0, 1, 0, 0, 0, NULL} }
#define SAES_NORM                                                                     \
    { {"std_ln", REF_STANDARD, 0, 0, 1, REF_NORM_LAYER, 0, 0, 0, 0, 0, 0, NULL},                        \
      {"topk_cnr", REF_TOPK, 12, 0, 1, REF_NORM_CONST, 0, 0, 0, 0, 0, 0, NULL},                         \
      {"jr_ea_cfg", REF_JUMPRELU, 0, 0, 1, REF_NORM_EXPAVG, 1, 0.7, 0, 0, 0, 0, NULL},                  \
      {"gated_ea_file", REF_GATED, 0, 0, 1, REF_NORM_EXPAVG, 2, 1.6, 0, 0, 0, 0, NULL},                 \
      {"std_nobdec", REF_STANDARD, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                     \
      {"topk_rs_ln_nobdec", REF_TOPK, 10, 1, 0, REF_NORM_LAYER, 0, 0, 0, 0, 0, 0, NULL} }
/* Variable-length sequences, store special ids + config exclusions, one fully
 * masked legacy batch; and a chunked f16 store with context_size. */
#define DS_ARCH(zero)                                                                          \
    { {"main", "main.h5", SV_STORE_F32, 0, 0, 0, 60, 0, 3, 40, 1, 2, {0, 1}, 2, zero, 0.0, 0}, \
      {"oos_f16", "oos_f16.h5", SV_STORE_F16, 1, 37, 5, 40, 24, 0, 0, 1, 0, {0}, -1, 0, 0.4, 0} }
#define DS_NORM                                                                                 \
    { {"bf16", "bf16.h5", SV_STORE_BF16, 1, 50, 7, 50, 16, 0, 0, 1, 1, {3}, -1, 0, 0.0, 0},   \
      {"bf16u", "bf16u.h5", SV_STORE_BF16_U16, 0, 0, 0, 45, 0, 5, 50, 0, 0, {0}, -1, 0, 0.3, 0} }
#define SAES_EXACT                                                                    \
    { {"x_topk_tie", REF_TOPK, 7, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                         \
      {"x_jumprelu_eq", REF_JUMPRELU, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                  \
      {"x_gated_eq", REF_GATED, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} }
#define DS_EXACT                                                                                 \
    { {"f16v", "f16v.h5", SV_STORE_F16, 1, 19, 32, 30, 0, 5, 60, 1, 1, {0}, -1, 0, 0.0, 0},    \
      {"f32c", "f32c.h5", SV_STORE_F32, 0, 0, 0, 25, 32, 0, 0, 0, 0, {0}, -1, 0, 0.3, 0} }

#define SAES_ARCH11                                                                   \
    { {"signed", REF_SIGNED_TOPK, 8, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                      \
      {"groupmax", REF_GROUPMAX, 41, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} }
#define SAES_TC                                                                                     \
    { {"tc_std", REF_STANDARD, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 0, NULL},                           \
      {"tc_skip", REF_STANDARD, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 1, NULL},                          \
      {"tc_jumprelu", REF_JUMPRELU, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 0, NULL},                      \
      {"plain_std", REF_STANDARD, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},                         \
      {"sparsify_tc_skip", REF_TOPK, 6, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 1, "sparsify"},               \
      {"sparsify_skip", REF_TOPK, 6, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 1, "sparsify"},                   \
      {"gemma_tc", REF_JUMPRELU, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 0, "gemma_scope"} }
#define DS_TC                                                                                    \
    { {"main", "main.h5", SV_STORE_F32, 0, 0, 0, 40, 0, 3, 30, 1, 1, {0}, -1, 0, 0.0, 0},      \
      {"oos_bf16", "oos_bf16.h5", SV_STORE_BF16, 1, 29, 6, 30, 16, 0, 0, 1, 0, {0}, -1, 0, 0.3, 0} }

static const case_spec cases[] = {
    {"arch64", 64, 32, 64, 5, 1, 2, {7, 13}, 6, SAES_ARCH, 2, DS_ARCH(1), 101, 0, 0.05, 0},
    {"arch32", 32, 32, 64, 5, 1, 2, {7, 13}, 6, SAES_ARCH, 2, DS_ARCH(0), 102, 0, 0.02, 0},
    /* d_sae 4100 (the first five SAEs, batchtopk left out for time): three encoder panels of 2048 latents, the last ragged, so
     * activations and top-k are gathered across panels. */
    {"wide64", 64, 16, 4100, 5, 1, 2, {7, 13}, 5, SAES_ARCH, 2, DS_ARCH(1), 103, 0, 0, 0},
    {"wide32", 32, 16, 4100, 5, 1, 2, {7, 13}, 5, SAES_ARCH, 2, DS_ARCH(0), 104, 0, 0, 0},
    /* legacy_batch_sequences left out: the default 16 applies */
    {"norm64", 64, 48, 96, 16, 0, 0, {0}, 6, SAES_NORM, 2, DS_NORM, 201, 0, 0.1, 0},
    {"norm32", 32, 48, 96, 16, 0, 0, {0}, 6, SAES_NORM, 2, DS_NORM, 202, 0, 0, 0},
    /* Rank invariance: 40 sequences = 3 units, 20 = 2 units, 3 = 1 unit, so
     * ranks sit idle at -np 4. */
    {"ranks", 32, 24, 40, 16, 1, 1, {9}, 4,
     { {"r_std", REF_STANDARD, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},
       {"r_topk_rs", REF_TOPK, 5, 1, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},
       {"r_jumprelu", REF_JUMPRELU, 0, 0, 1, REF_NORM_LAYER, 0, 0, 0, 0, 0, 0, NULL},
       {"r_gated", REF_GATED, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} },
     3,
     { {"a", "a.h5", SV_STORE_F32, 1, 33, 7, 40, 0, 4, 30, 1, 1, {0}, -1, 0, 0.0, 0},
       {"b", "b.h5", SV_STORE_F16, 0, 0, 0, 20, 20, 0, 0, 1, 0, {0}, -1, 0, 0.5, 0},
       {"c", "c.h5", SV_STORE_F32, 0, 0, 0, 3, 0, 10, 25, 0, 0, {0}, -1, 0, 0.2, 0} },
     301, 0, 0, 0},
    /* Exact pre-activations (see make_sae): topk ties between encoder
     * copies, tokens exactly at the jumprelu threshold and the gate. */
    {"exact64", 64, 32, 64, 8, 1, 0, {0}, 3, SAES_EXACT, 2, DS_EXACT, 501, 1, 0, 0},
    {"exact32", 32, 32, 64, 8, 1, 0, {0}, 3, SAES_EXACT, 2, DS_EXACT, 502, 1, 0, 0},
    /* SAELens cases saeval got wrong before issue 11 (see CFG_*). */
    {"saelens11", 32, 32, 64, 5, 1, 0, {0}, 4,
     { {"pre6_topk", REF_TOPK, 8, 0, 1, REF_NORM_NONE, 0, 0, 0, CFG_PRE6_TOPK, 0, 0, NULL},
       {"v6_standard", REF_STANDARD, 8, 0, 1, REF_NORM_NONE, 0, 0, 0, CFG_V6_STANDARD, 0, 0, NULL},
       {"bf16_cfg", REF_STANDARD, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, CFG_BF16, 0, 0, NULL},
       {"sf_ones", REF_JUMPRELU, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, CFG_SF_ONES, 0, 0, NULL} },
     1, { {"main", "main.h5", SV_STORE_F32, 0, 0, 0, 30, 0, 3, 30, 1, 0, {0}, -1, 0, 0.0, 0} }, 701, 0, 0, 0},
    /* Issue 11: signed top-k and groupmax, written as sparsify files (no
     * SAELens cfg names them). d_sae 4100 = 41 groups of 100: three encoder
     * panels of 2048, group 20 straddles the first boundary. */
    {"arch11_64", 64, 16, 4100, 5, 1, 0, {0}, 2, SAES_ARCH11, 2, DS_ARCH(1), 601, 0, 0, 0},
    {"arch11_32", 32, 16, 4100, 5, 1, 0, {0}, 2, SAES_ARCH11, 2, DS_ARCH(0), 602, 0, 0, 0},
    /* Rank invariance of the two (as "ranks"): 40 latents, 8 groups of 5. */
    {"ranks11", 32, 24, 40, 16, 1, 0, {0}, 2,
     { {"r_signed", REF_SIGNED_TOPK, 5, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL},
       {"r_groupmax", REF_GROUPMAX, 8, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} },
     3,
     { {"a", "a.h5", SV_STORE_F32, 1, 33, 7, 40, 0, 4, 30, 1, 1, {0}, -1, 0, 0.0, 0},
       {"b", "b.h5", SV_STORE_F16, 0, 0, 0, 20, 20, 0, 0, 1, 0, {0}, -1, 0, 0.5, 0},
       {"c", "c.h5", SV_STORE_F32, 0, 0, 0, 3, 0, 10, 25, 0, 0, {0}, -1, 0, 0.2, 0} },
     603, 0, 0, 0},
    /* Transcoders (d_in 24 -> d_out 20) and skip connections, SAELens and
     * native, next to an ordinary SAE in the same pass; stores with
     * /targets in float32 and chunked bfloat16. */
    {"tc64", 64, 24, 48, 5, 1, 1, {7}, 7, SAES_TC, 2, DS_TC, 601, 0, 0, 20},
    {"tc32", 32, 24, 48, 5, 1, 1, {7}, 7, SAES_TC, 2, DS_TC, 602, 0, 0, 20},
    /* Transcoders as wide as their input (MLP in -> MLP out): Gemma Scope's
     * files cannot say so, the run config does ("transcoder": true). */
    {"tcsq64", 64, 24, 48, 5, 1, 0, {0}, 4,
     { {"sq_tc", REF_STANDARD, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 24, 0, NULL},
       {"sq_gemma_tc", REF_JUMPRELU, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 24, 0, "gemma_scope"},
       {"sq_sparsify_tc", REF_TOPK, 5, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 24, 0, "sparsify"},
       {"sq_plain", REF_JUMPRELU, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} },
     2, DS_TC, 603, 0, 0, 24},
};

/* ---------- generated data ---------- */

typedef struct {
    int d, m, n_true;
    double *D;    /* [n_true][d] unit "ground-truth" directions */
    double *mean; /* [d] */
    int exact;    /* activations on the grid 2^-8, |x| < 8 */
} world;

typedef struct {
    sae_spec sp;
    double *W_enc, *b_enc, *W_dec, *b_dec, *threshold, *b_gate, *r_mag, *b_mag, *W_skip;
    ref_sae r;
} gen_sae;

typedef struct {
    int64_t n_tok, n_seq;
    int d;
    int64_t *off, *tok;
    unsigned char *mask;
    double *x;
    int dy;
    double *y; /* /targets [n_tok][dy] (NULL: none), exactly the stored values */
} gen_ds;

static void sample_token(rng *r, const world *w, double shift, sv_store_dtype dt, double *x)
{
    for (int i = 0; i < w->d; i++) x[i] = w->mean[i] + shift + 0.2 * rnorm(r);
    for (int a = 0; a < w->n_true; a++) {
        if (runif(r) >= 5.0 / w->n_true) continue;
        double c = 0.5 + 1.5 * runif(r);
        for (int i = 0; i < w->d; i++) x[i] += c * w->D[(size_t)a * w->d + i];
    }
    if (w->exact)
        for (int i = 0; i < w->d; i++) x[i] = grid(x[i], 8, 7.99);
    for (int i = 0; i < w->d; i++) x[i] = to_store(x[i], dt);
}

static void make_world(world *w, int d, int m, rng *r)
{
    w->d = d;
    w->m = m;
    w->n_true = d;
    w->exact = 0;
    w->D = xcalloc((size_t)w->n_true * d, sizeof(double));
    w->mean = xcalloc((size_t)d, sizeof(double));
    for (int a = 0; a < w->n_true; a++) {
        double n = 0;
        for (int i = 0; i < d; i++) { w->D[(size_t)a * d + i] = rnorm(r); n += w->D[(size_t)a * d + i] * w->D[(size_t)a * d + i]; }
        for (int i = 0; i < d; i++) w->D[(size_t)a * d + i] /= sqrt(n);
    }
    for (int i = 0; i < d; i++) w->mean[i] = 0.5 * rnorm(r);
}

static void make_sae(gen_sae *g, const sae_spec *sp, const world *w, int precision, rng *r)
{
    int d = w->d, m = w->m;
    memset(g, 0, sizeof *g);
    g->sp = *sp;
    g->W_enc = xcalloc((size_t)d * m, sizeof(double));
    g->W_dec = xcalloc((size_t)d * m, sizeof(double));
    g->b_dec = xcalloc((size_t)d, sizeof(double));
    double *be = xcalloc((size_t)m, sizeof(double));
    for (int j = 0; j < m; j++) {
        /* Decoder row: a noisy ground-truth direction with a varied norm. */
        double n2 = 0, len = 0.5 + 1.5 * runif(r);
        for (int i = 0; i < d; i++) {
            double v = (w->D[(size_t)(j % w->n_true) * d + i] + 0.15 * rnorm(r)) * len;
            g->W_dec[(size_t)j * d + i] = v;
            n2 += v * v;
        }
        for (int i = 0; i < d; i++)
            g->W_enc[(size_t)i * m + j] = 0.8 * g->W_dec[(size_t)j * d + i] / n2 + 0.03 * rnorm(r);
        be[j] = -0.25 + 0.1 * rnorm(r);
    }
    for (int i = 0; i < d; i++) g->b_dec[i] = w->mean[i] + 0.05 * rnorm(r);
    /* The last three latents are dead. */
    if (sp->arch == REF_GATED) {
        g->b_gate = be;
        g->r_mag = xcalloc((size_t)m, sizeof(double));
        g->b_mag = xcalloc((size_t)m, sizeof(double));
        for (int j = 0; j < m; j++) {
            g->r_mag[j] = 0.3 * rnorm(r);
            g->b_mag[j] = 0.1 * rnorm(r);
            if (j >= m - 3) g->b_gate[j] = -50;
        }
    } else {
        g->b_enc = be;
        /* (signed top-k has no ReLU: a bias of -50 would make them fire always) */
        if (sp->arch != REF_SIGNED_TOPK)
            for (int j = m - 3; j < m; j++) be[j] = -50;
        if (sp->arch == REF_JUMPRELU) {
            g->threshold = xcalloc((size_t)m, sizeof(double));
            if (sp->batchtopk) {
                /* The reference sees a plain jumprelu whose thresholds are all
                 * equal (0.25 is exact in every dtype); the file holds one number. */
                for (int j = 0; j < m; j++) g->threshold[j] = 0.25;
            } else {
                for (int j = 0; j < m; j++) g->threshold[j] = 0.05 + 0.4 * runif(r);
                for (int j = m - 5; j < m - 3; j++) g->threshold[j] = 1000; /* dead through the threshold */
            }
        }
    }
    if (w->exact) {
        /* W_enc on the grid 2^-4 (|w| < 1), biases on 2^-8, r_mag = 0: with
         * x - b_dec on 2^-8 and |x - b_dec| < 16, every partial sum of
         * x'.W_enc + b is a multiple of 2^-12 below 2^10, i.e. exact in float
         * and double whatever the summation order. */
        for (size_t i = 0; i < (size_t)d * m; i++) g->W_enc[i] = grid(g->W_enc[i], 4, 0.9375);
        for (int i = 0; i < d; i++) g->b_dec[i] = grid(g->b_dec[i], 8, 7.99);
        double *vecm[] = {g->b_enc, g->threshold, g->b_gate, g->b_mag};
        for (int a = 0; a < 4; a++)
            if (vecm[a])
                for (int j = 0; j < m; j++) vecm[a][j] = grid(vecm[a][j], 8, 1000);
        if (g->r_mag)
            for (int j = 0; j < m; j++) g->r_mag[j] = 0;
        if (sp->arch == REF_TOPK) /* latent 2q+1 is an encoder copy of 2q: exact ties, lower index wins */
            for (int j = 1; j < m; j += 2) {
                for (int i = 0; i < d; i++) g->W_enc[(size_t)i * m + j] = g->W_enc[(size_t)i * m + j - 1];
                g->b_enc[j] = g->b_enc[j - 1];
            }
    }
    const int dout = sp->d_out > 0 ? sp->d_out : d;
    if (sp->d_out > 0) { /* a transcoder: its decoder writes the targets' space */
        free(g->W_dec);
        free(g->b_dec);
        g->W_dec = xcalloc((size_t)m * dout, sizeof(double));
        g->b_dec = xcalloc((size_t)dout, sizeof(double));
        for (size_t i = 0; i < (size_t)m * dout; i++) g->W_dec[i] = 0.3 * rnorm(r);
        for (int i = 0; i < dout; i++) g->b_dec[i] = 0.1 * rnorm(r);
    }
    if (sp->skip) {
        g->W_skip = xcalloc((size_t)dout * d, sizeof(double));
        for (size_t i = 0; i < (size_t)dout * d; i++) g->W_skip[i] = 0.05 * rnorm(r);
    }
    if (precision == 32) { /* float32 runs: the tensors are written as F32 */
        for (size_t i = 0; i < (size_t)d * m; i++) g->W_enc[i] = to_f32(g->W_enc[i]);
        for (size_t i = 0; i < (size_t)dout * m; i++) g->W_dec[i] = to_f32(g->W_dec[i]);
        for (size_t i = 0; g->W_skip && i < (size_t)dout * d; i++) g->W_skip[i] = to_f32(g->W_skip[i]);
        double *vecm[] = {g->b_enc, g->threshold, g->b_gate, g->r_mag, g->b_mag};
        for (int a = 0; a < 5; a++)
            if (vecm[a])
                for (int j = 0; j < m; j++) vecm[a][j] = to_f32(vecm[a][j]);
        for (int i = 0; i < dout; i++) g->b_dec[i] = to_f32(g->b_dec[i]);
    }
    ref_sae *s = &g->r;
    s->arch = sp->arch;
    s->d_in = d;
    s->d_sae = m;
    s->k = sp->k;
    s->rescale = sp->rescale;
    s->apply_b_dec = sp->apply_b_dec;
    s->norm = sp->norm;
    s->scale = sp->norm == REF_NORM_EXPAVG ? sp->scale : 1.0;
    s->W_enc = g->W_enc;
    s->b_enc = g->b_enc;
    s->W_dec = g->W_dec;
    s->b_dec = g->b_dec;
    s->threshold = g->threshold;
    s->b_gate = g->b_gate;
    s->r_mag = g->r_mag;
    s->b_mag = g->b_mag;
    s->d_out = sp->d_out;
    s->W_skip = g->W_skip;
}

static const char *arch_name(ref_arch a)
{
    static const char *n[] = {"standard", "topk", "jumprelu", "gated", "signed_topk", "groupmax"};
    return n[a];
}
static const char *norm_name(ref_norm a)
{
    static const char *n[] = {"none", "layer_norm", "constant_norm_rescale", "expected_average_only_in"};
    return n[a];
}

/* sparsify's layout (SparseCoder.save_to_disk): cfg.json with d_in,
 * num_latents, k, activation (and `signed` for the older signed top-k);
 * sae.safetensors with encoder.weight [d_sae, d_in], encoder.bias, W_dec
 * [d_sae, d_in], b_dec. Written here from the canonical weights, apart from
 * the reader (nativesae.c). */
static void write_sparsify(const char *dir, const gen_sae *g, sv_dtype dt)
{
    const ref_sae *s = &g->r;
    int d = s->d_in, m = s->d_sae;
    char path[4096];
    double *enc = xcalloc((size_t)d * m, sizeof *enc);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < m; j++) enc[(size_t)j * d + i] = g->W_enc[(size_t)i * m + j];
    sv_st_wtensor ts[4] = {{"encoder.weight", dt, 2, {m, d}, enc}, {"encoder.bias", dt, 1, {m}, g->b_enc},
                           {"W_dec", dt, 2, {m, d}, g->W_dec}, {"b_dec", dt, 1, {d}, g->b_dec}};
    snprintf(path, sizeof path, "%s/sae.safetensors", dir);
    if (sv_st_write(path, ts, 4) != SV_OK) die("sv_st_write failed", path);
    free(enc);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "activation", s->arch == REF_GROUPMAX ? "groupmax" : "topk");
    if (s->arch == REF_SIGNED_TOPK) cJSON_AddBoolToObject(c, "signed", 1);
    cJSON_AddNumberToObject(c, "k", s->k);
    cJSON_AddNumberToObject(c, "num_latents", m);
    cJSON_AddNumberToObject(c, "d_in", d);
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    write_json(path, c);
    cJSON_Delete(c);
}

static void write_sae(const char *dir, const gen_sae *g, int precision)
{
    const ref_sae *s = &g->r;
    int d = s->d_in, m = s->d_sae;
    sv_dtype dt = precision == 32 ? SV_DT_F32 : SV_DT_F64;
    char path[4096];
    mkdirs(dir);
    if (s->arch == REF_SIGNED_TOPK || s->arch == REF_GROUPMAX) {
        write_sparsify(dir, g, dt);
        return;
    }
    sv_st_wtensor ts[8];
    int nt = 0;
    ts[nt++] = (sv_st_wtensor){"W_enc", dt, 2, {d, m}, g->W_enc};
    if (s->arch == REF_GATED) {
        ts[nt++] = (sv_st_wtensor){"b_gate", dt, 1, {m}, g->b_gate};
        ts[nt++] = (sv_st_wtensor){"r_mag", dt, 1, {m}, g->r_mag};
        ts[nt++] = (sv_st_wtensor){"b_mag", dt, 1, {m}, g->b_mag};
    } else {
        ts[nt++] = (sv_st_wtensor){"b_enc", dt, 1, {m}, g->b_enc};
    }
    const int dout = s->d_out > 0 ? s->d_out : d;
    ts[nt++] = (sv_st_wtensor){"W_dec", dt, 2, {m, dout}, g->W_dec};
    ts[nt++] = (sv_st_wtensor){"b_dec", dt, 1, {dout}, g->b_dec};
    if (g->W_skip) ts[nt++] = (sv_st_wtensor){"W_skip", dt, 2, {dout, d}, g->W_skip};
    if (s->arch == REF_JUMPRELU && g->sp.batchtopk) ts[nt++] = (sv_st_wtensor){"threshold", dt, 0, {0}, g->threshold};
    else if (s->arch == REF_JUMPRELU) ts[nt++] = (sv_st_wtensor){"threshold", dt, 1, {m}, g->threshold};
    double *sf = NULL;
    if (g->sp.cfg_form == CFG_SF_ONES || g->sp.cfg_form == CFG_SF_BAD) {
        sf = xcalloc((size_t)m, sizeof *sf);
        for (int j = 0; j < m; j++) sf[j] = g->sp.cfg_form == CFG_SF_ONES ? 1.0 : 1.5;
        ts[nt++] = (sv_st_wtensor){"scaling_factor", dt, 1, {m}, sf};
    }
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    if (sv_st_write(path, ts, nt) != SV_OK) die("sv_st_write failed", path);
    free(sf);

    cJSON *c = cJSON_CreateObject();
    const char *an = g->sp.batchtopk ? "batchtopk" : arch_name(s->arch);
    if (s->d_out > 0) /* SAELens 6 transcoder architectures */
        an = s->arch == REF_JUMPRELU ? (g->W_skip ? "jumprelu_skip_transcoder" : "jumprelu_transcoder")
                                     : (g->W_skip ? "skip_transcoder" : "transcoder");
    cJSON_AddStringToObject(c, "architecture", an);
    cJSON_AddNumberToObject(c, "d_in", d);
    if (s->d_out > 0) cJSON_AddNumberToObject(c, "d_out", s->d_out);
    cJSON_AddNumberToObject(c, "d_sae", m);
    if (s->arch == REF_TOPK) {
        cJSON_AddNumberToObject(c, "k", s->k);
        cJSON_AddBoolToObject(c, "rescale_acts_by_decoder_norm", s->rescale);
    }
    cJSON_AddBoolToObject(c, "apply_b_dec_to_input", s->apply_b_dec);
    cJSON_AddStringToObject(c, "normalize_activations", norm_name(s->norm));
    cJSON_AddStringToObject(c, "dtype", g->sp.cfg_form == CFG_BF16 ? "bfloat16" : precision == 32 ? "float32" : "float64");
    cJSON_AddStringToObject(c, "model_name", "test-lm");
    if (g->sp.cfg_form == CFG_PRE6_TOPK || g->sp.cfg_form == CFG_V6_STANDARD) {
        cJSON_ReplaceItemInObject(c, "architecture", cJSON_CreateString("standard"));
        cJSON_DeleteItemFromObject(c, "k");
        cJSON_DeleteItemFromObject(c, "rescale_acts_by_decoder_norm");
        cJSON_AddStringToObject(c, g->sp.cfg_form == CFG_PRE6_TOPK ? "activation_fn_str" : "activation_fn", "topk");
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(c, "activation_fn_kwargs"), "k", g->sp.k);
        if (g->sp.cfg_form == CFG_V6_STANDARD)
            cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "metadata"), "sae_lens_version", "6.5.0");
    }
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    write_json(path, c);
    cJSON_Delete(c);
    if (s->norm == REF_NORM_EXPAVG && g->sp.scale_mode == 2) {
        char js[128];
        snprintf(js, sizeof js, "{\"scaling_factor\": %.17g}\n", g->sp.scale);
        snprintf(path, sizeof path, "%s/activation_scaler.json", dir);
        write_text(path, js);
    }
}

/* A native-format SAE: the canonical weights as float64 files and a
 * meta.json, written into DIR.in, then tests/formats_write.py (numpy, no
 * saeval code) writes the project's own files into DIR. */
static void dump_f64(const char *dir, const char *name, const double *v, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f64", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot create", path);
    for (size_t i = 0; i < n; i++) {
        unsigned char b[8];
        uint64_t u;
        memcpy(&u, &v[i], 8);
        for (int q = 0; q < 8; q++) b[q] = (unsigned char)(u >> (8 * q)); /* little-endian */
        if (fwrite(b, 1, 8, f) != 8) die("cannot write", path);
    }
    if (fclose(f) != 0) die("cannot write", path);
}

static void write_native(const char *dir, const gen_sae *g, int precision)
{
    const ref_sae *s = &g->r;
    const int d = s->d_in, m = s->d_sae, dout = s->d_out > 0 ? s->d_out : d;
    char in[4200], meta[1024], cmd[12800];
    snprintf(in, sizeof in, "%s.in", dir);
    mkdirs(in);
    dump_f64(in, "W_enc", g->W_enc, (size_t)d * m);
    dump_f64(in, "b_enc", g->b_enc, (size_t)m);
    dump_f64(in, "W_dec", g->W_dec, (size_t)m * dout);
    dump_f64(in, "b_dec", g->b_dec, (size_t)dout);
    if (g->threshold) dump_f64(in, "threshold", g->threshold, (size_t)m);
    if (g->W_skip) dump_f64(in, "W_skip", g->W_skip, (size_t)dout * d);
    const char *dt = precision == 32 ? "float32" : "float64";
    if (strcmp(g->sp.fmt, "sparsify") == 0)
        snprintf(meta, sizeof meta, "{\"format\": \"sparsify\", \"d_in\": %d, \"d_sae\": %d, \"d_out\": %d, \"dtype\": \"%s\", "
                 "\"activation\": \"topk\", \"k\": %d, \"skip\": %s, \"transcode\": %s}\n", d, m, dout, dt, s->k,
                 g->W_skip ? "true" : "false", s->d_out > 0 ? "true" : "false");
    else
        snprintf(meta, sizeof meta, "{\"format\": \"%s\", \"d_in\": %d, \"d_sae\": %d, \"d_out\": %d, \"dtype\": \"%s\"}\n",
                 g->sp.fmt, d, m, dout, dt);
    char mp[4300];
    snprintf(mp, sizeof mp, "%s/meta.json", in);
    write_text(mp, meta);
    const char *py = getenv("SV_PYTHON"), *script = getenv("SV_FORMATS_WRITE");
    if (!script) die("SV_FORMATS_WRITE (tests/formats_write.py) is not set", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py ? py : "python3", script, in, dir);
    if (system(cmd) != 0) die("formats_write.py failed", dir);
}

static int is_masked_id(int64_t id, const ds_spec *ds, const case_spec *cs)
{
    for (int i = 0; i < ds->n_special; i++)
        if (ds->special[i] == id) return 1;
    for (int i = 0; i < cs->n_exclude; i++)
        if (cs->exclude[i] == id) return 1;
    return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median |decision quantity| over the evaluated tokens: the scale margins are measured in. */
static double preact_scale(const gen_sae *g, const gen_ds *ds)
{
    int m = g->r.d_sae;
    double *h = xcalloc((size_t)m, sizeof(double)), *gt = xcalloc((size_t)m, sizeof(double));
    double *all = xcalloc((size_t)ds->n_tok * m * 2, sizeof(double));
    size_t n = 0;
    for (int64_t t = 0; t < ds->n_tok; t++) {
        if (ds->mask[t]) continue;
        ref_preacts(&g->r, ds->x + (size_t)t * ds->d, h, gt);
        for (int j = 0; j < m; j++) {
            all[n++] = fabs(h[j]);
            if (g->r.arch == REF_GATED) all[n++] = fabs(gt[j]);
        }
    }
    qsort(all, n, sizeof(double), cmp_dbl);
    double med = n ? all[n / 2] : 1.0;
    free(h); free(gt); free(all);
    return med;
}

static void make_ds(gen_ds *g, const ds_spec *sp, const case_spec *cs, const world *w, gen_sae *saes, rng *r)
{
    int d = w->d;
    memset(g, 0, sizeof *g);
    g->d = d;
    g->n_seq = sp->n_seq;
    g->off = xcalloc((size_t)sp->n_seq + 1, sizeof(int64_t));
    for (int s = 0; s < sp->n_seq; s++)
        g->off[s + 1] = g->off[s] + (sp->context_size ? sp->context_size : rint_in(r, sp->min_len, sp->max_len));
    g->n_tok = g->off[sp->n_seq];
    g->tok = xcalloc((size_t)g->n_tok, sizeof(int64_t));
    g->mask = xcalloc((size_t)g->n_tok, 1);
    g->x = xcalloc((size_t)g->n_tok * d, sizeof(double));
    for (int s = 0; s < sp->n_seq; s++)
        for (int64_t t = g->off[s]; t < g->off[s + 1]; t++) {
            g->tok[t] = t == g->off[s] ? 0 : rint_in(r, 2, 60); /* 0 = BOS */
            if (sp->masked_batch >= 0 && s / cs->legacy_B == sp->masked_batch) g->tok[t] = 1;
        }
    if (sp->zero_tokens) { /* exact zeros and a tiny token, unmasked */
        for (int q = 0; q < 3; q++) {
            int64_t t = g->off[20 + q] + 1;
            g->tok[t] = 50;
        }
    }
    for (int64_t t = 0; t < g->n_tok; t++)
        g->mask[t] = sp->token_ids && is_masked_id(g->tok[t], sp, cs);
    for (int64_t t = 0; t < g->n_tok; t++) sample_token(r, w, sp->shift, sp->dtype, g->x + (size_t)t * d);
    if (sp->zero_tokens) {
        for (int q = 0; q < 3; q++) {
            double *x = g->x + (size_t)(g->off[20 + q] + 1) * d;
            for (int i = 0; i < d; i++) x[i] = q < 2 ? 0.0 : to_store(1e-6, sp->dtype);
        }
    }
    /* Margins: resample evaluated tokens that sit too close to a boundary. */
    double eps = cs->precision == 32 ? 1e-3 : 1e-9;
    /* With thousands of latents almost every token has one within 1e-3 of
     * a boundary; float32 pre-activation error at d_in 16 is ~1e-6 of the
     * scale, so 2e-5 still keeps decisions unambiguous. */
    if (cs->precision == 32 && cs->d_sae > 2048) eps = 2e-5;
    if (cs->exact) eps = -1; /* exact pre-activations: boundaries are tested on purpose */
    double scale[8];
    for (int k = 0; k < cs->n_saes; k++) scale[k] = preact_scale(&saes[k], g);
    int64_t resampled = 0;
    for (int64_t t = 0; t < g->n_tok; t++) {
        if (g->mask[t]) continue;
        double *x = g->x + (size_t)t * d;
        int fixed_token = sp->zero_tokens && g->tok[t] == 50;
        for (int tries = 0;; tries++) {
            int ok = 1;
            for (int k = 0; k < cs->n_saes && ok; k++)
                if (ref_margin(&saes[k].r, x) < eps * scale[k]) ok = 0;
            if (ok) break;
            if (fixed_token) die("a planted zero token sits on a decision boundary", sp->name);
            if (tries > 10000) die("cannot satisfy margins", sp->name);
            sample_token(r, w, sp->shift, sp->dtype, x);
            resampled++;
        }
    }
    if (cs->d_targets > 0) {
        /* /targets: a fixed linear map of the final x plus noise, rounded to
         * the store's dtype (what a transcoder learns to predict). */
        const int dy = cs->d_targets;
        rng rt = {cs->seed * 7 + 1};
        double *A = xcalloc((size_t)dy * d, sizeof(double));
        for (size_t i = 0; i < (size_t)dy * d; i++) A[i] = 0.3 * rnorm(&rt);
        g->dy = dy;
        g->y = xcalloc((size_t)g->n_tok * dy, sizeof(double));
        for (int64_t t = 0; t < g->n_tok; t++)
            for (int o = 0; o < dy; o++) {
                double a = 0.1 * rnorm(r);
                for (int i = 0; i < d; i++) a += A[(size_t)o * d + i] * g->x[(size_t)t * d + i];
                g->y[(size_t)t * dy + o] = to_store(a, sp->dtype);
            }
        free(A);
    }
    fprintf(stderr, "test_e2e: %s/%s: %lld tokens, %lld sequences, %lld resampled for margins\n", cs->name,
            sp->name, (long long)g->n_tok, (long long)g->n_seq, (long long)resampled);
}

static void write_ds(const char *path, const gen_ds *g, const ds_spec *sp)
{
    float *xf = xcalloc((size_t)g->n_tok * g->d, sizeof(float));
    for (size_t i = 0; i < (size_t)g->n_tok * g->d; i++) {
        xf[i] = (float)g->x[i];
        if ((double)xf[i] != g->x[i]) die("value not representable in float", path);
    }
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = sp->dtype;
    o.chunked = sp->chunked;
    o.chunk_rows = sp->chunk_rows;
    o.chunk_cols = sp->chunk_cols;
    if (sp->context_size) o.context_size = sp->context_size;
    else { o.seq_offsets = g->off; o.n_seq = g->n_seq; }
    o.omit_sequences = sp->omit_sequences;
    o.token_ids = sp->token_ids ? g->tok : NULL;
    o.special_ids = sp->n_special ? sp->special : NULL;
    o.n_special = sp->n_special;
    o.model_name = "test-lm";
    o.hook_name = "blocks.0.hook_resid_post";
    o.dataset_name = sp->name;
    float *yf = NULL;
    if (g->y) {
        yf = xcalloc((size_t)g->n_tok * g->dy, sizeof(float));
        for (size_t i = 0; i < (size_t)g->n_tok * g->dy; i++) yf[i] = (float)g->y[i];
        o.targets = yf;
        o.d_out = g->dy;
    }
    if (sv_store_write(path, xf, g->n_tok, g->d, &o) != SV_OK) {
        fprintf(stderr, "test_e2e: %s\n", sv_errmsg());
        die("sv_store_write failed", path);
    }
    free(xf);
    free(yf);
}

/* ---------- expected.json ---------- */

static cJSON *num_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}
static cJSON *int_array(const int64_t *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}
static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *pair_json(const case_spec *cs, const gen_sae *g, const ds_spec *ds, const ref_metrics *m)
{
    const ref_sae *s = &g->r;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "sae_id", g->sp.name);
    cJSON_AddStringToObject(p, "dataset", ds->name);
    cJSON *c = cJSON_AddObjectToObject(p, "sae_cfg");
    cJSON_AddStringToObject(c, "architecture", arch_name(s->arch));
    cJSON_AddNumberToObject(c, "d_in", s->d_in);
    cJSON_AddNumberToObject(c, "d_sae", s->d_sae);
    if (s->arch == REF_TOPK || s->arch == REF_SIGNED_TOPK || s->arch == REF_GROUPMAX) {
        cJSON_AddNumberToObject(c, "k", s->k);
        cJSON_AddBoolToObject(c, "rescale_acts_by_decoder_norm", s->rescale);
    }
    cJSON_AddBoolToObject(c, "apply_b_dec_to_input", s->apply_b_dec);
    cJSON_AddStringToObject(c, "normalize_activations", norm_name(s->norm));
    if (s->norm == REF_NORM_EXPAVG) cJSON_AddNumberToObject(c, "scaling_factor", s->scale);
    if (s->d_out > 0 || s->W_skip) {
        cJSON_AddNumberToObject(c, "d_out", s->d_out > 0 ? s->d_out : s->d_in);
        cJSON_AddBoolToObject(c, "transcoder", s->d_out > 0);
        cJSON_AddBoolToObject(c, "skip_connection", s->W_skip != NULL);
    }
    cJSON *e = cJSON_AddObjectToObject(p, "eval_cfg");
    cJSON_AddStringToObject(e, "precision", cs->precision == 32 ? "float32" : "float64");
    cJSON_AddNumberToObject(e, "legacy_batch_sequences", cs->legacy_B);
    cJSON_AddItemToObject(e, "exclude_token_ids", int_array(cs->exclude, cs->n_exclude));
    cJSON_AddNumberToObject(e, "dead_density_threshold", cs->dead_density > 0 ? cs->dead_density : 1e-6);
    if (g->sp.cfg_form == CFG_BF16)
        cJSON_AddStringToObject(e, "sae_dtype", cs->precision == 32
                                ? "weights read from bfloat16 and computed in the run's precision float32, not in bfloat16"
                                : "weights read from bfloat16 and computed in the run's precision float64, not in bfloat16");

    cJSON *mt = cJSON_AddObjectToObject(p, "metrics");
    cJSON *rq = cJSON_AddObjectToObject(mt, "reconstruction_quality");
    add_num(rq, "mse", m->mse);
    add_num(rq, "explained_variance", m->explained_variance);
    add_num(rq, "fvu", m->fvu);
    add_num(rq, "explained_variance_legacy", m->explained_variance_legacy);
    add_num(rq, "cossim", m->cossim);
    cJSON *sh = cJSON_AddObjectToObject(mt, "shrinkage");
    add_num(sh, "l2_norm_in", m->l2_norm_in);
    add_num(sh, "l2_norm_out", m->l2_norm_out);
    add_num(sh, "l2_ratio", m->l2_ratio);
    add_num(sh, "relative_reconstruction_bias", m->relative_reconstruction_bias);
    cJSON *sp = cJSON_AddObjectToObject(mt, "sparsity");
    add_num(sp, "l0", m->l0);
    add_num(sp, "l1", m->l1);
    cJSON_AddNumberToObject(sp, "dead_features", (double)m->dead_features);
    add_num(sp, "dead_fraction", m->dead_fraction);
    add_num(sp, "dead_fraction_below_density", m->dead_fraction_below_density);
    cJSON_AddItemToObject(sp, "l0_histogram", int_array(m->l0_histogram, m->hist_len));
    cJSON *ts = cJSON_AddObjectToObject(mt, "token_stats");
    cJSON_AddNumberToObject(ts, "tokens_evaluated", (double)m->tokens_evaluated);
    cJSON_AddNumberToObject(ts, "tokens_masked", (double)m->tokens_masked);
    cJSON_AddNumberToObject(ts, "sequences", (double)m->sequences);

    cJSON *fm = cJSON_AddObjectToObject(p, "feature_metrics");
    cJSON_AddItemToObject(fm, "firing_counts", int_array(m->firing_counts, m->d_sae));
    cJSON_AddItemToObject(fm, "feature_density", num_array(m->feature_density, m->d_sae));
    cJSON_AddItemToObject(fm, "consistent_activation_heuristic", num_array(m->consistent_activation_heuristic, m->d_sae));
    cJSON_AddItemToObject(fm, "encoder_norm", num_array(m->encoder_norm, m->d_sae));
    cJSON_AddItemToObject(fm, "encoder_bias", num_array(m->encoder_bias, m->d_sae));
    cJSON_AddItemToObject(fm, "encoder_decoder_cosine_sim", num_array(m->encoder_decoder_cosine_sim, m->d_sae));
    return p;
}

static void write_config(const char *dir, const case_spec *cs, const char *extra_key)
{
    char path[4096];
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "output_dir", "results");
    cJSON *sa = cJSON_AddArrayToObject(c, "saes");
    for (int k = 0; k < cs->n_saes; k++) {
        const sae_spec *sp = &cs->saes[k];
        char rel[512];
        snprintf(rel, sizeof rel, "saes/%s", sp->name);
        if (sp->fmt && strcmp(sp->fmt, "gemma_scope") == 0 && sp->d_out == cs->d_in) {
            cJSON *o = cJSON_CreateObject(); /* the file cannot tell: the config declares it */
            cJSON_AddStringToObject(o, "path", rel);
            cJSON_AddBoolToObject(o, "transcoder", 1);
            cJSON_AddItemToArray(sa, o);
        } else if (sp->norm == REF_NORM_EXPAVG && sp->scale_mode == 1) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "path", rel);
            cJSON_AddNumberToObject(o, "scaling_factor", sp->scale);
            cJSON_AddItemToArray(sa, o);
        } else {
            cJSON_AddItemToArray(sa, cJSON_CreateString(rel));
        }
    }
    cJSON *da = cJSON_AddArrayToObject(c, "datasets");
    for (int i = 0; i < cs->n_ds; i++) {
        cJSON *o = cJSON_CreateObject();
        char rel[512];
        snprintf(rel, sizeof rel, "stores/%s", cs->ds[i].file);
        cJSON_AddStringToObject(o, "name", cs->ds[i].name);
        cJSON_AddStringToObject(o, "path", rel);
        cJSON_AddStringToObject(o, "role", i == 0 ? "in_sample" : "oos");
        cJSON_AddItemToArray(da, o);
    }
    cJSON_AddItemToObject(c, "exclude_token_ids", int_array(cs->exclude, cs->n_exclude));
    if (cs->write_legacy_B) cJSON_AddNumberToObject(c, "legacy_batch_sequences", cs->legacy_B);
    if (cs->dead_density > 0) cJSON_AddNumberToObject(c, "dead_density_threshold", cs->dead_density);
    cJSON_AddStringToObject(c, "precision", cs->precision == 32 ? "float32" : "float64");
    if (extra_key) cJSON_AddNumberToObject(c, extra_key, 1);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_json(path, c);
    cJSON_Delete(c);
}

static void free_sae(gen_sae *g)
{
    free(g->W_enc); free(g->W_dec); free(g->b_dec); free(g->b_enc); free(g->threshold);
    free(g->b_gate); free(g->r_mag); free(g->b_mag); free(g->W_skip);
}
static void free_ds(gen_ds *g) { free(g->off); free(g->tok); free(g->mask); free(g->x); free(g->y); }

/* Exact cases: put one evaluated token of `ds` exactly on each latent's
 * boundary: jumprelu h == threshold (must not fire: strict >), gated gate
 * pre-activation == 0 (must stay closed). */
static void plant_boundaries(gen_sae *g, const gen_ds *ds, rng *r)
{
    int m = g->r.d_sae;
    if (g->r.arch != REF_JUMPRELU && g->r.arch != REF_GATED) return;
    double *h = xcalloc((size_t)m, sizeof(double)), *gt = xcalloc((size_t)m, sizeof(double));
    int planted = 0;
    for (int j = 0; j < m - 5; j++) {
        int64_t start = (int64_t)(runif(r) * (double)ds->n_tok);
        for (int64_t q = 0; q < ds->n_tok; q++) {
            int64_t t = (start + q) % ds->n_tok;
            if (ds->mask[t]) continue;
            ref_preacts(&g->r, ds->x + (size_t)t * ds->d, h, gt);
            if (h[j] <= 0) continue;
            if (g->r.arch == REF_JUMPRELU) g->threshold[j] = h[j];
            else g->b_gate[j] -= gt[j]; /* gate pre-activation of token t becomes exactly 0 */
            planted++;
            break;
        }
    }
    fprintf(stderr, "test_e2e: %s: %d latents with a token exactly on the boundary\n", g->sp.name, planted);
    free(h);
    free(gt);
}

/* Generate a case: SAEs, stores (margins against all SAEs), config, expected. */
static void gen_case(const char *dir, const case_spec *cs, int with_expected)
{
    char path[4096];
    rng r = {cs->seed};
    world w;
    make_world(&w, cs->d_in, cs->d_sae, &r);
    w.exact = cs->exact;
    gen_sae *saes = xcalloc((size_t)cs->n_saes, sizeof *saes);
    for (int k = 0; k < cs->n_saes; k++) make_sae(&saes[k], &cs->saes[k], &w, cs->precision, &r);
    snprintf(path, sizeof path, "%s/stores", dir);
    mkdirs(path);
    gen_ds *dss = xcalloc((size_t)cs->n_ds, sizeof *dss);
    for (int i = 0; i < cs->n_ds; i++) {
        make_ds(&dss[i], &cs->ds[i], cs, &w, saes, &r);
        snprintf(path, sizeof path, "%s/stores/%s", dir, cs->ds[i].file);
        write_ds(path, &dss[i], &cs->ds[i]);
    }
    if (cs->exact)
        for (int k = 0; k < cs->n_saes; k++) plant_boundaries(&saes[k], &dss[0], &r);
    for (int k = 0; k < cs->n_saes; k++) {
        snprintf(path, sizeof path, "%s/saes/%s", dir, cs->saes[k].name);
        if (cs->saes[k].fmt) write_native(path, &saes[k], cs->precision);
        else write_sae(path, &saes[k], cs->precision);
    }
    write_config(dir, cs, NULL);
    if (with_expected) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "case", cs->name);
        cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
        for (int k = 0; k < cs->n_saes; k++) /* SAE-major, like all_eval_results.json */
            for (int i = 0; i < cs->n_ds; i++) {
                ref_data rd = {dss[i].n_tok, cs->d_in, dss[i].x, dss[i].mask, dss[i].n_seq, dss[i].off, cs->legacy_B,
                              cs->dead_density, saes[k].r.d_out > 0 ? dss[i].y : NULL};
                ref_metrics m;
                if (ref_eval(&saes[k].r, &rd, &m) != 0) die("ref_eval failed", cs->name);
                cJSON_AddItemToArray(pairs, pair_json(cs, &saes[k], &cs->ds[i], &m));
                ref_metrics_free(&m);
            }
        snprintf(path, sizeof path, "%s/expected.json", dir);
        write_json(path, root);
        cJSON_Delete(root);
    }
    for (int k = 0; k < cs->n_saes; k++) free_sae(&saes[k]);
    for (int i = 0; i < cs->n_ds; i++) free_ds(&dss[i]);
    free(saes); free(dss); free(w.D); free(w.mean);
}

/* Error cases: one SAE, one store, one thing broken. The fragments that
 * stderr must contain go to DIR/expect_stderr.txt, one per line. */
static int gen_error(const char *dir, const char *name)
{
    case_spec cs = {"err", 32, 24, 32, 16, 1, 0, {0}, 1,
                    { {"good_sae", REF_STANDARD, 0, 0, 1, REF_NORM_NONE, 0, 0, 0, 0, 0, 0, NULL} }, 1,
                    { {"ds", "ds.h5", SV_STORE_F32, 0, 0, 0, 10, 16, 0, 0, 0, 0, {0}, -1, 0, 0.0, 0} }, 401, 0, 0, 0};
    char path[4096];
    const char *frag = NULL;
    const char *extra_key = NULL;
    if (strcmp(name, "err_missing_sae") == 0) {
        gen_case(dir, &cs, 0);
        cs.saes[0].name = "no_such_sae";
        frag = "no_such_sae\n";
    } else if (strcmp(name, "err_d_in") == 0) {
        gen_case(dir, &cs, 0);
        /* Rewrite the SAE with d_in 16 against the 24-wide store. */
        rng r = {7};
        world w;
        make_world(&w, 16, 32, &r);
        gen_sae g;
        make_sae(&g, &cs.saes[0], &w, 32, &r);
        snprintf(path, sizeof path, "%s/saes/good_sae", dir);
        write_sae(path, &g, 32);
        free_sae(&g); free(w.D); free(w.mean);
        frag = "d_in\ngood_sae\n";
    } else if (strcmp(name, "err_arch") == 0) {
        gen_case(dir, &cs, 0);
        snprintf(path, sizeof path, "%s/saes/good_sae/cfg.json", dir);
        write_text(path, "{\"architecture\": \"transcoder_x\", \"d_in\": 24, \"d_sae\": 32,"
                         " \"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\","
                         " \"dtype\": \"float32\"}\n");
        frag = "cfg.json\narchitecture\n";
    } else if (strcmp(name, "err_scaling_factor") == 0) {
        cs.saes[0].cfg_form = CFG_SF_BAD; /* SAELens 5's finetuning scaling factor, not 1: refused */
        gen_case(dir, &cs, 0);
        frag = "sae_weights.safetensors\nscaling_factor\nnot 1\n";
    } else if (strcmp(name, "err_groupmax_cfg") == 0) {
        gen_case(dir, &cs, 0); /* no SAELens cfg names groupmax: read from sparsify files only */
        snprintf(path, sizeof path, "%s/saes/good_sae/cfg.json", dir);
        write_text(path, "{\"architecture\": \"groupmax\", \"d_in\": 24, \"d_sae\": 32, \"k\": 4}\n");
        frag = "cfg.json\narchitecture\nnot a SAELens architecture\n";
    } else if (strcmp(name, "err_tc_no_targets") == 0 || strcmp(name, "err_tc_targets_shape") == 0) {
        /* A transcoder against a store without /targets, or with /targets of
         * another width (16 against its d_out 20). */
        const sae_spec tc = {"tc_sae", REF_STANDARD, 0, 0, 0, REF_NORM_NONE, 0, 0, 0, 0, 20, 0, NULL};
        cs.saes[0] = tc;
        cs.d_targets = strcmp(name, "err_tc_targets_shape") == 0 ? 16 : 0;
        gen_case(dir, &cs, 0);
        frag = cs.d_targets ? "ds.h5: /targets: d_out 16\ntc_sae\n" : "ds.h5: /targets: missing\ntc_sae\n";
    } else if (strcmp(name, "err_noseq") == 0) {
        cs.ds[0].file = "noseq.h5";
        cs.ds[0].omit_sequences = 1;
        gen_case(dir, &cs, 0);
        frag = "noseq.h5\n";
    } else if (strcmp(name, "err_unknown_key") == 0) {
        gen_case(dir, &cs, 0);
        extra_key = "bogus_key";
        frag = "config.json\nbogus_key\n";
    } else {
        return 0;
    }
    write_config(dir, &cs, extra_key);
    snprintf(path, sizeof path, "%s/expect_stderr.txt", dir);
    write_text(path, frag);
    return 1;
}

static int cmd_gen(const char *dir, const char *name)
{
    mkdirs(dir);
    if (gen_error(dir, name)) return 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (strcmp(cases[i].name, name) == 0) {
            gen_case(dir, &cases[i], 1);
            return 0;
        }
    fprintf(stderr, "test_e2e: unknown case %s\n", name);
    return 1;
}

/* ---------- checker ---------- */

static double g_tol;
static int g_bad;
static const int MAX_REPORT = 200;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void mismatch(const char *where, const char *fmt, ...)
{
    if (g_bad++ >= MAX_REPORT) return;
    va_list ap;
    va_start(ap, fmt);
    printf("MISMATCH %s: ", where);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* Keys whose values are counts: compared exactly. */
static int is_int_key(const char *k)
{
    static const char *ks[] = {"firing_counts", "l0_histogram", "dead_features", "tokens_evaluated",
                               "tokens_masked", "sequences", "d_in", "d_sae", "k",
                               "legacy_batch_sequences", "exclude_token_ids", NULL};
    for (int i = 0; ks[i]; i++)
        if (strcmp(k, ks[i]) == 0) return 1;
    return 0;
}

/* Scale below which the tolerance is absolute: 1 for dimensionless
 * quantities of order one that can be near 0, a tiny floor otherwise. */
static double floor_of(const char *k)
{
    static const char *ones[] = {"explained_variance", "fvu", "explained_variance_legacy", "cossim",
                                 "relative_reconstruction_bias", "l2_ratio", "dead_fraction", "dead_fraction_below_density",
                                 "dead_density_threshold",
                                 "feature_density", "consistent_activation_heuristic",
                                 "encoder_decoder_cosine_sim", "encoder_bias", NULL};
    for (int i = 0; ones[i]; i++)
        if (strcmp(k, ones[i]) == 0) return 1.0;
    return 1e-6;
}

static void cmp_number(const char *where, const char *key, double exp, double act)
{
    if (is_int_key(key)) {
        if (exp != act) mismatch(where, "expected %.17g, got %.17g (integer, exact)", exp, act);
        return;
    }
    double tol = g_tol * fmax(fabs(exp), floor_of(key));
    if (!(fabs(act - exp) <= tol))
        mismatch(where, "expected %.17g, got %.17g (|diff| %.3g > tol %.3g, rel %.3g)", exp, act,
                 fabs(act - exp), tol, fabs(act - exp) / fmax(fabs(exp), 1e-300));
}

/* Compare every key of `exp` (recursively) with `act`; `key` is the name
 * of the innermost object key (for tolerance choice). */
static void cmp_json(const char *where, const char *key, const cJSON *exp, const cJSON *act)
{
    char w[8192];
    if (!act) { mismatch(where, "missing in output"); return; }
    if (cJSON_IsNull(exp)) {
        if (!cJSON_IsNull(act)) mismatch(where, "expected null, got %s", cJSON_IsNumber(act) ? "a number" : "another type");
    } else if (cJSON_IsNumber(exp)) {
        if (!cJSON_IsNumber(act)) mismatch(where, "expected %.17g, got %s", exp->valuedouble, cJSON_IsNull(act) ? "null" : "a non-number");
        else cmp_number(where, key, exp->valuedouble, act->valuedouble);
    } else if (cJSON_IsString(exp)) {
        if (!cJSON_IsString(act) || strcmp(exp->valuestring, act->valuestring) != 0)
            mismatch(where, "expected \"%s\", got %s", exp->valuestring, cJSON_IsString(act) ? act->valuestring : "a non-string");
    } else if (cJSON_IsBool(exp)) {
        if (!cJSON_IsBool(act) || cJSON_IsTrue(exp) != cJSON_IsTrue(act))
            mismatch(where, "expected %s", cJSON_IsTrue(exp) ? "true" : "false");
    } else if (cJSON_IsArray(exp)) {
        if (!cJSON_IsArray(act)) { mismatch(where, "expected an array"); return; }
        int ne = cJSON_GetArraySize(exp), na = cJSON_GetArraySize(act);
        if (ne != na) mismatch(where, "expected length %d, got %d", ne, na);
        for (int i = 0; i < ne && i < na; i++) {
            snprintf(w, sizeof w, "%s[%d]", where, i);
            cmp_json(w, key, cJSON_GetArrayItem(exp, i), cJSON_GetArrayItem(act, i));
        }
    } else if (cJSON_IsObject(exp)) {
        if (!cJSON_IsObject(act)) { mismatch(where, "expected an object"); return; }
        const cJSON *it;
        cJSON_ArrayForEach(it, exp) {
            snprintf(w, sizeof w, "%s.%s", where, it->string);
            cmp_json(w, it->string, it, cJSON_GetObjectItemCaseSensitive(act, it->string));
        }
    }
}

static cJSON *load_json(const char *path)
{
    char *t = read_text(path);
    if (!t) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

/* Value at a dotted path ("metrics.sparsity.l0") of an object. */
static const cJSON *at_path(const cJSON *o, const char *dotted)
{
    char buf[512], *save = NULL;
    snprintf(buf, sizeof buf, "%s", dotted);
    for (char *tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save))
        o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}

static void check_csv(const char *path, const cJSON *pairs)
{
    char *t = read_text(path);
    if (!t) { mismatch(path, "cannot read"); return; }
    char *save = NULL, *line = strtok_r(t, "\n", &save);
    if (!line) { mismatch(path, "empty"); free(t); return; }
    char *cols[64];
    int nc = 0;
    char *header = strdup(line);
    for (char *p = header, *q; p && nc < 64; p = q) {
        q = strchr(p, ',');
        if (q) *q++ = '\0';
        cols[nc++] = p;
    }
    if (nc < 2 || strcmp(cols[0], "sae_id") != 0 || strcmp(cols[1], "dataset") != 0)
        mismatch(path, "header must start with sae_id,dataset");
    int rows = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char *cells[64];
        int n = 0;
        for (char *p = line, *q; p && n < 64; p = q) {
            q = strchr(p, ',');
            if (q) *q++ = '\0';
            cells[n++] = p;
        }
        char where[8192];
        snprintf(where, sizeof where, "%s row %d", path, rows + 1);
        if (n != nc) { mismatch(where, "%d cells, header has %d", n, nc); rows++; continue; }
        /* Row order is SAE-major, as in expected.json. */
        const cJSON *p = cJSON_GetArrayItem(pairs, rows);
        rows++;
        if (!p) { mismatch(where, "extra row"); continue; }
        const char *sid = cJSON_GetObjectItem(p, "sae_id")->valuestring;
        const char *dsn = cJSON_GetObjectItem(p, "dataset")->valuestring;
        if (strcmp(cells[0], sid) != 0 || strcmp(cells[1], dsn) != 0) {
            mismatch(where, "expected pair %s,%s, got %s,%s", sid, dsn, cells[0], cells[1]);
            continue;
        }
        for (int c = 2; c < nc; c++) {
            const cJSON *e = at_path(p, cols[c]);
            snprintf(where, sizeof where, "%s [%s,%s].%s", path, sid, dsn, cols[c]);
            if (!e) continue; /* a column beyond the specified metrics: not checked */
            const char *key = strrchr(cols[c], '.') ? strrchr(cols[c], '.') + 1 : cols[c];
            if (cJSON_IsNull(e)) {
                if (cells[c][0]) mismatch(where, "expected an empty cell, got %s", cells[c]);
            } else if (!cells[c][0]) {
                mismatch(where, "empty cell, expected %.17g", e->valuedouble);
            } else {
                char *end;
                double v = strtod(cells[c], &end);
                if (*end) mismatch(where, "not a number: %s", cells[c]);
                else cmp_number(where, key, e->valuedouble, v);
            }
        }
    }
    if (rows != cJSON_GetArraySize(pairs)) mismatch(path, "%d rows, expected %d", rows, cJSON_GetArraySize(pairs));
    free(header);
    free(t);
}

static int cmd_check(const char *dir, const char *out, double tol)
{
    char path[4096];
    g_tol = tol;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    cJSON *exp = load_json(path);
    if (!exp) die("cannot read", path);
    const cJSON *pairs = cJSON_GetObjectItem(exp, "pairs");
    int np = cJSON_GetArraySize(pairs);

    /* Per-pair files. */
    for (int i = 0; i < np; i++) {
        const cJSON *p = cJSON_GetArrayItem(pairs, i);
        const char *sid = cJSON_GetObjectItem(p, "sae_id")->valuestring;
        const char *dsn = cJSON_GetObjectItem(p, "dataset")->valuestring;
        snprintf(path, sizeof path, "%s/%s__%s.json", out, sid, dsn);
        cJSON *act = load_json(path);
        if (!act) { mismatch(path, "missing or not valid JSON"); continue; }
        char where[8192];
        snprintf(where, sizeof where, "%s__%s.json", sid, dsn);
        cmp_json(where, "", p, act);
        cJSON_Delete(act);
    }
    /* all_eval_results.json: the same objects, SAE-major. */
    snprintf(path, sizeof path, "%s/all_eval_results.json", out);
    cJSON *all = load_json(path);
    if (!all || !cJSON_IsArray(all)) mismatch(path, "missing or not a JSON array");
    else {
        if (cJSON_GetArraySize(all) != np) mismatch(path, "%d entries, expected %d", cJSON_GetArraySize(all), np);
        for (int i = 0; i < np && i < cJSON_GetArraySize(all); i++) {
            char where[8192];
            snprintf(where, sizeof where, "all_eval_results.json[%d]", i);
            /* The summary holds the scalars only: the expected object without its arrays. */
            cJSON *scal = cJSON_Duplicate(cJSON_GetArrayItem(pairs, i), 1);
            cJSON_DeleteItemFromObjectCaseSensitive(scal, "feature_metrics");
            cmp_json(where, "", scal, cJSON_GetArrayItem(all, i));
            cJSON_Delete(scal);
        }
    }
    cJSON_Delete(all);
    snprintf(path, sizeof path, "%s/all_eval_results.csv", out);
    check_csv(path, pairs);
    cJSON_Delete(exp);
    if (g_bad > MAX_REPORT) printf("... %d mismatches in total\n", g_bad);
    printf("test_e2e check %s: %d pairs, %d mismatches (tol %g)\n", dir, np, g_bad, tol);
    return g_bad ? 1 : 0;
}

/* ---------- reference self-test ---------- */

static int selftest(void)
{
    /* Decoder inverts the encoder on the positive orthant: W_enc = I,
     * W_dec = I, biases 0 -> exact reconstruction, EV 1, mse 0. */
    int d = 8, m = 8, bad = 0;
    double *We = xcalloc(64, sizeof(double)), *Wd = xcalloc(64, sizeof(double));
    double *be = xcalloc(8, sizeof(double)), *bd = xcalloc(8, sizeof(double));
    for (int i = 0; i < 8; i++) We[i * 8 + i] = Wd[i * 8 + i] = 1;
    ref_sae s = {REF_STANDARD, d, m, 0, 0, 1, REF_NORM_NONE, 1, We, be, Wd, bd, NULL, NULL, NULL, NULL, 0, NULL};
    int64_t n = 40, off[5] = {0, 10, 20, 30, 40};
    double *x = xcalloc((size_t)n * d, sizeof(double));
    rng r = {5};
    for (int64_t i = 0; i < n * d; i++) x[i] = 0.1 + runif(&r);
    ref_data dt = {n, d, x, NULL, 4, off, 2, 0, NULL};
    ref_metrics mt;
    ref_eval(&s, &dt, &mt);
    if (mt.mse != 0 || mt.explained_variance != 1 || fabs(mt.cossim - 1) > 1e-15 || fabs(mt.l2_ratio - 1) > 1e-15 ||
        mt.l0 != 8 || mt.dead_features != 0 || mt.hist_len != 9 || mt.l0_histogram[8] != 40 ||
        fabs(mt.relative_reconstruction_bias - 1) > 1e-15 || mt.explained_variance_legacy != 1)
        { printf("selftest: identity SAE wrong (mse %g ev %g)\n", mt.mse, mt.explained_variance); bad++; }
    ref_metrics_free(&mt);
    /* Top-2 on the identity: only the two largest coordinates survive. */
    s.arch = REF_TOPK;
    s.k = 2;
    double f[8], xh[8], xx[8] = {0.3, 0.9, 0.1, 0.9, 0.2, 0.5, 0.4, 0.0};
    ref_forward(&s, xx, f, xh);
    for (int j = 0; j < 8; j++)
        if (f[j] != (j == 1 || j == 3 ? 0.9 : 0)) { printf("selftest: topk wrong at %d\n", j); bad++; }
    /* Ties: lower index wins. */
    double xt[8] = {0.5, 0.5, 0.5, 0, 0, 0, 0, 0};
    ref_forward(&s, xt, f, xh);
    if (!(f[0] == 0.5 && f[1] == 0.5 && f[2] == 0)) { printf("selftest: topk tie rule wrong\n"); bad++; }
    /* constant_norm_rescale round trip with the identity SAE reproduces x. */
    s.arch = REF_STANDARD;
    s.norm = REF_NORM_CONST;
    ref_forward(&s, x, f, xh);
    for (int i = 0; i < 8; i++)
        if (fabs(xh[i] - x[i]) > 1e-14) { printf("selftest: constant_norm_rescale round trip\n"); bad++; break; }
    /* Masks: masking every token of the second batch leaves one RRB batch. */
    unsigned char mask[40] = {0};
    for (int t = 20; t < 40; t++) mask[t] = 1;
    s.norm = REF_NORM_NONE;
    dt.mask = mask;
    ref_eval(&s, &dt, &mt);
    if (mt.tokens_evaluated != 20 || mt.tokens_masked != 20) { printf("selftest: masking\n"); bad++; }
    ref_metrics_free(&mt);
    /* Storage rounding helpers. */
    if (to_f16(1.0 + 1.0 / 4096) != 1.0 || to_f16(1.0 + 3.0 / 2048) != 1.0 + 2.0 / 1024 ||
        to_bf16(1.0 + 1.0 / 512) != 1.0 || to_bf16(3.0) != 3.0)
        { printf("selftest: rounding\n"); bad++; }
    free(We); free(Wd); free(be); free(bd); free(x);
    printf("selftest: %s\n", bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0) return cmd_gen(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "check") == 0) return cmd_check(argv[2], argv[3], atof(argv[4]));
    if (argc == 2 && strcmp(argv[1], "selftest") == 0) return selftest();
    fprintf(stderr, "usage: test_e2e gen DIR CASE | check DIR OUTDIR TOL | selftest\n");
    return 2;
}

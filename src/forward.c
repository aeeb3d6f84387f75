/* SAE forward pass; the body lives in forward_impl.h, compiled for float
 * and double. Encoder tiles go through the GEMM layer (gemm.h); in
 * bfloat16 mode (sae->bf16_encoder) the float body runs with the encoder's
 * operands rounded to bfloat16. */
#include "saeval/forward.h"
#include "saeval/arch.h"

#include <cblas.h>
#include <math.h>
#include <unistd.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/gemm.h"
#include "multiarch.h"

static int sv_fwd_threads = 1;
static int sv_fwd_decode = SV_DEC_AUTO;

void sv_fwd_set_decode(int mode) { sv_fwd_decode = mode; }

/* Latent-major decode unless a test asked for rows (forward.h). */
static int use_latent_major(void) { return sv_fwd_decode != SV_DEC_ROWS; }

void sv_fwd_set_threads(int n)
{
    sv_fwd_threads = n > 0 ? n : 1;
    openblas_set_num_threads(1); /* parallelism is ours, over panels */
}

int sv_fwd_get_threads(void) { return sv_fwd_threads; }

void sv_fwd_set_threads_default(MPI_Comm comm)
{
    const char *env = getenv("SAEVAL_THREADS");
    if (env && atoi(env) > 0) {
        sv_fwd_set_threads(atoi(env));
        return;
    }
    /* The node's cores shared by its ranks: one busy thread per core. */
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int th = (int)(ncpu / local);
    sv_fwd_set_threads(th > 0 ? th : 1);
}

/* One encoder tile: pre-activations of rows r0.. (rows of them) for
 * latents j0.. (wdt of them) into hp, row stride SV_GEMM_PANEL. Nonzero
 * when the GEMM failed (message set). */
static int tile_f32(const sv_fwd *w, int64_t r0, int64_t rows, int64_t j0, int64_t wdt, float *hp)
{
    const int64_t d = w->sae->cfg.d_in, m = w->sae->cfg.d_sae;
    if (w->bf16) {
        const size_t e = sv_gemm_bf16_elem();
        return sv_gemm_bf16(0, rows, wdt, d, (const char *)w->in16 + (size_t)(r0 * d) * e, d,
                            (const char *)w->wenc16 + (size_t)j0 * e, m, hp, SV_GEMM_PANEL) != SV_OK;
    }
    sv_gemm_f32(0, rows, wdt, d, (const float *)w->ein + r0 * d, d, (const float *)w->sae->W_enc + j0, m, hp,
                SV_GEMM_PANEL);
    return 0;
}

static int tile_f64(const sv_fwd *w, int64_t r0, int64_t rows, int64_t j0, int64_t wdt, double *hp)
{
    const int64_t d = w->sae->cfg.d_in, m = w->sae->cfg.d_sae;
    sv_gemm_f64(0, rows, wdt, d, (const double *)w->ein + r0 * d, d, (const double *)w->sae->W_enc + j0, m, hp,
                SV_GEMM_PANEL);
    return 0;
}

/* bfloat16 mode: the block's encoder input rounded, rows in parallel (into
 * in16; emulated, that is in itself, and ein may be the caller's rows). */
static void round_input(sv_fwd *w, int64_t n)
{
    const int64_t d = w->sae->cfg.d_in;
    const size_t e = sv_gemm_bf16_elem();
#pragma omp parallel for num_threads(sv_fwd_threads) schedule(static)
    for (int64_t r = 0; r < n; r++)
        sv_gemm_bf16_round((const float *)w->ein + r * d, (char *)w->in16 + (size_t)(r * d) * e, (size_t)d);
}

/* Per thread, w->pairs holds the gather's G x k candidates of a row and,
 * in the tasks before the gather, the top-k selection's scratch (2k
 * values and latents: at most the room of 2k pairs). */
static int64_t pair_slots(int64_t G, int64_t k) { return (G > 2 ? G : 2) * k; }

#define REAL float
#define FN(name) name##_f32
#include "forward_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "forward_impl.h"
#undef REAL
#undef FN

/* Byte sizes of the forward's buffers but the non-topk code lists: one
 * function for sv_fwd_init, sv_fwd_bytes and sv_fwd_mem_bytes, so the
 * allocations and the plan's estimate cannot drift apart. */
typedef struct {
    size_t in, hp, acc, tile_at, per_row, xhat, rowptr; /* per_row: rowcnt, mu, inscale, outscale each */
    size_t heap_v, heap_i, heap_n, heap_t, pairs;      /* top-k */
    size_t lists, panel_cnt, run;                       /* non-topk: list headers, counts, cursors */
    size_t exp_r_mag, dec_scale, in16, wenc16;
    int64_t csr;                                        /* top-k: idx/val entries, reserved at init */
    size_t dec_idx, dec_acc;                            /* latent-major decode: per-latent arrays, strips */
    int64_t dec_ent;                                    /* top-k: its entries, reserved at init */
    size_t dec_e;                                       /* bytes per entry: row and code */
} fwd_sizes;

static fwd_sizes sizes_of(const sv_sae_cfg *c, int precision, int64_t max_rows, int T, int latent_major)
{
    fwd_sizes z;
    memset(&z, 0, sizeof z);
    const int64_t d = c->d_in, m = c->d_sae, k = c->k, dout = sv_cfg_d_out(c);
    const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL, nt = max_rows / SV_GEMM_ROWS;
    const int64_t G = T < np ? T : np, tasks = nt * G;
    const size_t rs = precision == 64 ? sizeof(double) : sizeof(float), R = (size_t)max_rows;
    z.in = R * (size_t)d * rs;
    z.hp = (size_t)T * SV_GEMM_ROWS * SV_GEMM_PANEL * rs;
    z.acc = (size_t)(T * dout) * rs;
    z.tile_at = (size_t)(nt + 1) * sizeof(int64_t);
    z.per_row = R * sizeof(int64_t); /* int64_t and double alike */
    z.xhat = R * (size_t)dout * sizeof(double);
    z.rowptr = (R + 1) * sizeof(int64_t);
    if (sv_arch_has(c->arch, SV_AF_TOPK)) {
        z.heap_v = (size_t)(tasks * SV_GEMM_ROWS * 2 * k) * rs;
        z.heap_i = (size_t)(tasks * SV_GEMM_ROWS * 2 * k) * sizeof(int32_t);
        z.heap_n = (size_t)(tasks * SV_GEMM_ROWS) * sizeof(int64_t);
        z.heap_t = (size_t)(tasks * SV_GEMM_ROWS) * rs;
        z.pairs = (size_t)(T * pair_slots(G, k)) * 2 * rs; /* {int32, REAL}: at most 2 REALs wide */
        z.csr = max_rows * k;                   /* at most k codes per row (groupmax: k groups) */
        if (c->rescale_acts_by_decoder_norm) z.dec_scale = (size_t)m * rs;
    } else {
        z.lists = (size_t)tasks * sizeof(sv_fwd_list);
        z.panel_cnt = (size_t)(tasks * SV_GEMM_ROWS * np) * sizeof(int64_t);
        z.run = (size_t)(T * np) * sizeof(int64_t);
    }
    if (sv_arch_has(c->arch, SV_AF_GATED)) z.exp_r_mag = (size_t)m * rs;
    if (latent_major) {
        z.dec_idx = (size_t)(3 * m + 1) * sizeof(int32_t);
        z.dec_acc = (size_t)T * SV_GEMM_ROWS * SV_DEC_STRIP * rs;
        z.dec_e = sizeof(int32_t) + rs;
        if (z.csr) z.dec_ent = SV_GEMM_ROWS * k;
    }
    if (precision == 16) { /* rounded copies for the encoder GEMM */
        const size_t e = sv_gemm_bf16_elem();
        z.in16 = e == sizeof(float) ? 0 : R * (size_t)d * e; /* emulated: rounded in place */
        z.wenc16 = (size_t)(d * m) * e;
    }
    return z;
}

static uint64_t sizes_sum(const fwd_sizes *z)
{
    return (uint64_t)(z->in + z->hp + z->acc + z->tile_at + 4 * z->per_row + z->xhat + z->rowptr + z->heap_v +
                      z->heap_i + z->heap_n + z->heap_t + z->pairs + z->lists + z->panel_cnt + z->run +
                      z->exp_r_mag + z->dec_scale + z->in16 + z->wenc16 + z->dec_idx + z->dec_acc +
                      z->dec_e * (size_t)z->dec_ent);
}

uint64_t sv_fwd_mem_bytes(const sv_sae_cfg *c, int precision, int64_t max_rows)
{
    const int T = sv_fwd_threads;
    const fwd_sizes z = sizes_of(c, precision, max_rows, T, use_latent_major());
    const uint64_t e = sizeof(int32_t) + sizeof(double); /* one code: latent and value */
    if (z.csr) return sizes_sum(&z) + e * (uint64_t)z.csr;
    /* Non-topk: the tasks' lists and the CSR, each up to the block's codes
     * (at the planned L0) plus, per list, one panel row of headroom and a
     * grain of rounding. */
    const int64_t m = c->d_sae, np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL, G = T < np ? T : np;
    const uint64_t tasks = (uint64_t)(max_rows / SV_GEMM_ROWS * G);
    const uint64_t l0 = (uint64_t)(m < SV_FWD_PLAN_L0 ? m : SV_FWD_PLAN_L0), codes = (uint64_t)max_rows * l0;
    /* latent-major decode: one row tile's codes, grown in grains */
    const uint64_t dec = z.dec_e ? z.dec_e * ((uint64_t)SV_GEMM_ROWS * l0 + SV_FWD_GRAIN) : 0;
    return sizes_sum(&z) + e * (2 * codes + tasks * (SV_GEMM_PANEL + SV_FWD_GRAIN) + SV_FWD_GRAIN) + dec;
}

uint64_t sv_fwd_bytes(const sv_fwd *w)
{
    if (!w->sae) return 0;
    const int precision = w->sae->bf16_encoder ? 16 : w->sae->precision;
    const fwd_sizes z = sizes_of(&w->sae->cfg, precision, w->max_rows, w->threads, w->latent_major);
    const uint64_t e = sizeof(int32_t) + sizeof(double);
    uint64_t b = sizes_sum(&z) + e * (uint64_t)w->cap;
    if (!z.csr) b += z.dec_e * (uint64_t)w->dec_cap; /* top-k's entries are in sizes_sum */
    const int64_t tasks = w->max_rows / SV_GEMM_ROWS * w->groups;
    for (int64_t t = 0; w->lists && t < tasks; t++) b += e * (uint64_t)w->lists[t].cap;
    return b;
}

sv_rc sv_fwd_init(sv_fwd *w, const sv_sae *s, int64_t max_rows)
{
    if (max_rows <= 0 || max_rows % SV_GEMM_ROWS != 0)
        return sv_fail(SV_EINTERNAL, "forward: block of %lld rows is not a multiple of %d", (long long)max_rows, SV_GEMM_ROWS);
    memset(w, 0, sizeof *w);
    w->sae = s;
    w->max_rows = max_rows;
    const int64_t d = s->cfg.d_in, m = s->cfg.d_sae;
    const int64_t np = (m + SV_GEMM_PANEL - 1) / SV_GEMM_PANEL;
    const int T = sv_fwd_threads;
    const int prec = s->bf16_encoder ? 16 : s->precision;
    const fwd_sizes z = sizes_of(&s->cfg, prec, max_rows, T, use_latent_major());
    w->threads = T;
    w->groups = T < np ? T : np;
    w->in = sv_malloc(z.in);
    w->hp = sv_malloc(z.hp);
    w->acc = sv_malloc(z.acc);
    w->tile_at = sv_malloc(z.tile_at);
    w->rowcnt = sv_malloc(z.per_row);
    w->mu = sv_malloc(z.per_row);
    w->inscale = sv_malloc(z.per_row);
    w->outscale = sv_malloc(z.per_row);
    w->xhat = sv_malloc(z.xhat);
    w->rowptr = sv_malloc(z.rowptr);
    /* Top-k: every code a block can have; others: a first grain, grown as blocks need. */
    w->cap = z.csr ? z.csr : SV_FWD_GRAIN;
    w->idx = sv_malloc((size_t)w->cap * sizeof(int32_t));
    w->val = sv_malloc((size_t)w->cap * sizeof(double));
    if (!w->in || !w->hp || !w->acc || !w->tile_at || !w->rowcnt || !w->mu || !w->inscale || !w->outscale ||
        !w->xhat || !w->rowptr || !w->idx || !w->val)
        return SV_EINTERNAL;
    if (sv_arch_has(s->cfg.arch, SV_AF_TOPK)) {
        w->heap_v = sv_malloc(z.heap_v);
        w->heap_i = sv_malloc(z.heap_i);
        w->heap_n = sv_malloc(z.heap_n);
        w->heap_t = sv_malloc(z.heap_t);
        w->pairs = sv_malloc(z.pairs);
        if (!w->heap_v || !w->heap_i || !w->heap_n || !w->heap_t || !w->pairs) return SV_EINTERNAL;
    } else {
        w->lists = sv_calloc(z.lists / sizeof *w->lists, sizeof *w->lists);
        w->panel_cnt = sv_malloc(z.panel_cnt);
        w->run = sv_malloc(z.run);
        if (!w->lists || !w->panel_cnt || !w->run) return SV_EINTERNAL;
    }
    if (z.exp_r_mag) {
        w->exp_r_mag = sv_malloc(z.exp_r_mag);
        if (!w->exp_r_mag) return SV_EINTERNAL;
        for (int64_t j = 0; j < m; j++) {
            if (s->precision == 64) ((double *)w->exp_r_mag)[j] = exp(((const double *)s->r_mag)[j]);
            else ((float *)w->exp_r_mag)[j] = expf(((const float *)s->r_mag)[j]);
        }
    }
    if (s->bf16_encoder) {
        /* Rounded copies for the encoder GEMM: W_enc itself stays float32
         * (norms, geometry). Emulated bfloat16 rounds the input in place. */
        w->bf16 = 1;
        w->in16 = z.in16 ? sv_malloc(z.in16) : w->in;
        w->wenc16 = sv_malloc(z.wenc16);
        if (!w->in16 || !w->wenc16) return SV_EINTERNAL;
        sv_gemm_bf16_round(s->W_enc, w->wenc16, (size_t)(d * m));
    }
    if (z.dec_idx) {
        w->latent_major = 1;
        w->dec_pos = sv_malloc(z.dec_idx);
        w->dec_lat = w->dec_pos + m;
        w->dec_ptr = w->dec_lat + m;
        w->dec_acc = sv_malloc(z.dec_acc);
        w->dec_cap = z.dec_ent ? z.dec_ent : SV_FWD_GRAIN;
        w->dec_row = sv_malloc((size_t)w->dec_cap * sizeof(int32_t));
        w->dec_f = sv_malloc((size_t)w->dec_cap * (z.dec_e - sizeof(int32_t)));
        if (!w->dec_pos || !w->dec_acc || !w->dec_row || !w->dec_f) return SV_EINTERNAL;
        memset(w->dec_pos, 0, (size_t)m * sizeof(int32_t));
    }
    if (z.dec_scale) {
        w->dec_scale = sv_malloc(z.dec_scale);
        if (!w->dec_scale) return SV_EINTERNAL;
        for (int64_t j = 0; j < m; j++) {
            if (s->precision == 64) ((double *)w->dec_scale)[j] = s->dec_norm[j];
            else ((float *)w->dec_scale)[j] = (float)s->dec_norm[j];
        }
    }
    return SV_OK;
}

sv_rc sv_fwd_run(sv_fwd *w, const float *x, int64_t n)
{
    if (w->threads != sv_fwd_threads) return sv_fail(SV_EINTERNAL, "forward: thread count changed after init");
    if (n > w->max_rows) return sv_fail(SV_EINTERNAL, "forward: block of %lld rows exceeds %lld", (long long)n, (long long)w->max_rows);
    return w->sae->precision == 64 ? run_f64(w, x, n) : run_f32(w, x, n);
}

double sv_fwd_gemm_seconds(const sv_sae *s, int64_t n, int64_t block)
{
    sv_fwd w;
    if (sv_fwd_init(&w, s, block) != SV_OK) { sv_fwd_free(&w); return -1; }
    const int64_t d = s->cfg.d_in;
    for (int64_t i = 0; i < block * d; i++) { /* any finite input will do */
        if (s->precision == 64) ((double *)w.in)[i] = (double)(i % 7) * 0.25;
        else ((float *)w.in)[i] = (float)(i % 7) * 0.25f;
    }
    w.ein = w.in;
    if (w.bf16) round_input(&w, block);
    double t0 = omp_get_wtime();
    for (int64_t r0 = 0; r0 < n; r0 += block) {
        int64_t nb = n - r0 < block ? n - r0 : block;
        if (s->precision == 64) encode_only_f64(&w, nb);
        else encode_only_f32(&w, nb);
    }
    double t = omp_get_wtime() - t0;
    sv_fwd_free(&w);
    return t;
}

void sv_fwd_free(sv_fwd *w)
{
    const int64_t nt = w->max_rows / SV_GEMM_ROWS;
    for (int64_t t = 0; w->lists && t < nt * w->groups; t++) { free(w->lists[t].idx); free(w->lists[t].val); }
    if (w->in16 != w->in) free(w->in16);
    free(w->wenc16);
    free(w->tile_at); free(w->lists); free(w->panel_cnt); free(w->run);
    free(w->in); free(w->hp); free(w->acc); free(w->exp_r_mag); free(w->dec_scale);
    free(w->mu); free(w->inscale); free(w->outscale);
    free(w->heap_v); free(w->heap_i); free(w->heap_n); free(w->heap_t); free(w->pairs);
    free(w->xhat); free(w->rowptr); free(w->idx); free(w->val); free(w->rowcnt);
    free(w->dec_pos); free(w->dec_acc); free(w->dec_row); free(w->dec_f);
    memset(w, 0, sizeof *w);
}

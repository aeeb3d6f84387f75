/* SAE forward pass over a block of tokens: normalize, dense GEMM encode,
 * activation function, sparse decode (only active latents' decoder rows),
 * de-normalize. Runs in the SAE's working precision (float or double).
 * The encoder runs tile by tile and each tile's pre-activations go through
 * the activation function (top-k kept across a row's panels) while still
 * in cache: memory is O(threads x tile), not O(rows x d_sae). */
#ifndef SAEVAL_FORWARD_H
#define SAEVAL_FORWARD_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"
#include "saeval/gemm.h"
#include "saeval/sae.h"

/* Encoder tiles: SV_GEMM_ROWS x SV_GEMM_PANEL (gemm.h). */

/* Active latents of one task (non-topk activations): a growable list. */
typedef struct {
    int32_t *idx;
    double *val;
    int64_t len, cap;
} sv_fwd_list;

typedef struct {
    const sv_sae *sae;
    int64_t max_rows;
    void *in;        /* [max_rows][d_in] working-precision encoder input */
    const void *ein; /* the block's encoder input: in, or the caller's rows themselves when
                      * they need no change (float32, no normalization, no b_dec subtracted) */
    int bf16;        /* precision 16: the encoder GEMM on bfloat16 operands (gemm.h) */
    void *in16;      /* bf16: the input rounded (== in when emulated: rounded in place) */
    void *wenc16;    /* bf16: W_enc rounded, [d_in][d_sae] */
    void *hp;        /* [threads][SV_GEMM_ROWS][SV_GEMM_PANEL] pre-activations of one GEMM tile:
                      * a full [rows][d_sae] block is never held */
    void *acc;       /* [threads][d_out] decode accumulators */
    void *exp_r_mag; /* gated: exp(r_mag) */
    void *dec_scale; /* topk with rescale: ||W_dec[j]|| in working precision */
    double *mu, *outscale, *inscale; /* per-row normalization */
    int64_t groups;  /* panel ranges per row tile: min(threads, panels) */
    /* Per task (row tile t, panel range g), index t * groups + g: */
    void *heap_v;    /* topk: [tasks][SV_GEMM_ROWS][2k] candidate values ... */
    int32_t *heap_i; /* ... and their latents; heap_n: [tasks][SV_GEMM_ROWS] counts */
    int64_t *heap_n;
    void *heap_t;    /* topk: [tasks][SV_GEMM_ROWS] thresholds (k-th best so far) */
    sv_fwd_list *lists;   /* non-topk: [tasks] entries, panel by panel, rows within */
    int64_t *panel_cnt;   /* non-topk: [tasks][SV_GEMM_ROWS][panels] entries per row and panel */
    void *pairs;     /* topk: [threads][groups * k] (latent, value) candidates */
    int64_t *run;    /* non-topk: [threads][panels] gather cursors */
    int64_t *tile_at; /* [max_rows / SV_GEMM_ROWS + 1] where each row tile's codes start in idx/val */
    int64_t *rowcnt; /* [max_rows] active latents per row */
    /* Outputs of the last sv_fwd_run: */
    double *xhat;    /* [max_rows][d_out] final reconstruction (original space; d_out = d_in but for
                      * transcoders) */
    int64_t *rowptr; /* [max_rows+1] CSR over active latents */
    int32_t *idx;    /* active latent indices, ascending within a row */
    double *val;     /* their activations f_j */
    int64_t cap;     /* capacity of idx/val: max_rows x k with top-k (never grows), else grown as needed */
    int threads;     /* sv_fwd_threads at init: sizes the per-thread scratch */
    /* Latent-major decode (see SV_DEC_STRIP), one row tile at a time: */
    int latent_major;
    int32_t *dec_pos;  /* [d_sae] per-latent counts, then cursors */
    int32_t *dec_lat;  /* [d_sae] the tile's active latents, ascending */
    int32_t *dec_ptr;  /* [d_sae + 1] where each one's entries start */
    int32_t *dec_row;  /* [dec_cap] an entry's row within the tile */
    void *dec_f;       /* [dec_cap] its code at decoder scale (working precision) */
    int64_t dec_cap;   /* top-k: SV_GEMM_ROWS x k, reserved at init; else grown like the CSR */
    void *dec_acc;     /* [threads][SV_GEMM_ROWS][SV_DEC_STRIP] strip accumulators */
} sv_fwd;

/* Sparse decode. Row by row, every active latent's row of W_dec is read
 * once per token that uses it: from memory when W_dec is larger than the
 * caches, where the decode is bound by memory bandwidth. Latent-major, a
 * row tile's codes are sorted by latent and the output is made in column
 * strips of SV_DEC_STRIP elements: each active latent's strip of W_dec is
 * read once per tile and the tile's accumulators for the strip stay in
 * cache. Every output element adds the same products in the same order
 * (its row's latents ascending, from zero), so both give the same bits;
 * the choice is speed only. Latent-major was as fast or faster on every
 * shape measured (d_sae 1024-16384, d_in 128-2304, L0 16-1760: 1.0x to
 * 2.4x on the non-GEMM time, README Performance), so it is the default;
 * row by row stays as the reference the tests compare it with. */
#define SV_DEC_STRIP 128
enum { SV_DEC_AUTO, SV_DEC_ROWS, SV_DEC_LATENTS };
/* For tests and the benchmark: force a decode order for later sv_fwd_init. */
void sv_fwd_set_decode(int mode);

sv_rc sv_fwd_init(sv_fwd *w, const sv_sae *s, int64_t max_rows);
/* The sparse codes of a block exist twice at most: the tasks' lists
 * (non-topk) and the block's CSR idx/val, each sized to what the block
 * needs (in SV_FWD_GRAIN entries) and reused by later blocks. Top-k
 * architectures have at most k codes per row, known before the pass: the
 * CSR is reserved at init and never grows. The others' L0 is known only
 * as they run: the plan counts their codes at a mean of SV_FWD_PLAN_L0
 * per row of a row tile, and the runner compares what each SAE's buffers
 * reached with that count after every pass (run.log, and a warning when
 * exceeded). */
#define SV_FWD_PLAN_L0 256
#define SV_FWD_GRAIN 4096
/* Bytes sv_fwd_init and sv_fwd_run hold for an SAE of config c with
 * blocks of max_rows rows at the current thread count (precision 16, 32
 * or 64, as the config's), at most: exactly bounded for top-k
 * architectures, and while a row tile's mean L0 stays <= SV_FWD_PLAN_L0
 * for the others. */
uint64_t sv_fwd_mem_bytes(const sv_sae_cfg *c, int precision, int64_t max_rows);
/* Bytes the forward holds now (its buffers' allocated sizes). */
uint64_t sv_fwd_bytes(const sv_fwd *w);
/* x: [n][d_in] float32 activations as read from the store, n <= max_rows. */
sv_rc sv_fwd_run(sv_fwd *w, const float *x, int64_t n);
void sv_fwd_free(sv_fwd *w);
/* The encoder GEMMs alone, for n rows in blocks of `block` rows, with the
 * same tiles and threads as sv_fwd_run (and no activation): one of the
 * benchmark's limits. Seconds. */
double sv_fwd_gemm_seconds(const sv_sae *s, int64_t n, int64_t block);
/* Threads per rank for the encoder GEMM. Never changes results. */
void sv_fwd_set_threads(int n);
/* SAEVAL_THREADS, else the node's cores divided by the ranks on the node. */
void sv_fwd_set_threads_default(MPI_Comm comm);
int sv_fwd_get_threads(void);

#endif

/* SAE forward pass over a block of tokens: normalize, dense GEMM encode,
 * activation function, sparse decode (only active latents' decoder rows),
 * de-normalize. Runs in the SAE's working precision (float or double). */
#ifndef SAEVAL_FORWARD_H
#define SAEVAL_FORWARD_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"
#include "saeval/sae.h"

/* Rows per encoder GEMM call; blocks (max_rows) are multiples of it. */
#define SV_GEMM_ROWS 256

typedef struct {
    const sv_sae *sae;
    int64_t max_rows;
    void *in;        /* [max_rows][d_in] working-precision encoder input */
    void *h;         /* [max_rows][d_sae] pre-activations */
    void *acc;       /* [threads][d_in] decode accumulators */
    void *exp_r_mag; /* gated: exp(r_mag) */
    void *dec_scale; /* topk with rescale: ||W_dec[j]|| in working precision */
    double *mu, *outscale, *inscale; /* per-row normalization */
    int32_t *heap;   /* topk selection scratch [threads][k] */
    int32_t *idx_tmp; double *val_tmp; /* topk: [max_rows][k] before compaction */
    int64_t *rowcnt; /* [max_rows] active latents per row */
    /* Outputs of the last sv_fwd_run: */
    double *xhat;    /* [max_rows][d_in] final reconstruction (original space) */
    int64_t *rowptr; /* [max_rows+1] CSR over active latents */
    int32_t *idx;    /* active latent indices, ascending within a row */
    double *val;     /* their activations f_j */
    int64_t cap;     /* capacity of idx/val */
    int threads;     /* sv_fwd_threads at init: sizes the per-thread scratch */
} sv_fwd;

sv_rc sv_fwd_init(sv_fwd *w, const sv_sae *s, int64_t max_rows);
/* x: [n][d_in] float32 activations as read from the store, n <= max_rows. */
sv_rc sv_fwd_run(sv_fwd *w, const float *x, int64_t n);
void sv_fwd_free(sv_fwd *w);
/* The encoder GEMMs alone, for n rows in blocks of `block` rows, with the
 * same tiles and threads as sv_fwd_run: the benchmark's limit. Seconds. */
double sv_fwd_gemm_seconds(const sv_sae *s, int64_t n, int64_t block);
/* Threads per rank for the encoder GEMM. Never changes results. */
void sv_fwd_set_threads(int n);
/* SAEVAL_THREADS, else the node's cores divided by the ranks on the node. */
void sv_fwd_set_threads_default(MPI_Comm comm);
int sv_fwd_get_threads(void);

#endif

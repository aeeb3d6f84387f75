/* The downstream case of `saeval bench`: suffix throughput of the native
 * transformer against the GEMM limit of the same shapes measured in the
 * same run, and the cost of 8 SAEs against 1 at one hook (shared clean and
 * ablated passes). Serial, on a random model (sv_model_random). */
#ifndef SAEVAL_MODEL_BENCH_H
#define SAEVAL_MODEL_BENCH_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"

typedef struct {
    int64_t T, d_model, n_layers, vocab;
    double suffix_s, gemm_s;         /* one clean + one spliced suffix walk; its GEMMs alone */
    double tokens_per_s, gflops, gemm_gflops, ratio; /* ratio = GEMM-only time / suffix time */
    double ds1_s, ds8_s, shared_ratio; /* sv_ds_sequence with 1 and 8 SAEs; ds8 / ds1 */
} sv_model_bench_result;

/* quick: tiny shapes (a smoke test); repeat: medians over that many runs. */
sv_rc sv_model_bench(int quick, int repeat, sv_model_bench_result *r);

/* The collect case: `saeval collect` of a random Llama-shaped model
 * written under dir (the same shapes as above) over n_seq sequences of T
 * tokens at the last layer's hook_resid_post, against the GEMMs of every
 * layer on each rank's sequences (no unembedding) measured in the same run.
 * Collective over comm; medians over repeat runs. */
typedef struct {
    int64_t tokens, d_model, n_layers;
    double collect_s, gemm_s;   /* whole collect (load, forward, parallel write); the limit */
    double tokens_per_s, ratio; /* ratio = gemm_s / collect_s */
} sv_collect_bench_result;
sv_rc sv_collect_bench(const char *dir, int quick, int repeat, MPI_Comm comm, sv_collect_bench_result *r);

#endif

/* Weight geometry of one SAE from Gram blocks of unit-normalized decoder
 * rows (and encoder columns), spread over MPI ranks. The d_sae x d_sae
 * matrix is never held, nor a normalized copy of W: a rank takes one row
 * block of B latents against the latents after it, SV_GRAM_PANEL at a time
 * (one panel per thread), normalizing rows as it copies them into the GEMM
 * buffers, and folds each panel into its accumulators. Memory per rank:
 * O(d_sae) per thread for the accumulators plus the fixed GEMM buffers.
 *
 * Order invariance: maxima (MPI_MAX) and counts (int64 MPI_SUM) are exact;
 * each row block's double sums are kept per block index and added on rank 0
 * in block order; the top pairs are merged from per-rank candidate lists
 * with a total order. GEMM shapes depend only on the block index. */
#ifndef SAEVAL_GEOMETRY_H
#define SAEVAL_GEOMETRY_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"
#include "saeval/sae.h"

#define SV_GEOM_BINS 200
/* Gram columns per GEMM call: part of the numerical definition, like the
 * encoder tiles (gemm.h). */
#ifndef SV_GRAM_PANEL
#define SV_GRAM_PANEL 2048
#endif
#define SV_GEOM_TOP 32

typedef struct { int64_t j, l; double cos; } sv_pair_cos;

typedef struct {
    /* feature arrays [d_sae]: max over l != j of cos (-1 when d_sae == 1) */
    double *max_decoder_cos, *max_encoder_cos;
    /* [d_sae]: the latent l != j with the largest decoder cosine (ties: the
     * lower index; -1 when d_sae == 1): each latent's nearest neighbour */
    int64_t *nearest_decoder;
    double average_max_decoder_cos, average_max_encoder_cos;
    double decoder_mean_abs_cos, decoder_mean_cos; /* over pairs j < l */
    int64_t hist[SV_GEOM_BINS];                    /* pair counts over [-1, 1] */
    int64_t pairs_over_0_9, pairs_over_0_99;
    sv_pair_cos top[SV_GEOM_TOP];
    int n_top;
} sv_geometry;

/* Collective. Results are complete on rank 0 (other ranks get partial
 * values). block_rows: latents per row block (0 = default 1024). */
sv_rc sv_geometry_compute(const sv_sae *s, int64_t block_rows, MPI_Comm comm, sv_geometry *g);
/* The same with panel_cols Gram columns per GEMM call (0 = SV_GRAM_PANEL):
 * for tests, which use narrow panels to cross many panel boundaries. */
sv_rc sv_geometry_compute_panels(const sv_sae *s, int64_t block_rows, int64_t panel_cols, MPI_Comm comm,
                                 sv_geometry *g);
void sv_geometry_free(sv_geometry *g);

/* Collective benchmark limit: the Gram GEMMs of sv_geometry_compute alone
 * (same blocks, panels, ranks and threads, no scan); wall seconds of the
 * slowest rank. flops (may be NULL): their floating-point operations. */
double sv_geometry_gemm_seconds(const sv_sae *s, int64_t block_rows, MPI_Comm comm, double *flops);

#endif

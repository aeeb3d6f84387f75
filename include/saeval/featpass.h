/* The feature analysis inside `saeval run`: after a pass over a store has
 * observed every evaluated token (sv_feat_observe in the per-token loop),
 * merge the states and fill the examples' context windows by encoding again
 * the work units that hold them, exactly as the pass did (same rows, same
 * blocks: the same bits), each rank its own units; rank 0 writes the pair's
 * feature file. Masked tokens show activation 0 in windows (they are not
 * encoded), with their token ids. */
#ifndef SAEVAL_FEATPASS_H
#define SAEVAL_FEATPASS_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"
#include "saeval/features.h"
#include "saeval/forward.h"
#include "saeval/store.h"

/* Feature parameters from the config's keys (top_examples, context). */
void sv_featpass_params(sv_feat_params *p, int64_t d_sae, int top_examples, int ctx_before, int ctx_after);

typedef struct {
    sv_store *st;
    int64_t unit_seqs;        /* sequences per work unit (legacy_batch_sequences) */
    int64_t u0, u1;           /* this rank's units */
    const int64_t *mask_ids;  /* sorted masked token ids */
    int n_mask;
    const char *out_dir, *sae_id, *dataset;
} sv_featpass_ctx;

/* Collective. f: this rank's accumulator (replaced by the global state);
 * fwd: the SAE's forward workspace of the pass. */
sv_rc sv_featpass_finish(sv_feat *f, sv_fwd *fwd, const sv_featpass_ctx *c, MPI_Comm comm);

#endif

/* The feature analysis inside `saeval run`: the pass's per-token loop
 * hands the sparse activations of whole sequences to the SAE's accumulator
 * (sv_feat_observe_rows: values already computed), which copies an
 * example's context window when the example enters a list. After the pass
 * the states merge to rank 0, which reads the windows' token ids from the
 * store (no encoding) and writes the pair's feature file. Masked tokens show
 * activation 0 in windows (they are not encoded), with their token ids. */
#ifndef SAEVAL_FEATPASS_H
#define SAEVAL_FEATPASS_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"
#include "saeval/features.h"
#include "saeval/store.h"

/* Feature parameters from the config's keys (top_examples, context);
 * max_seq_len: the store's longest sequence (whole-sequence windows). */
void sv_featpass_params(sv_feat_params *p, int64_t d_sae, int top_examples, int ctx_before, int ctx_after,
                        int64_t max_seq_len);
int64_t sv_featpass_max_seq(const sv_store *st);
/* Per-rank bytes of the feature data of an SAE during a pass: the
 * accumulator with its windows (sv_feat_mem), a packed latent range of the
 * reduction (more than one rank), and on rank 0 the windows and writer
 * buffers of a latent chunk of the file. 0 when top_examples <= 0. */
uint64_t sv_featpass_mem(int top_examples, int ctx_before, int ctx_after, int64_t max_seq_len, int64_t d_sae,
                         int n_ranks);

typedef struct {
    sv_store *st;
    const char *out_dir, *sae_id, *dataset;
} sv_featpass_ctx;

/* Collective. f: this rank's accumulator (rank 0's becomes the global state). */
sv_rc sv_featpass_finish(sv_feat *f, const sv_featpass_ctx *c, MPI_Comm comm);

#endif

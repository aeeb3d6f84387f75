/* `saeval collect`: token ids -> activation stores at one or several hook
 * points of a Hugging Face model, in one pass over the model.
 *
 * Input (HDF5): /token_ids [n_tokens] integers; /sequence_offsets
 * [n_seq + 1] int64 or the root attribute context_size; optional root
 * attribute special_token_ids. Output: one store per hook in saeval's
 * format (README "Activation store") with /activations (float32, or
 * bfloat16 as uint16 + dtype="bfloat16"), /token_ids, the same sequence
 * structure, and the attributes hook_name, model_name, model_params,
 * special_token_ids and dataset_name.
 *
 * Distributed: ranks take contiguous runs of whole sequences (balanced by
 * tokens) and write their rows with collective parallel-HDF5 writes; a row
 * depends only on its sequence, and the file layout only on the data, so the
 * stores are byte-identical for any number of ranks. Each store is written
 * as PATH.partial and renamed when complete: an interrupted collection never
 * leaves a store that looks complete, and a rerun starts it again (stores
 * that already exist are kept unless force is set). */
#ifndef SAEVAL_COLLECT_H
#define SAEVAL_COLLECT_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"

typedef struct {
    const char *model_dir;
    const char *tokens_path;
    int n_hooks;
    const char *const *hooks;     /* TransformerLens names */
    const char *const *out_paths; /* one store per hook */
    int bf16;                     /* 0: float32 activations, 1: bfloat16 */
    int precision;                /* compute: 32 or 64 */
    const char *model_name;       /* attribute; NULL: the model directory's last component */
    const char *dataset_name;     /* attribute; NULL: the token file's name */
    int force;                    /* rewrite stores that exist */
    int64_t batch_tokens;         /* rows per collective write round (>= the longest sequence is not needed) */
    int (*stop)(void);            /* polled between rounds: nonzero stops with SV_EINTERRUPTED */
} sv_collect_opts;

/* Collective over comm. */
sv_rc sv_collect(const sv_collect_opts *o, MPI_Comm comm);

/* Command line of `saeval collect` (argv[0] = "collect"):
 *   --model DIR --tokens FILE --hook NAME=STORE.h5 [--hook ...]
 *   [--dtype float32|bfloat16] [--precision float32|float64]
 *   [--model-name S] [--dataset-name S] [--force]
 * Fills o (pointing into argv and a hooks array owned by a); SV_EINPUT with
 * a message on a bad option. */
typedef struct {
    sv_collect_opts o;
    char **hooks, **outs; /* [n_hooks] */
} sv_collect_args;
extern const char *sv_collect_usage;
sv_rc sv_collect_parse_args(sv_collect_args *a, int argc, char **argv);
void sv_collect_args_free(sv_collect_args *a);

#endif

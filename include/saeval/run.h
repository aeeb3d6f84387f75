/* `saeval run`: evaluate every (SAE, dataset) pair of a config. */
#ifndef SAEVAL_RUN_H
#define SAEVAL_RUN_H
#include <mpi.h>
#include "saeval/error.h"

typedef struct {
    const char *output_dir; /* overrides the config's output_dir when set */
    int quiet;              /* no progress lines */
    int table;              /* print the summary table on rank 0 */
    int shard, n_shards;    /* evaluate shard `shard` of n_shards (0 of 1: everything) */
    int force;              /* recompute pairs whose result files are complete */
} sv_run_opts;

/* Collective. Returns SV_OK or the error code; the message has already been
 * printed once (by rank 0) when it returns an error. */
sv_rc sv_run(const char *config_path, const sv_run_opts *opts, MPI_Comm comm);

/* SAE ids: each directory's base name, or the shortest path suffix that
 * tells colliding names apart. ids[i] is malloc'ed. */
sv_rc sv_sae_ids(char **paths, int n, char **ids);

/* Every rank learns whether any rank failed; rank 0 prints the first
 * failing rank's message. Returns the worst code. */
sv_rc sv_agree(sv_rc rc, MPI_Comm comm);

#endif

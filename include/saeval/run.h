/* `saeval run`: evaluate every (SAE, dataset) pair of a config. */
#ifndef SAEVAL_RUN_H
#define SAEVAL_RUN_H
#include <mpi.h>
#include <stdint.h>
#include "saeval/error.h"

typedef struct {
    const char *output_dir; /* overrides the config's output_dir when set */
    int quiet;              /* no progress lines */
    int table;              /* print the summary table on rank 0 */
    int shard, n_shards;    /* evaluate shard `shard` of n_shards (0 of 1: everything) */
    int force;              /* recompute pairs whose result files are complete */
    int report;             /* write the HTML report after the summaries */
} sv_run_opts;

/* Figures of a run, for the benchmark (rank 0: totals). */
typedef struct {
    double pass_seconds;   /* wall time of the passes over the stores */
    uint64_t bytes_read;   /* activation bytes read, all ranks */
    int passes;
    int64_t tokens;        /* tokens in the stores, counted once per pass */
    int64_t block_rows;
    int inputs_changed;        /* rank 0: pairs refused because an input changed mid-run */
    double feat_observe_seconds; /* rank 0: top_examples on: keeping the examples during the passes */
    double feat_finish_seconds;  /* rank 0: merging them across ranks and writing the feature files */
} sv_run_stats;

/* Collective. Returns SV_OK or the error code; the message has already been
 * printed once (by rank 0) when it returns an error. stats (may be NULL)
 * receives the run's figures. */
sv_rc sv_run(const char *config_path, const sv_run_opts *opts, MPI_Comm comm, sv_run_stats *stats);

#endif

/* Summaries built from the per-pair result files, so that one job, a job
 * array of shards, or a resumed run all end in the same files:
 *   all_eval_results.json  every pair's object without its per-latent
 *                          arrays (feature_metrics), plus {status:
 *                          error|missing} records for pairs without a result
 *   all_eval_results.csv   one row per pair, scalar metrics
 *   generalization.json/.csv  OOS vs in-sample metrics per SAE
 *   feature_metrics.h5     per-latent arrays of every complete pair (featmetrics.h) */
#ifndef SAEVAL_MERGE_H
#define SAEVAL_MERGE_H
#include <stdio.h>
#include "saeval/config.h"
#include "saeval/plan.h"

typedef struct {
    int complete, failed, missing;
} sv_merge_counts;

/* Rank 0 only. Lists failed and missing pairs on `report`. */
/* Rank 0 only. Lists failed and missing pairs on `report`; prints a table
 * of the main metrics on `table` when not NULL. */
sv_rc sv_merge(const sv_config *c, const sv_plan *pl, const char *out_dir, FILE *report, FILE *table,
               sv_merge_counts *counts);

#endif

/* `saeval plan CONFIG [--shards N]`: what a sweep will cost before it is
 * submitted: pairs, passes per dataset under the memory budget, cost per
 * shard and the array size worth asking for. Reads configs and headers
 * only (no weights, no activations). */
#include "plancmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/agree.h"
#include "saeval/config.h"
#include "saeval/fsutil.h"
#include "saeval/plan.h"

/* MPI, HDF5 and OpenBLAS on top of the budget (measured by
 * `saeval bench --scale`: VmHWM of a run with nothing to evaluate). */
#define SV_RUNTIME_ALLOWANCE_MB 256

static double mb(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* Report for N shards on rank 0. cost is tokens x d_in x d_sae; the
 * encoder GEMM is 2 FLOP per unit, and the rest of the work is small. */
static sv_rc report(FILE *out, const sv_config *c, const sv_plan *pl, int n_shards, double gflops, int ranks)
{
    const int ns = pl->n_saes, nd = pl->n_ds, np = ns * nd;
    int *shard_of = sv_calloc((size_t)np + 1, sizeof *shard_of), *order = sv_calloc((size_t)np + 1, sizeof *order);
    int *mask = sv_calloc((size_t)np + 1, sizeof *mask), *pass_of = sv_calloc((size_t)np + 1, sizeof *pass_of);
    int *n_pass = sv_calloc((size_t)nd + 1, sizeof *n_pass);
    double *load = sv_calloc((size_t)n_shards, sizeof *load), *todo_cost = sv_calloc((size_t)n_shards, sizeof *todo_cost);
    uint64_t *maxb = sv_calloc((size_t)nd + 1, sizeof *maxb);
    sv_rc rc = SV_OK;
    if (!shard_of || !order || !mask || !pass_of || !n_pass || !load || !todo_cost || !maxb) { rc = SV_EINTERNAL; goto out; }

    int runnable = 0, todo = 0;
    double total = 0, largest = 0, total_todo = 0;
    for (int p = 0; p < np; p++) {
        runnable += !pl->pair_err[p];
        todo += pl->todo[p];
        total += pl->cost[p];
        if (pl->todo[p]) total_todo += pl->cost[p];
        if (pl->cost[p] > largest) largest = pl->cost[p];
    }
    fprintf(out, "plan: %d SAEs x %d datasets = %d pairs: %d can run, %d cannot, %d to compute, %d complete\n", ns, nd, np,
            runnable, np - runnable, todo, runnable - todo);
    uint64_t biggest = 0;
    int big_i = -1;
    for (int i = 0; i < ns; i++) {
        if (pl->sae_err[i]) continue;
        uint64_t b = sv_plan_sae_bytes(pl, i, c->precision, pl->block_rows);
        if (b > biggest) { biggest = b; big_i = i; }
    }
    fprintf(out, "memory per rank: budget %.0f MB for SAEs and buffers, + about %d MB runtime allowance (MPI, HDF5, "
                 "OpenBLAS); block rows %lld; largest SAE %.1f MB (%s)\n",
            mb(pl->budget), SV_RUNTIME_ALLOWANCE_MB, (long long)pl->block_rows, mb(biggest), big_i >= 0 ? pl->ids[big_i] : "-");

    if (pl->floor_bytes > pl->budget)
        fprintf(out, "warning: the budget is below what SAE %s needs on its own (%.1f MB with its geometry "
                     "workspace): that SAE will exceed it\n", pl->ids[pl->floor_sae], mb(pl->floor_bytes));
    /* Whole sweep as one job (shard 0 of 1). */
    sv_plan_pack(pl, c->precision, pl->todo, n_pass, pass_of, maxb);
    for (int j = 0; j < nd; j++) {
        int k = 0;
        for (int i = 0; i < ns; i++) k += pl->todo[i * nd + j];
        fprintf(out, "  dataset %-16s %lld tokens, %d SAEs to compute, %d pass%s (largest pass %.1f MB)\n",
                c->datasets[j].name, pl->ds_err[j] ? 0LL : (long long)pl->stores[j].n_tokens, k, n_pass[j],
                n_pass[j] == 1 ? "" : "es", mb(maxb[j]));
    }

    /* Shards: the same assignment `run --shard I/N` makes. */
    sv_plan_shards(pl->cost, np, n_shards, shard_of, order, load);
    double mx = 0, sum = 0;
    int max_passes = 0;
    uint64_t max_mem = 0;
    for (int s = 0; s < n_shards; s++) {
        for (int p = 0; p < np; p++) {
            mask[p] = pl->todo[p] && shard_of[p] == s;
            if (mask[p]) todo_cost[s] += pl->cost[p];
        }
        sv_plan_pack(pl, c->precision, mask, n_pass, pass_of, maxb);
        for (int j = 0; j < nd; j++) {
            if (n_pass[j] > max_passes) max_passes = n_pass[j];
            if (maxb[j] > max_mem) max_mem = maxb[j];
        }
        sum += todo_cost[s];
        if (todo_cost[s] > mx) mx = todo_cost[s];
    }
    const double mean = sum / n_shards, rate = gflops * 1e9 * ranks;
    fprintf(out, "shards: %d: cost to compute per shard (encoder GFLOP) max %.1f mean %.1f (max/mean %.2f); "
                 "estimated time per shard at %.0f GFLOP/s x %d ranks: max %.1f s mean %.1f s; at most %d passes over a "
                 "store, largest pass %.1f MB per rank\n",
            n_shards, 2 * mx / 1e9, 2 * mean / 1e9, mean > 0 ? mx / mean : 1.0, gflops, ranks, 2 * mx / rate,
            2 * mean / rate, max_passes, mb(max_mem));
    /* More shards than total / largest pair cannot shorten the longest
     * shard: the largest pair is one shard's work on its own. */
    int suggest = 1;
    if (largest > 0) suggest = (int)(total / largest);
    if (suggest > runnable) suggest = runnable;
    if (suggest < 1) suggest = 1;
    fprintf(out, "suggested array size: %d (the largest pair is 1/%.1f of the whole sweep; more shards would not "
                 "shorten the longest one)\n",
            suggest, largest > 0 ? total / largest : 0.0);
    fprintf(out, "SAEVAL_SUGGESTED_SHARDS=%d\n", suggest);
    (void)total_todo;
out:
    free(shard_of); free(order); free(mask); free(pass_of); free(n_pass); free(load); free(todo_cost); free(maxb);
    return rc;
}

sv_rc sv_plan_command(const char *config, const char *out_dir, int n_shards, double gflops, int ranks, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    sv_config c;
    sv_plan pl;
    memset(&pl, 0, sizeof pl);
    sv_rc rc = sv_agree(sv_config_load(&c, config), comm);
    if (rc != SV_OK) { sv_config_free(&c); return rc; }
    rc = sv_agree(sv_plan_build(&pl, &c, out_dir ? out_dir : c.output_dir, 0, 1, 0, comm), comm);
    if (rc == SV_OK && rank == 0) rc = report(stdout, &c, &pl, n_shards, gflops, ranks);
    fflush(stdout);
    rc = sv_agree(rc, comm);
    sv_plan_free(&pl);
    sv_config_free(&c);
    return rc;
}

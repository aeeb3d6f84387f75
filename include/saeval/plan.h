/* Sweep planning: which (SAE, dataset) pairs exist, which can run, which
 * belong to this shard, which are already complete on disk, and how SAEs
 * are grouped into passes over a store under a memory budget. Every rank
 * builds the same plan. */
#ifndef SAEVAL_PLAN_H
#define SAEVAL_PLAN_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/config.h"
#include "saeval/error.h"
#include "saeval/sae.h"
#include "saeval/store.h"

typedef struct {
    int n_saes, n_ds;
    char **ids;            /* SAE ids (directory names, or path suffixes) */
    sv_sae_cfg *cfg;       /* valid where sae_err[i] is NULL */
    char **sae_err;        /* why an SAE cannot be evaluated, or NULL */
    uint64_t *sae_hash;
    sv_store *stores;      /* open (collectively) where ds_err[j] is NULL */
    char **ds_err;
    uint64_t *ds_hash;
    /* Pairs, SAE-major: p = i * n_ds + j. */
    char **pair_err;       /* NULL: can run */
    uint64_t *pair_hash;   /* identity of everything that determines the result */
    int *in_shard;
    int *shard_of;         /* [pair]: the shard (of n_shards) the pair belongs to */
    double *cost;          /* [pair]: tokens x d_in x d_sae (0 for a pair that cannot run) */
    int *todo;             /* in shard, can run, and not complete on disk (or --force) */
    int shard, n_shards;
    /* Packing, computed once: block rows after the memory budget, and per
     * dataset the passes over its store (SAEs that fit the budget together). */
    uint64_t budget;       /* bytes per rank */
    int geometry;          /* the config computes the weight geometry */
    uint64_t floor_bytes;  /* the largest single SAE (with its geometry): a budget below it is exceeded */
    int floor_sae;
    int64_t block_rows;
    int *n_pass;           /* [n_ds] */
    uint64_t *ds_model_bytes;  /* [n_ds] downstream model: weights + fixed workspace (0: no model) */
    uint64_t *ds_stream_bytes; /* [n_ds] its workspace per SAE of a pass, and the SAE's share of the reduction */
    uint64_t *ds_pass_bytes;   /* [n_ds] a pass's own buffers (sv_pass_mem_bytes) */
    uint64_t resident_bytes;   /* held for the whole run: the geometry results of every SAE */
    int *pass_of;          /* [pair]: 1-based pass of a todo pair, 0 otherwise */
    uint64_t *feat_bytes;  /* [n_saes] feature data during a pass (top_examples; sv_featpass_mem) */
} sv_plan;

/* Collective. Fatal errors (bad config, out of memory) return an error;
 * a bad SAE or store only marks its pairs failed. */
sv_rc sv_plan_build(sv_plan *pl, const sv_config *c, const char *out_dir, int shard, int n_shards,
                    int force, MPI_Comm comm);
void sv_plan_free(sv_plan *pl);

/* Bytes an SAE needs while it is evaluated with blocks of `block` rows at
 * the current thread count: weights, encoder workspace, accumulators. */
uint64_t sv_sae_mem_bytes(const sv_sae_cfg *c, int precision, int64_t block);

/* Bytes a pass over store st holds besides its SAEs (run.c run_pass: a
 * work unit's rows, per-row scratch, the reduction tree); *per_sae: what
 * each SAE of the pass adds to the reduction. */
uint64_t sv_pass_mem_bytes(const sv_store *st, const sv_config *c, int64_t block, uint64_t *per_sae);

/* sv_sae_mem_bytes plus the SAE's feature data (top_examples): what the
 * plan counts for SAE i in a pass. */
uint64_t sv_plan_sae_bytes(const sv_plan *pl, int i, int precision, int64_t block);

/* Before a pair's result is written: have its store or any file of its SAE
 * changed since the plan was built (size, mtime, or the bytes of the small
 * files the format hashes)? Then *why says which, and the caller refuses the
 * pair instead of writing a result that mixes two versions. */
int sv_plan_inputs_changed(const sv_plan *pl, const sv_config *c, int p, char *why, size_t n);

/* Shard of each of np pairs (longest first onto the least loaded shard);
 * order [np] and load [n_shards] are workspace. */
void sv_plan_shards(const double *cost, int np, int n_shards, int *shard_of, int *order, double *load);
/* Pack the SAEs of the pairs flagged in todo into passes per dataset, in
 * config order, each pass within the budget: n_pass [n_ds], pass_of [pair]
 * (1-based, 0 when not in todo), max_pass_bytes [n_ds] (optional): the
 * largest estimate of one pass. */
void sv_plan_pack(const sv_plan *pl, int precision, const int *todo, int *n_pass, int *pass_of, uint64_t *max_pass_bytes);

/* Bytes the weight geometry of an SAE needs while it is computed (on top
 * of the SAEs loaded with it). */
uint64_t sv_geometry_mem_bytes(const sv_sae_cfg *c, int precision);

/* Hex form of a hash (17 bytes with the NUL). */
void sv_hash_hex(uint64_t h, char out[17]);
/* "input_hash" recorded in a complete result file at path, 0 if absent,
 * unreadable or incomplete. */
uint64_t sv_result_hash(const char *path);
/* The same from a head of sv_result_head (n bytes); when obj is not NULL
 * and the head is a complete "ok" result, *obj receives its parsed form
 * (cJSON, caller deletes). */
struct cJSON;
uint64_t sv_result_head_hash(const char *head, size_t n, struct cJSON **obj);

/* SAE ids: each directory's base name, or the shortest path suffix that
 * tells colliding names apart. ids[i] is malloc'ed. */
sv_rc sv_sae_ids(char **paths, int n, char **ids);

#endif

/* Sweep planning; see plan.h. */
#include "saeval/plan.h"
#include "saeval/geometry.h"
#include "saeval/downstream.h"
#include "saeval/featfile.h"
#include "saeval/featpass.h"
#include "saeval/forward.h"
#include "saeval/model.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

#include "saeval/forward.h"
#include "saeval/output.h"
#include "saeval/agree.h"
#include "saeval/arch.h"
#include "saeval/env.h"
#include "saeval/format.h"
#include "saeval/fsutil.h"
#include "saeval/metrics.h"
#include "saeval/results.h"

/* FNV-1a, 64 bits: identifies inputs, not a defence against tampering. */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV0 0xcbf29ce484222325ull
static uint64_t fnv_u64(uint64_t h, uint64_t v) { return fnv(h, &v, sizeof v); }
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }

void sv_hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

/* Hash of a small file's bytes, or of "absent". */
static uint64_t hash_file(uint64_t h, const char *path)
{
    char *text = NULL;
    size_t n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return fnv_str(h, "<absent>");
    fclose(fp);
    if (sv_read_file(path, &text, &n) != SV_OK) return fnv_str(h, "<unreadable>");
    h = fnv(h, text, n);
    free(text);
    return h;
}

/* Identity of a big file without reading it: size and modification time. */
static uint64_t hash_stat(uint64_t h, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return fnv_str(h, "<absent>");
    h = fnv_u64(h, (uint64_t)st.st_size);
    h = fnv_u64(h, (uint64_t)st.st_mtim.tv_sec);
    return fnv_u64(h, (uint64_t)st.st_mtim.tv_nsec);
}

static void hash_visit(void *ctx, const char *file, sv_ident_kind kind)
{
    uint64_t *h = ctx;
    *h = kind == SV_IDENT_BYTES ? hash_file(*h, file) : hash_stat(*h, file);
}

/* Every file the SAE's format reads, as the format lists them, and the
 * run config's scaling factor. */
static sv_rc sae_identity(const sv_config *c, int i, uint64_t *out)
{
    uint64_t h = FNV0;
    sv_rc rc = sv_format_for(c->saes[i].path)->identity(c->saes[i].path, hash_visit, &h);
    h = fnv_u64(h, (uint64_t)c->saes[i].has_scale);
    if (c->saes[i].transcoder) h = fnv_str(h, "transcoder"); /* only then: other hashes unchanged */
    *out = fnv(h, &c->saes[i].scaling_factor, sizeof(double));
    return rc;
}

int sv_plan_inputs_changed(const sv_plan *pl, const sv_config *c, int p, char *why, size_t n)
{
    const int i = p / pl->n_ds, j = p % pl->n_ds;
    const sv_store *st = &pl->stores[j];
    struct stat sb;
    if (stat(st->path, &sb) != 0) {
        snprintf(why, n, "%s: the store disappeared during the run (%s); pair %s x %s not written",
                 st->path, strerror(errno), pl->ids[i], c->datasets[j].name);
        return 1;
    }
    int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    if ((uint64_t)sb.st_size != st->file_size || mt != st->mtime_ns) {
        snprintf(why, n, "%s: the store changed during the run (size %llu -> %llu bytes, mtime changed: %s); "
                 "pair %s x %s not written, rerun to evaluate the new file", st->path,
                 (unsigned long long)st->file_size, (unsigned long long)sb.st_size, mt != st->mtime_ns ? "yes" : "no",
                 pl->ids[i], c->datasets[j].name);
        return 1;
    }
    uint64_t h = 0;
    if (sae_identity(c, i, &h) != SV_OK || h != pl->sae_hash[i]) {
        sv_clear_error();
        snprintf(why, n, "%s: the SAE's files changed during the run (a file the %s format reads was rewritten, "
                 "touched or removed); pair %s x %s not written, rerun to evaluate the new files",
                 c->saes[i].path, sv_format_for(c->saes[i].path)->name, pl->ids[i], c->datasets[j].name);
        return 1;
    }
    return 0;
}

uint64_t sv_result_hash(const char *path)
{
    char *head = NULL;
    size_t n = 0;
    if (sv_result_head(path, &head, &n) != SV_OK) {
        sv_clear_error(); /* absent or incomplete: the pair is to do */
        return 0;
    }
    uint64_t h = sv_result_head_hash(head, n, NULL);
    free(head);
    return h;
}

uint64_t sv_result_head_hash(const char *head, size_t n, cJSON **obj)
{
    cJSON *root = cJSON_ParseWithLength(head, n);
    uint64_t h = 0;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(root, "input_hash");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (cJSON_IsString(hs) && cJSON_IsString(st) && strcmp(st->valuestring, "ok") == 0 &&
        cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "metrics")))
        h = strtoull(hs->valuestring, NULL, 16);
    if (obj && h) *obj = root;
    else cJSON_Delete(root);
    return h;
}

uint64_t sv_sae_mem_bytes(const sv_sae_cfg *c, int precision, int64_t block)
{
    const uint64_t rs = precision == 64 ? 8 : 4, d = (uint64_t)c->d_in, m = (uint64_t)c->d_sae;
    const uint64_t o = (uint64_t)sv_cfg_d_out(c);
    /* W_enc, W_dec, b_dec, W_skip, and up to three per-latent vectors (gated: b_gate, r_mag, b_mag) */
    const uint64_t weights = rs * (d * m + m * o + o + 3 * m + (c->skip ? o * d : 0));
    /* derived norms (sae.c); the slot's integer partials and last sequence per latent (run.c) */
    const uint64_t acc = 3 * 8 * m + 8 * (uint64_t)sv_ints_len(c->d_sae) + 8 * m;
    return weights + sv_fwd_mem_bytes(c, precision, block) + acc;
}

uint64_t sv_pass_mem_bytes(const sv_store *st, const sv_config *c, int64_t block, uint64_t *per_sae)
{
    /* run_pass: a work unit's rows (activations, evaluated copy, targets
     * when a transcoder is in the pass: counted always), token ids,
     * sequence and token of each row, the block's per-row quantities, the
     * feature rows' offsets; the reduction tree's leaf, the result on rank
     * 0 and up to two nodes per level (its binary counter and finished
     * blocks), each of the dataset's sums plus SV_P_COUNT per SAE. */
    const int64_t B = c->legacy_batch_sequences, n_units = (st->n_seq + B - 1) / B;
    int64_t max_unit = 1, lg = 1;
    for (int64_t u = 0; u < n_units; u++) {
        const int64_t s1 = (u + 1) * B < st->n_seq ? (u + 1) * B : st->n_seq;
        const int64_t w = st->seq_offsets[s1] - st->seq_offsets[u * B];
        if (w > max_unit) max_unit = w;
    }
    while (((int64_t)1 << lg) < n_units) lg++;
    const uint64_t levels = 2 + 2 * (uint64_t)(lg + 1);
    const uint64_t D = (uint64_t)st->d_in + 1 + (st->d_out > 0 ? (uint64_t)st->d_out + 1 : 0);
    const uint64_t rows = (uint64_t)max_unit;
    *per_sae = 8 * SV_P_COUNT * levels;
    return 2 * 4 * rows * ((uint64_t)st->d_in + (uint64_t)(st->d_out > 0 ? st->d_out : 0)) + 3 * 8 * rows +
           8 * (uint64_t)block * 6 + (c->top_examples > 0 ? 8 * (rows + 1) : 0) + 8 * (uint64_t)n_units +
           8 * D * levels;
}

uint64_t sv_plan_sae_bytes(const sv_plan *pl, int i, int precision, int64_t block)
{
    return sv_sae_mem_bytes(&pl->cfg[i], precision, block) + (pl->feat_bytes ? pl->feat_bytes[i] : 0);
}

uint64_t sv_geometry_mem_bytes(const sv_sae_cfg *c, int precision)
{
    /* gram_pass in geometry.c: inverse norms [d_sae]; the unit rows of one
     * 1024-row block [1024][d]; per thread, the unit rows of one Gram panel
     * [SV_GRAM_PANEL][d], its GEMM result [1024][SV_GRAM_PANEL] and row and
     * column maxima with their arguments [d_sae]; the MAXLOC send and
     * receive buffers ({double, int} each), the block rows' state, block
     * sums (three of them), and a few kilobytes of histograms and top
     * pairs. (The per-latent results stay with the run: plan resident_bytes.) */
    const uint64_t rs = precision == 64 ? 8 : 4, m = (uint64_t)c->d_sae, B = 1024, P = SV_GRAM_PANEL;
    const uint64_t d = (uint64_t)(sv_cfg_d_out(c) > c->d_in ? sv_cfg_d_out(c) : c->d_in); /* W_enc or W_dec rows */
    const uint64_t T = (uint64_t)sv_fwd_get_threads();
    const uint64_t Bm = B < m ? B : m, Pm = P < m ? P : m;
    return 8 * m + rs * Bm * d + T * rs * (Pm * d + Bm * P) + 4 * 8 * T * m + 2 * 16 * m + 32 * Bm +
           3 * 8 * ((m + B - 1) / B) * 2 + (64u << 10) * (T + 1);
}

static sv_rc pack_passes(sv_plan *pl, const sv_config *c, MPI_Comm comm);

/* With top_examples: the pair's feature file exists, opens, and holds the
 * config's top_examples and context for an SAE of d_sae latents. */
static int feature_file_ok(const sv_config *c, const char *out_dir, const char *sae_id, const char *ds, int64_t d_sae)
{
    char *path = sv_featfile_path(out_dir, sae_id, ds);
    sv_featfile *f = NULL;
    int ok = path && sv_featfile_open(&f, path) == SV_OK;
    if (ok) {
        const sv_feat_params *q = sv_featfile_params(f);
        ok = q->d_sae == d_sae && q->top_n == c->top_examples && q->ctx_before == c->ctx_before &&
             q->ctx_after == c->ctx_after;
    }
    sv_featfile_close(f);
    free(path);
    return ok;
}

/* Shards: longest pair first onto the least loaded shard. Depends on
 * nothing but the config and the inputs' sizes, so every task of a job
 * array (and every rerun) agrees on its share. */
void sv_plan_shards(const double *cost, int np, int n_shards, int *shard_of, int *order, double *load)
{
    for (int s = 0; s < n_shards; s++) load[s] = 0;
    for (int p = 0; p < np; p++) order[p] = p;
    for (int a = 1; a < np; a++) { /* insertion sort: cost desc, index asc */
        int v = order[a], b = a - 1;
        while (b >= 0 && cost[order[b]] < cost[v]) { order[b + 1] = order[b]; b--; }
        order[b + 1] = v;
    }
    for (int q = 0; q < np; q++) {
        int best = 0;
        for (int s = 1; s < n_shards; s++)
            if (load[s] < load[best]) best = s;
        load[best] += cost[order[q]] > 0 ? cost[order[q]] : 1;
        shard_of[order[q]] = best;
    }
}

static sv_rc set_err(char **slot, const char *msg)
{
    free(*slot);
    *slot = sv_strdup(msg);
    return *slot ? SV_OK : SV_EINTERNAL;
}

/* Same verdict on every rank for a per-item check; the message of the
 * lowest failing rank is kept (and printed once by rank 0). */
static sv_rc item_verdict(sv_rc rc, MPI_Comm comm, char **err)
{
    sv_rc all = sv_agree(rc, comm);
    if (all == SV_OK) return SV_OK;
    if (all == SV_EINTERNAL && rc != SV_EINPUT) return all; /* not a bad input: fatal */
    return set_err(err, sv_errmsg()) == SV_OK ? SV_EINPUT : SV_EINTERNAL;
}

sv_rc sv_plan_build(sv_plan *pl, const sv_config *c, const char *out_dir, int shard, int n_shards,
                    int force, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    memset(pl, 0, sizeof *pl);
    const int ns = c->n_saes, nd = c->n_datasets, np = ns * nd;
    pl->n_saes = ns;
    pl->n_ds = nd;
    pl->shard = shard;
    pl->n_shards = n_shards;
    pl->ids = sv_calloc((size_t)ns, sizeof *pl->ids);
    pl->cfg = sv_calloc((size_t)ns, sizeof *pl->cfg);
    pl->sae_err = sv_calloc((size_t)ns, sizeof *pl->sae_err);
    pl->sae_hash = sv_calloc((size_t)ns, sizeof *pl->sae_hash);
    pl->stores = sv_calloc((size_t)nd, sizeof *pl->stores);
    pl->ds_err = sv_calloc((size_t)nd, sizeof *pl->ds_err);
    pl->ds_hash = sv_calloc((size_t)nd, sizeof *pl->ds_hash);
    pl->ds_model_bytes = sv_calloc((size_t)nd + 1, sizeof *pl->ds_model_bytes);
    pl->ds_stream_bytes = sv_calloc((size_t)nd + 1, sizeof *pl->ds_stream_bytes);
    pl->pair_err = sv_calloc((size_t)np, sizeof *pl->pair_err);
    pl->pair_hash = sv_calloc((size_t)np, sizeof *pl->pair_hash);
    pl->in_shard = sv_calloc((size_t)np, sizeof *pl->in_shard);
    pl->todo = sv_calloc((size_t)np, sizeof *pl->todo);
    pl->shard_of = sv_calloc((size_t)np, sizeof *pl->shard_of);
    char **paths = sv_calloc((size_t)ns, sizeof *paths);
    double *cost = pl->cost = sv_calloc((size_t)np, sizeof *cost), *load = sv_calloc((size_t)n_shards, sizeof *load);
    int *order = sv_calloc((size_t)np, sizeof *order);
    sv_rc rc = SV_OK;
    if (!pl->ids || !pl->cfg || !pl->sae_err || !pl->sae_hash || !pl->stores || !pl->ds_err || !pl->ds_hash ||
        !pl->ds_model_bytes || !pl->ds_stream_bytes || !pl->shard_of ||
        !pl->pair_err || !pl->pair_hash || !pl->in_shard || !pl->todo || !paths || !cost || !load || !order)
        rc = SV_EINTERNAL;
    if (rc == SV_OK) {
        for (int i = 0; i < ns; i++) paths[i] = c->saes[i].path;
        rc = sv_sae_ids(paths, ns, pl->ids);
    }
    if ((rc = sv_agree(rc, comm)) != SV_OK) goto out;

    /* Options that change numbers: part of every pair's identity. */
    uint64_t opt = fnv_str(FNV0, SV_RESULT_VERSION);
    opt = fnv_u64(opt, (uint64_t)c->precision);
    opt = fnv_u64(opt, (uint64_t)c->legacy_batch_sequences);
    for (int k = 0; k < c->n_exclude; k++) opt = fnv_u64(opt, (uint64_t)c->exclude_ids[k]);
    opt = fnv(opt, &c->model_params, sizeof c->model_params);
    opt = fnv_u64(opt, (uint64_t)c->geometry);
    opt = fnv_u64(opt, (uint64_t)c->nonfinite_skip);
    opt = fnv(opt, &c->dead_density_threshold, sizeof c->dead_density_threshold);
    opt = fnv_u64(opt, (uint64_t)c->downstream_sequences);

    for (int i = 0; i < ns && rc == SV_OK; i++) {
        sv_rc r = sv_sae_load_cfg(c->saes[i].path, &pl->cfg[i]);
        if (r == SV_OK && c->saes[i].transcoder) r = sv_sae_declare_transcoder(&pl->cfg[i], c->saes[i].path);
        rc = item_verdict(r, comm, &pl->sae_err[i]);
        if (rc == SV_EINPUT) rc = SV_OK;
        if (rc == SV_OK) rc = sae_identity(c, i, &pl->sae_hash[i]);
    }
    for (int j = 0; j < nd && rc == SV_OK; j++) {
        sv_rc r = sv_store_open(&pl->stores[j], c->datasets[j].path, comm);
        rc = item_verdict(r, comm, &pl->ds_err[j]);
        if (rc == SV_EINPUT) { sv_store_close(&pl->stores[j]); rc = SV_OK; continue; }
        const sv_store *st = &pl->stores[j];
        uint64_t h = fnv_u64(FNV0, st->file_size);
        h = fnv_u64(h, (uint64_t)st->mtime_ns);
        h = fnv_u64(h, (uint64_t)st->n_tokens);
        pl->ds_hash[j] = fnv_u64(h, (uint64_t)st->d_in);
        if (st->d_out > 0) pl->ds_hash[j] = fnv_u64(pl->ds_hash[j], (uint64_t)st->d_out); /* /targets (stores without keep their hash) */
        if (c->datasets[j].model) { /* the downstream model: its config and weight files */
            const char *names[3] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
            uint64_t hm = fnv_str(pl->ds_hash[j], c->datasets[j].model);
            for (int q = 0; q < 3 && rc == SV_OK; q++) {
                char *mp = sv_path_join(c->datasets[j].model, names[q]);
                if (!mp) rc = SV_EINTERNAL;
                else hm = q == 1 ? hash_stat(hm, mp) : hash_file(hm, mp);
                free(mp);
            }
            pl->ds_hash[j] = hm;
            /* Checked before anything runs, failing only this dataset's
             * pairs: the model's config, and the store against it. */
            char *cp = sv_path_join(c->datasets[j].model, "config.json"), *text = NULL;
            size_t len = 0;
            sv_model_cfg mc;
            sv_rc r2 = cp ? sv_read_file(cp, &text, &len) : SV_EINTERNAL;
            if (r2 == SV_OK) r2 = sv_model_cfg_parse(&mc, text, len, cp);
            if (r2 == SV_OK) {
                sv_model tm;
                sv_hook hk;
                memset(&tm, 0, sizeof tm);
                tm.cfg = mc;
                tm.dir = c->datasets[j].model;
                r2 = sv_ds_check_store(st, &tm, &hk);
            }
            free(cp);
            free(text);
            rc = item_verdict(r2, comm, &pl->ds_err[j]);
            if (rc == SV_EINPUT) { sv_store_close(&pl->stores[j]); rc = SV_OK; continue; }
            int64_t maxT = 1;
            for (int64_t q = 0; q < st->n_seq; q++)
                if (st->seq_offsets[q + 1] - st->seq_offsets[q] > maxT) maxT = st->seq_offsets[q + 1] - st->seq_offsets[q];
            const int th = sv_fwd_get_threads();
            const size_t s2 = sv_model_scratch_bytes(&mc, c->precision, maxT, 2, th);
            pl->ds_model_bytes[j] = sv_model_cfg_weight_bytes(&mc, c->precision) + s2;
            pl->ds_stream_bytes[j] = sv_model_scratch_bytes(&mc, c->precision, maxT, 3, th) - s2;
        }
    }
    if (rc != SV_OK) goto out;

    for (int i = 0; i < ns && rc == SV_OK; i++) {
        for (int j = 0; j < nd && rc == SV_OK; j++) {
            int p = i * nd + j;
            uint64_t h = fnv_u64(opt, pl->sae_hash[i]);
            /* SAEs whose reading issue 11 changed (top-k l1 of rescaled
             * activations; pre-6.0 standard+topk cfgs read as top-k): their old
             * result files must not be reused; every other hash is unchanged. */
            const sv_sae_cfg *sc = &pl->cfg[i];
            if (!pl->sae_err[i] && ((sc->arch == SV_ARCH_TOPK && sc->rescale_acts_by_decoder_norm) || sc->pre6_topk))
                h = fnv_str(h, "issue11-reading");
            h = fnv_u64(h, pl->ds_hash[j]);
            pl->pair_hash[p] = fnv_str(h, c->datasets[j].name);
            if (pl->sae_err[i]) rc = set_err(&pl->pair_err[p], pl->sae_err[i]);
            else if (pl->ds_err[j]) rc = set_err(&pl->pair_err[p], pl->ds_err[j]);
            else if (pl->cfg[i].d_in != pl->stores[j].d_in) {
                char msg[2048];
                snprintf(msg, sizeof msg, "%s/cfg.json: d_in: %lld does not match %s: /activations has d_in %lld",
                         c->saes[i].path, (long long)pl->cfg[i].d_in, c->datasets[j].path,
                         (long long)pl->stores[j].d_in);
                rc = set_err(&pl->pair_err[p], msg);
                if (rank == 0) fprintf(stderr, "saeval: error: %s\n", msg);
            } else if (pl->cfg[i].transcoder && (pl->stores[j].d_out != sv_cfg_d_out(&pl->cfg[i]) || c->datasets[j].model)) {
                /* A transcoder's reconstruction is compared with /targets. */
                char msg[2048];
                const sv_store *st = &pl->stores[j];
                if (c->datasets[j].model)
                    snprintf(msg, sizeof msg, "%s: model: downstream metrics (splicing the SAE into %s) are not supported "
                             "for transcoder %s; drop \"model\" for this dataset or evaluate the transcoder on its own",
                             c->datasets[j].path, c->datasets[j].model, c->saes[i].path);
                else if (st->d_out == 0)
                    snprintf(msg, sizeof msg, "%s: /targets: missing; SAE %s is a transcoder (d_out %lld), whose output is "
                             "compared with the store's /targets [n_tokens, d_out]", c->datasets[j].path, c->saes[i].path,
                             (long long)sv_cfg_d_out(&pl->cfg[i]));
                else
                    snprintf(msg, sizeof msg, "%s: /targets: d_out %lld does not match transcoder %s: d_out %lld",
                             c->datasets[j].path, (long long)st->d_out, c->saes[i].path, (long long)sv_cfg_d_out(&pl->cfg[i]));
                rc = set_err(&pl->pair_err[p], msg);
                if (rank == 0) fprintf(stderr, "saeval: error: %s\n", msg);
            } else {
                cost[p] = (double)pl->stores[j].n_tokens * (double)pl->cfg[i].d_in * (double)pl->cfg[i].d_sae;
            }
        }
    }
    if (rc != SV_OK) goto out;

    sv_plan_shards(cost, np, n_shards, pl->shard_of, order, load);
    for (int p = 0; p < np; p++) pl->in_shard[p] = pl->shard_of[p] == shard;

    /* Resume: rank 0 looks at the result files once and tells everyone. */
    if (rank == 0) {
        for (int p = 0; p < np; p++) {
            if (!pl->in_shard[p] || pl->pair_err[p]) continue;
            pl->todo[p] = 1;
            if (force) continue;
            char *path = sv_pair_path(out_dir, pl->ids[p / nd], c->datasets[p % nd].name);
            if (path && sv_result_hash(path) == pl->pair_hash[p]) pl->todo[p] = 0;
            free(path);
            if (!pl->todo[p] && c->top_examples > 0 && !feature_file_ok(c, out_dir, pl->ids[p / nd], c->datasets[p % nd].name, pl->cfg[p / nd].d_sae))
                pl->todo[p] = 1; /* a complete pair without its feature file (or with other feature settings) */
        }
    }
    MPI_Bcast(pl->todo, np, MPI_INT, 0, comm);
    rc = pack_passes(pl, c, comm);
out:
    free(paths); free(load); free(order);
    return rc;
}

/* Block rows and passes, once for the run: block rows are the config's,
 * lowered (in GEMM tiles) until the largest SAE fits the memory budget
 * (tiles keep results independent of it); per dataset, the SAEs that
 * still need it are packed in config order into passes that fit the
 * budget together. */
static sv_rc pack_passes(sv_plan *pl, const sv_config *c, MPI_Comm comm)
{
    const int ns = pl->n_saes, nd = pl->n_ds;
    pl->budget = c->memory_budget_mb > 0 ? (uint64_t)c->memory_budget_mb << 20 : sv_env_default_budget(comm);
    pl->geometry = c->geometry;
    int64_t block = c->block_tokens;
    /* Feature data per SAE (sv_featpass_mem): windows as wide as the
     * longest sequence of any store for whole-sequence context. */
    int P;
    MPI_Comm_size(comm, &P);
    int64_t maxT = 1;
    for (int j = 0; j < nd; j++)
        if (!pl->ds_err[j]) {
            int64_t t = sv_featpass_max_seq(&pl->stores[j]);
            if (t > maxT) maxT = t;
        }
    pl->feat_bytes = sv_calloc((size_t)ns + 1, sizeof *pl->feat_bytes);
    if (!pl->feat_bytes) return SV_EINTERNAL;
    for (int i = 0; i < ns; i++)
        if (!pl->sae_err[i])
            pl->feat_bytes[i] = sv_featpass_mem(c->top_examples, c->ctx_before, c->ctx_after, maxT, pl->cfg[i].d_sae, P);
    /* The geometry results of every SAE stay until the end of the run
     * (each SAE's pairs of later datasets write them). */
    pl->resident_bytes = 0;
    for (int i = 0; i < ns && c->geometry; i++)
        if (!pl->sae_err[i]) pl->resident_bytes += 3 * 8 * (uint64_t)pl->cfg[i].d_sae;
    pl->ds_pass_bytes = sv_calloc((size_t)nd + 1, sizeof *pl->ds_pass_bytes);
    if (!pl->ds_pass_bytes) return SV_EINTERNAL;
    /* A pass's base: its own buffers, the downstream model's, the resident results. */
    uint64_t base = 0;
    for (int pass_block = 0; pass_block < 2; pass_block++) { /* at the config's block, then at the one chosen */
        base = 0;
        for (int j = 0; j < nd; j++) {
            uint64_t per_sae = 0;
            if (pl->ds_err[j]) continue;
            pl->ds_pass_bytes[j] = sv_pass_mem_bytes(&pl->stores[j], c, block, &per_sae) + pl->resident_bytes;
            if (pass_block) pl->ds_stream_bytes[j] += per_sae;
            if (pl->ds_pass_bytes[j] + pl->ds_model_bytes[j] > base) base = pl->ds_pass_bytes[j] + pl->ds_model_bytes[j];
        }
        for (int i = 0; i < ns && !pass_block; i++) {
            /* The geometry of an SAE is computed while it is loaded, so both must fit. */
            const uint64_t g = c->geometry ? sv_geometry_mem_bytes(&pl->cfg[i], c->precision) : 0;
            while (!pl->sae_err[i] && block > SV_GEMM_ROWS &&
                   base + sv_plan_sae_bytes(pl, i, c->precision, block) + g > pl->budget)
                block -= SV_GEMM_ROWS;
        }
    }
    for (int i = 0; i < ns; i++) { /* what no budget can go below */
        if (pl->sae_err[i]) continue;
        uint64_t f = base + sv_plan_sae_bytes(pl, i, c->precision, block) +
                     (c->geometry ? sv_geometry_mem_bytes(&pl->cfg[i], c->precision) : 0);
        if (f > pl->floor_bytes) { pl->floor_bytes = f; pl->floor_sae = i; }
    }
    pl->block_rows = block;
    /* An SAE that does not fit even at the smallest block is refused now,
     * before any work, rather than killed by the OOM killer later. */
    for (int i = 0; i < ns; i++) {
        int needed = 0;
        for (int j = 0; j < nd; j++) needed |= pl->todo[i * nd + j];
        if (!needed || pl->sae_err[i]) continue;
        uint64_t b = sv_plan_sae_bytes(pl, i, c->precision, block);
        if (b > pl->budget) {
            const sv_sae_cfg *w = &pl->cfg[i];
            const uint64_t mib = 1u << 20, rs = c->precision == 64 ? 8 : 4;
            const uint64_t weights = rs * 2 * (uint64_t)w->d_in * (uint64_t)w->d_sae;
            return sv_fail(SV_EINPUT, "%s: memory_budget_mb: %llu MB per rank is too small for SAE %s (d_in %lld, "
                           "d_sae %lld): it needs %llu MB (encoder and decoder weights %llu MB, feature data %llu MB, "
                           "the rest buffers at the smallest block of %lld rows); raise memory_budget_mb, lower "
                           "top_examples or context, or run fewer ranks per node",
                           c->config_path ? c->config_path : "config", (unsigned long long)(pl->budget >> 20), pl->ids[i],
                           (long long)w->d_in, (long long)w->d_sae, (unsigned long long)((b + mib - 1) / mib),
                           (unsigned long long)((weights + mib - 1) / mib),
                           (unsigned long long)((pl->feat_bytes[i] + mib - 1) / mib), (long long)block);
        }
    }
    pl->n_pass = sv_calloc((size_t)(nd ? nd : 1), sizeof *pl->n_pass);
    pl->pass_of = sv_calloc((size_t)ns * (size_t)nd + 1, sizeof *pl->pass_of);
    if (!pl->n_pass || !pl->pass_of) return SV_EINTERNAL;
    sv_plan_pack(pl, c->precision, pl->todo, pl->n_pass, pl->pass_of, NULL);
    return SV_OK;
}

void sv_plan_pack(const sv_plan *pl, int precision, const int *todo, int *n_pass, int *pass_of, uint64_t *max_pass_bytes)
{
    const int ns = pl->n_saes, nd = pl->n_ds;
    /* A pass holds its SAEs, and while the next one loads, the geometry
     * workspace of one SAE (the largest of the pass, reserved). */
    for (int j = 0; j < nd; j++) {
        /* A downstream model is loaded once per pass: its weights and fixed
         * workspace start every pass, each SAE adds its streams. */
        const uint64_t base = pl->ds_model_bytes[j] + (pl->ds_pass_bytes ? pl->ds_pass_bytes[j] : 0);
        uint64_t used = base, geo = 0;
        int in = 0;
        n_pass[j] = 0;
        if (max_pass_bytes) max_pass_bytes[j] = 0;
        for (int i = 0; i < ns; i++) {
            pass_of[i * nd + j] = 0;
            if (!todo[i * nd + j]) continue;
            uint64_t b = sv_plan_sae_bytes(pl, i, precision, pl->block_rows) + pl->ds_stream_bytes[j];
            int first = 1; /* geometry is computed in the SAE's first pass only */
            for (int jj = 0; jj < j && first; jj++) first = !todo[i * nd + jj];
            uint64_t g = pl->geometry && first ? sv_geometry_mem_bytes(&pl->cfg[i], precision) : 0;
            uint64_t g2 = g > geo ? g : geo;
            if (in > 0 && used + b + g2 > pl->budget) { used = base; in = 0; geo = 0; g2 = g; }
            if (in == 0) n_pass[j]++;
            used += b;
            geo = g2;
            in++;
            pass_of[i * nd + j] = n_pass[j];
            if (max_pass_bytes && used + geo > max_pass_bytes[j]) max_pass_bytes[j] = used + geo;
        }
    }
}

void sv_plan_free(sv_plan *pl)
{
    for (int i = 0; i < pl->n_saes; i++) {
        if (pl->ids) free(pl->ids[i]);
        if (pl->sae_err) free(pl->sae_err[i]);
    }
    for (int j = 0; j < pl->n_ds; j++) {
        if (pl->stores && !(pl->ds_err && pl->ds_err[j])) sv_store_close(&pl->stores[j]);
        if (pl->ds_err) free(pl->ds_err[j]);
    }
    for (int p = 0; pl->pair_err && p < pl->n_saes * pl->n_ds; p++) free(pl->pair_err[p]);
    free(pl->ids); free(pl->cfg); free(pl->sae_err); free(pl->sae_hash); free(pl->stores);
    free(pl->ds_err); free(pl->ds_hash); free(pl->ds_model_bytes); free(pl->ds_stream_bytes); free(pl->ds_pass_bytes); free(pl->pair_err); free(pl->pair_hash);
    free(pl->in_shard); free(pl->todo); free(pl->n_pass); free(pl->pass_of);
    free(pl->shard_of); free(pl->cost); free(pl->feat_bytes);
    memset(pl, 0, sizeof *pl);
}

sv_rc sv_sae_ids(char **paths, int n, char **ids)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(paths[i], paths[j]) == 0)
                return sv_fail(SV_EINPUT, "%s: SAE listed twice in the config", paths[i]);
    }
    for (int i = 0; i < n; i++) {
        /* Grow the suffix one path component at a time until no other
         * path ends with the same components. */
        const char *p = paths[i];
        const char *start = p + strlen(p);
        for (;;) {
            const char *q = start;
            if (q > p) q--;
            while (q > p && q[-1] != '/') q--;
            start = q;
            size_t sl = strlen(start);
            int clash = 0;
            for (int j = 0; j < n && !clash; j++) {
                if (j == i) continue;
                size_t lj = strlen(paths[j]);
                if (lj >= sl && strcmp(paths[j] + lj - sl, start) == 0 &&
                    (lj == sl || paths[j][lj - sl - 1] == '/'))
                    clash = 1;
            }
            if (!clash || start == p) break;
            start--; /* step over the slash */
        }
        ids[i] = sv_strdup(start);
        if (!ids[i]) return SV_EINTERNAL;
    }
    return SV_OK;
}

/* Feature analysis at the end of a pass (featpass.h). */
#include "saeval/featpass.h"
#include "saeval/agree.h"
#include "saeval/featfile.h"

#include <stdlib.h>
#include <string.h>

void sv_featpass_params(sv_feat_params *p, int64_t d_sae, int top_examples, int ctx_before, int ctx_after,
                        int64_t max_seq_len)
{
    sv_feat_params_default(p, d_sae);
    p->top_n = top_examples;
    p->ctx_before = ctx_before;
    p->ctx_after = ctx_after;
    p->window_width = ctx_before < 0 ? (max_seq_len > 0 ? max_seq_len : 1) : (int64_t)ctx_before + 1 + ctx_after;
}

int64_t sv_featpass_max_seq(const sv_store *st)
{
    int64_t m = 1;
    for (int64_t s = 0; s < st->n_seq; s++)
        if (st->seq_offsets[s + 1] - st->seq_offsets[s] > m) m = st->seq_offsets[s + 1] - st->seq_offsets[s];
    return m;
}

#define WIN_BYTES ((size_t)64 << 20) /* windows of a latent chunk (before the file's own buffers) */

/* Latents written to the file at a time: multiples of 64, so each put
 * holds whole file chunks (powers of two up to 64 latents). */
static int64_t write_chunk(const sv_feat_params *p, int64_t maxT)
{
    int64_t chunk = 64;
    while (chunk < p->d_sae && sv_feat_windows_mem(p, 2 * chunk, maxT) <= WIN_BYTES) chunk *= 2;
    return chunk < p->d_sae ? chunk : p->d_sae;
}

uint64_t sv_featpass_mem(int top_examples, int ctx_before, int ctx_after, int64_t max_seq_len, int64_t d_sae,
                         int n_ranks)
{
    if (top_examples <= 0) return 0;
    sv_feat_params p;
    sv_featpass_params(&p, d_sae, top_examples, ctx_before, ctx_after, max_seq_len);
    /* the state, a packed latent range in the reduction, and on rank 0 the
     * windows of a latent chunk plus the file writer's buffers for it (about
     * the same size: ids and values of every window, per-latent arrays); the
     * other ranks hold less: their compressed share of those buffers */
    return sv_feat_mem(&p) + (n_ranks > 1 ? sv_feat_reduce_mem(&p) : 0) +
           2 * sv_feat_windows_mem(&p, write_chunk(&p, max_seq_len), max_seq_len);
}

#define IDS_GAP ((int64_t)1 << 14)  /* token ids between two ranges read in one go below this gap */
#define IDS_SPAN ((int64_t)1 << 20) /* at most this many ids per read */
/* Token ids of the windows' tokens, read from the store (no encoding). */
static sv_rc fill_ids(sv_feat_windows *w, sv_store *st, int64_t **buf, int64_t *cap)
{
    int64_t *rg = NULL, nr = 0;
    sv_rc rc = sv_feat_windows_ranges(w, &rg, &nr);
    for (int64_t k = 0; k < nr && rc == SV_OK;) {
        int64_t a = rg[2 * k], b = rg[2 * k + 1], e = k + 1;
        while (e < nr && rg[2 * e] - b <= IDS_GAP && rg[2 * e + 1] - a <= IDS_SPAN) b = rg[2 * e++ + 1];
        if (b - a > *cap) {
            free(*buf);
            *cap = b - a;
            if (!(*buf = sv_malloc((size_t)*cap * sizeof **buf))) { *cap = 0; rc = SV_EINTERNAL; break; }
        }
        if ((rc = sv_store_read_token_ids(st, a, b - a, *buf)) == SV_OK) sv_feat_windows_fill_ids(w, a, b - a, *buf);
        k = e;
    }
    free(rg);
    return rc;
}

sv_rc sv_featpass_finish(sv_feat *f, const sv_featpass_ctx *c, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    sv_store *st = c->st;
    sv_rc rc = sv_agree(sv_feat_reduce(f, comm), comm);
    if (rc != SV_OK) return rc;
    /* Rank 0 holds every example with its window values (captured in the
     * pass); the token ids come from the store. Latents go to the file in
     * chunks (multiples of the file's chunks) so the windows and the
     * writer's buffers stay small; every rank filters a share of each. */
    const sv_feat_params *p = sv_feat_params_of(f);
    const int64_t d = p->d_sae, maxT = sv_featpass_max_seq(st);
    const int64_t chunk = write_chunk(p, maxT);
    sv_featfile_writer *fw = NULL;
    if (rank == 0) {
        char *path = sv_featfile_path(c->out_dir, c->sae_id, c->dataset);
        sv_featfile_meta m = {c->sae_id, c->dataset, st->n_seq, p->window_width};
        rc = path ? sv_featfile_create(&fw, path, f, &m) : SV_EINTERNAL;
        free(path);
    } else {
        rc = sv_featfile_helper(&fw, p, p->window_width);
    }
    if ((rc = sv_agree(rc, comm)) != SV_OK) {
        sv_featfile_abort(fw);
        return rc;
    }
    int64_t *ids = NULL, cap = 0;
    for (int64_t j0 = 0; j0 < d && rc == SV_OK; j0 += chunk) {
        const int64_t j1 = j0 + chunk < d ? j0 + chunk : d;
        sv_feat_windows w, *wp = NULL;
        if (rank == 0 && sv_feat_windows_new(&w, f, j0, j1, st->seq_offsets, st->n_seq) == SV_OK) {
            wp = &w;
            sv_rc r2 = sv_feat_windows_fill_captured(&w, f);
            if (r2 == SV_OK && st->has_token_ids) r2 = fill_ids(&w, st, &ids, &cap);
            if (r2 != SV_OK) { sv_feat_windows_free(&w); wp = NULL; }
        }
        /* collective; a NULL window on rank 0 fails it on every rank */
        rc = sv_featfile_put_coll(fw, rank == 0 ? f : NULL, wp, j0, j1, comm);
        if (wp) sv_feat_windows_free(wp);
    }
    if (rank == 0 && rc == SV_OK) rc = sv_featfile_commit(fw);
    else sv_featfile_abort(fw);
    free(ids);
    return sv_agree(rc, comm);
}

/* Feature analysis at the end of a pass (featpass.h). */
#include "saeval/featpass.h"
#include "saeval/agree.h"
#include "saeval/featfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sv_featpass_params(sv_feat_params *p, int64_t d_sae, int top_examples, int ctx_before, int ctx_after)
{
    sv_feat_params_default(p, d_sae);
    p->top_n = top_examples;
    p->ctx_before = ctx_before;
    p->ctx_after = ctx_after;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    float *x, *xe;
    int64_t *ids, *tok_of;
} bufs;

/* Unit [t0, t1): the evaluated rows compacted as the pass does, encoded in
 * the same blocks, and their activations put into the windows. */
static sv_rc redo_unit(sv_feat_windows *w, sv_fwd *fwd, const sv_featpass_ctx *c, int64_t t0, int64_t t1, bufs *b)
{
    sv_store *st = c->st;
    const int64_t d = st->d_in, nt = t1 - t0, R = fwd->max_rows;
    sv_rc rc = sv_store_read_rows(st, t0, nt, b->x);
    if (rc == SV_OK && st->has_token_ids) rc = sv_store_read_token_ids(st, t0, nt, b->ids);
    if (rc != SV_OK) return rc;
    if (st->has_token_ids) sv_feat_windows_fill_ids(w, t0, nt, b->ids);
    int use_mask = c->n_mask > 0 && st->has_token_ids;
    int64_t ne = 0;
    for (int64_t t = 0; t < nt; t++) {
        if (use_mask && bsearch(&b->ids[t], c->mask_ids, (size_t)c->n_mask, sizeof(int64_t), cmp_i64)) continue;
        const float *xr = b->x + t * d;
        int finite = 1;
        for (int64_t i = 0; i < d && finite; i++) finite = isfinite(xr[i]);
        if (!finite) continue; /* the pass refused or masked it */
        memcpy(b->xe + ne * d, xr, (size_t)d * sizeof(float));
        b->tok_of[ne++] = t0 + t;
    }
    for (int64_t r0 = 0; r0 < ne; r0 += R) {
        int64_t nb = ne - r0 < R ? ne - r0 : R;
        if ((rc = sv_fwd_run(fwd, b->xe + r0 * d, nb)) != SV_OK) return rc;
        /* runs of consecutive tokens */
        for (int64_t a = 0; a < nb;) {
            int64_t e = a + 1;
            while (e < nb && b->tok_of[r0 + e] == b->tok_of[r0 + e - 1] + 1) e++;
            sv_feat_windows_fill_csr(w, b->tok_of[r0 + a], e - a, fwd->rowptr + a, fwd->idx, fwd->val, NULL);
            a = e;
        }
    }
    return SV_OK;
}

sv_rc sv_featpass_finish(sv_feat *f, sv_fwd *fwd, const sv_featpass_ctx *c, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    sv_store *st = c->st;
    sv_rc rc = sv_feat_reduce(f, comm);
    if ((rc = sv_agree(rc, comm)) != SV_OK) return rc;
    if ((rc = sv_agree(sv_feat_bcast(f, comm), comm)) != SV_OK) return rc;
    sv_feat_windows w;
    int64_t *rg = NULL, nr = 0, k = 0, max_unit = 1;
    bufs b = {0};
    rc = sv_feat_windows_new(&w, f, 0, sv_feat_params_of(f)->d_sae, st->seq_offsets, st->n_seq);
    if (rc == SV_OK) rc = sv_feat_windows_ranges(&w, &rg, &nr);
    for (int64_t u = c->u0; u < c->u1; u++) {
        int64_t s0 = u * c->unit_seqs, s1 = s0 + c->unit_seqs < st->n_seq ? s0 + c->unit_seqs : st->n_seq;
        if (st->seq_offsets[s1] - st->seq_offsets[s0] > max_unit) max_unit = st->seq_offsets[s1] - st->seq_offsets[s0];
    }
    if (rc == SV_OK) {
        b.x = sv_malloc((size_t)max_unit * (size_t)st->d_in * sizeof(float));
        b.xe = sv_malloc((size_t)max_unit * (size_t)st->d_in * sizeof(float));
        b.ids = sv_malloc((size_t)max_unit * sizeof(int64_t));
        b.tok_of = sv_malloc((size_t)max_unit * sizeof(int64_t));
        if (!b.x || !b.xe || !b.ids || !b.tok_of) rc = SV_EINTERNAL;
    }
    /* this rank's units that hold a window (ranges and units both ascend) */
    for (int64_t u = c->u0; u < c->u1 && rc == SV_OK; u++) {
        int64_t s0 = u * c->unit_seqs, s1 = s0 + c->unit_seqs < st->n_seq ? s0 + c->unit_seqs : st->n_seq;
        int64_t t0 = st->seq_offsets[s0], t1 = st->seq_offsets[s1];
        while (k < nr && rg[2 * k + 1] <= t0) k++;
        if (k < nr && rg[2 * k] < t1) rc = redo_unit(&w, fwd, c, t0, t1, &b);
    }
    free(b.x); free(b.xe); free(b.ids); free(b.tok_of);
    free(rg);
    rc = sv_agree(rc, comm);
    if (rc == SV_OK) rc = sv_agree(sv_feat_windows_reduce(&w, comm), comm);
    if (rc == SV_OK && rank == 0) {
        char *path = sv_featfile_path(c->out_dir, c->sae_id, c->dataset);
        sv_featfile_meta m = {c->sae_id, c->dataset, st->n_seq, w.width};
        sv_featfile_writer *fw = NULL;
        rc = path ? sv_featfile_create(&fw, path, f, &m) : SV_EINTERNAL;
        if (rc == SV_OK) rc = sv_featfile_put(fw, f, &w);
        if (rc == SV_OK) rc = sv_featfile_commit(fw);
        else if (fw) sv_featfile_abort(fw);
        free(path);
    }
    sv_feat_windows_free(&w);
    return sv_agree(rc, comm);
}

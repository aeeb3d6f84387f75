/* Fixed-tree reduction over work units; see reduce.h for the why. */
#include "saeval/reduce.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int level;
    int64_t idx;   /* node covers units [idx << level, (idx + 1) << level) */
    double *v;
} sv_node;

struct sv_tree {
    int64_t n, first, last, next; /* next unit to push */
    size_t len;
    sv_node stack[64];            /* binary counter of the current block */
    int depth;
    sv_node *done;                /* finished aligned blocks, in unit order */
    int n_done, cap_done;
    int64_t block_end;            /* end of the aligned block being built */
    int block_level;
    double *leaf;
};

static void add_into(double *dst, const double *src, size_t len)
{
    for (size_t i = 0; i < len; i++) dst[i] += src[i];
}

/* Largest aligned block starting at pos that fits in [pos, last). */
static int block_level_at(int64_t pos, int64_t last)
{
    int L = 0;
    while (L < 62) {
        int64_t size = (int64_t)1 << (L + 1);
        if ((pos & (size - 1)) != 0 || pos + size > last) break;
        L++;
    }
    return L;
}

sv_tree *sv_tree_new(int64_t n_units, int64_t first, int64_t last, size_t len)
{
    sv_tree *t = sv_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n_units;
    t->first = t->next = first;
    t->last = last;
    t->len = len;
    t->leaf = sv_malloc(len * sizeof(double));
    if (!t->leaf) { free(t); return NULL; }
    t->block_end = first;
    return t;
}

double *sv_tree_leaf(sv_tree *t)
{
    memset(t->leaf, 0, t->len * sizeof(double));
    return t->leaf;
}

sv_rc sv_tree_push(sv_tree *t)
{
    if (t->next >= t->last) return sv_fail(SV_EINTERNAL, "reduction: more units pushed than owned");
    if (t->next == t->block_end) { /* start a new aligned block */
        t->block_level = block_level_at(t->next, t->last);
        t->block_end = t->next + ((int64_t)1 << t->block_level);
    }
    double *v = sv_malloc(t->len * sizeof(double));
    if (!v) return SV_EINTERNAL;
    memcpy(v, t->leaf, t->len * sizeof(double));
    sv_node nd = {0, t->next, v};
    /* Binary counter: two siblings of equal level merge into their parent,
     * left + right, exactly as node() does on rank 0. */
    while (t->depth > 0 && t->stack[t->depth - 1].level == nd.level) {
        sv_node *left = &t->stack[--t->depth];
        add_into(left->v, nd.v, t->len);
        free(nd.v);
        nd.v = left->v;
        nd.level++;
        nd.idx = left->idx >> 1;
    }
    t->stack[t->depth++] = nd;
    t->next++;
    if (t->next == t->block_end) { /* the block is complete: one node left */
        if (t->n_done == t->cap_done) {
            int cap = t->cap_done ? 2 * t->cap_done : 16;
            sv_node *d = realloc(t->done, (size_t)cap * sizeof *d);
            if (!d) return sv_fail(SV_EINTERNAL, "out of memory in reduction");
            t->done = d;
            t->cap_done = cap;
        }
        t->done[t->n_done++] = t->stack[--t->depth];
    }
    return SV_OK;
}

typedef struct {
    int64_t n;
    size_t len;
    int n_nodes;
    const int32_t *level;
    const int64_t *idx;
    const double *vals; /* n_nodes * len */
} sv_gathered;

/* Value of node(L, i) on rank 0: a gathered block if one matches, else the
 * sum of its children. Returns a malloc'ed vector or NULL for an empty
 * range; *rc set on allocation failure. */
static double *node_value(const sv_gathered *g, int L, int64_t i, sv_rc *rc)
{
    int64_t lo = i << L;
    if (lo >= g->n) return NULL;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->level[k] == L && g->idx[k] == i) {
            double *v = sv_malloc(g->len * sizeof(double));
            if (!v) { *rc = SV_EINTERNAL; return NULL; }
            memcpy(v, g->vals + (size_t)k * g->len, g->len * sizeof(double));
            return v;
        }
    }
    if (L == 0) { *rc = sv_fail(SV_EINTERNAL, "reduction: unit %lld missing", (long long)i); return NULL; }
    double *left = node_value(g, L - 1, 2 * i, rc);
    if (!left) return NULL;
    double *right = node_value(g, L - 1, 2 * i + 1, rc);
    if (*rc != SV_OK) { free(left); return NULL; }
    if (right) {
        add_into(left, right, g->len);
        free(right);
    }
    return left;
}

sv_rc sv_tree_reduce(sv_tree *t, MPI_Comm comm, double *out)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    if (t->next != t->last) return sv_fail(SV_EINTERNAL, "reduction: units not all pushed");

    int mine = t->n_done;
    int *counts = NULL, *displs = NULL, *vcounts = NULL, *vdispls = NULL;
    int32_t *lev = NULL, *mylev = sv_malloc((size_t)(mine ? mine : 1) * sizeof(int32_t));
    int64_t *idx = NULL, *myidx = sv_malloc((size_t)(mine ? mine : 1) * sizeof(int64_t));
    double *vals = NULL, *myvals = sv_malloc((size_t)(mine ? mine : 1) * t->len * sizeof(double));
    sv_rc rc = SV_OK;
    if (!mylev || !myidx || !myvals) { rc = SV_EINTERNAL; mine = 0; }
    for (int k = 0; k < mine; k++) {
        mylev[k] = t->done[k].level;
        myidx[k] = t->done[k].idx;
        memcpy(myvals + (size_t)k * t->len, t->done[k].v, t->len * sizeof(double));
    }
    if (rank == 0) {
        counts = sv_calloc((size_t)P, sizeof(int));
        displs = sv_calloc((size_t)P, sizeof(int));
        vcounts = sv_calloc((size_t)P, sizeof(int));
        vdispls = sv_calloc((size_t)P, sizeof(int));
    }
    MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, comm);
    int total = 0;
    if (rank == 0) {
        for (int r = 0; r < P; r++) {
            displs[r] = total;
            vdispls[r] = (int)((size_t)total * t->len);
            vcounts[r] = (int)((size_t)counts[r] * t->len);
            total += counts[r];
        }
        lev = sv_malloc((size_t)(total ? total : 1) * sizeof(int32_t));
        idx = sv_malloc((size_t)(total ? total : 1) * sizeof(int64_t));
        vals = sv_malloc((size_t)(total ? total : 1) * t->len * sizeof(double));
    }
    MPI_Gatherv(mylev, mine, MPI_INT32_T, lev, counts, displs, MPI_INT32_T, 0, comm);
    MPI_Gatherv(myidx, mine, MPI_INT64_T, idx, counts, displs, MPI_INT64_T, 0, comm);
    MPI_Gatherv(myvals, (int)((size_t)mine * t->len), MPI_DOUBLE, vals, vcounts, vdispls, MPI_DOUBLE, 0, comm);
    if (rank == 0 && rc == SV_OK) {
        int top = 0;
        while (((int64_t)1 << top) < t->n) top++;
        sv_gathered g = {t->n, t->len, total, lev, idx, vals};
        double *v = node_value(&g, top, 0, &rc);
        if (v) {
            memcpy(out, v, t->len * sizeof(double));
            free(v);
        } else if (rc == SV_OK) {
            memset(out, 0, t->len * sizeof(double)); /* no units at all */
        }
    }
    free(counts); free(displs); free(vcounts); free(vdispls);
    free(lev); free(idx); free(vals); free(mylev); free(myidx); free(myvals);
    return rc;
}

void sv_tree_free(sv_tree *t)
{
    if (!t) return;
    for (int k = 0; k < t->depth; k++) free(t->stack[k].v);
    for (int k = 0; k < t->n_done; k++) free(t->done[k].v);
    free(t->done);
    free(t->leaf);
    free(t);
}

void sv_split_units(const int64_t *w, int64_t n, int P, int64_t *first, int64_t *last)
{
    int64_t total = 0;
    for (int64_t u = 0; u < n; u++) total += w[u] > 0 ? w[u] : 1;
    int64_t cum = 0, u = 0;
    for (int r = 0; r < P; r++) {
        first[r] = u;
        /* Unit u belongs to rank r while the midpoint of its weight falls in
         * r's share [r*total/P, (r+1)*total/P). Compare 2*mid*P with
         * 2*(r+1)*total in integers to avoid rounding. */
        while (u < n) {
            int64_t wu = w[u] > 0 ? w[u] : 1;
            __int128 mid2 = (__int128)(2 * cum + wu) * P;
            if (mid2 >= (__int128)2 * (r + 1) * total) break;
            cum += wu;
            u++;
        }
        last[r] = u;
    }
    last[P - 1] = n;
}

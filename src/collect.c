/* `saeval collect`: token ids -> activation stores (see collect.h). */
#include "saeval/collect.h"
#include "saeval/half.h"
#include "saeval/model.h"

#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *path;
    int64_t n_tokens, n_seq, context_size;
    int64_t *offsets;   /* [n_seq + 1] */
    int64_t *special;
    int n_special;
    hid_t file, ids;
} tokfile;

static void tok_close(tokfile *t)
{
    if (t->ids >= 0) H5Dclose(t->ids);
    if (t->file >= 0) H5Fclose(t->file);
    free(t->offsets);
    free(t->special);
    t->ids = t->file = -1;
    t->offsets = t->special = NULL;
}

/* Collective: opens the token file and reads its sequence structure. */
static sv_rc tok_open(tokfile *t, const char *path, MPI_Comm comm)
{
    memset(t, 0, sizeof *t);
    t->file = t->ids = -1;
    t->path = (char *)path;
    struct stat st;
    if (stat(path, &st) != 0) return sv_fail(SV_EINPUT, "%s: token file does not exist", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        return sv_fail(SV_EINTERNAL, "%s: cannot set up MPI-IO", path);
    }
    t->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (t->file < 0) return sv_fail(SV_EINPUT, "%s: not an HDF5 file", path);
    if (H5Lexists(t->file, "token_ids", H5P_DEFAULT) <= 0 ||
        (t->ids = H5Dopen2(t->file, "token_ids", H5P_DEFAULT)) < 0)
        return sv_fail(SV_EINPUT, "%s: dataset /token_ids is missing", path);
    hid_t sp = H5Dget_space(t->ids), ty = H5Dget_type(t->ids);
    hsize_t n = 0;
    const int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &n, NULL);
    const int integer = ty >= 0 && H5Tget_class(ty) == H5T_INTEGER;
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (nd != 1 || !integer || n < 1)
        return sv_fail(SV_EINPUT, "%s: /token_ids must be a non-empty 1-D integer dataset", path);
    t->n_tokens = (int64_t)n;
    if (H5Lexists(t->file, "sequence_offsets", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(t->file, "sequence_offsets", H5P_DEFAULT);
        hid_t s2 = d >= 0 ? H5Dget_space(d) : -1;
        hsize_t m = 0;
        if (s2 >= 0 && H5Sget_simple_extent_ndims(s2) == 1) H5Sget_simple_extent_dims(s2, &m, NULL);
        if (s2 >= 0) H5Sclose(s2);
        if (m < 2 || m > (hsize_t)t->n_tokens + 1) {
            if (d >= 0) H5Dclose(d);
            return sv_fail(SV_EINPUT, "%s: /sequence_offsets must be 1-D with 2..n_tokens+1 entries", path);
        }
        t->n_seq = (int64_t)m - 1;
        t->offsets = sv_malloc((size_t)m * sizeof(int64_t));
        herr_t e = t->offsets ? H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->offsets) : -1;
        H5Dclose(d);
        if (e < 0) return sv_fail(SV_EINPUT, "%s: /sequence_offsets: cannot read", path);
        if (t->offsets[0] != 0 || t->offsets[t->n_seq] != t->n_tokens)
            return sv_fail(SV_EINPUT, "%s: /sequence_offsets must start at 0 and end at n_tokens = %lld", path,
                           (long long)t->n_tokens);
        for (int64_t i = 0; i < t->n_seq; i++)
            if (t->offsets[i + 1] <= t->offsets[i])
                return sv_fail(SV_EINPUT, "%s: /sequence_offsets[%lld..%lld] is not strictly increasing", path,
                               (long long)i, (long long)i + 1);
    } else if (H5Aexists(t->file, "context_size") > 0) {
        hid_t a = H5Aopen(t->file, "context_size", H5P_DEFAULT);
        int64_t cs = 0;
        herr_t e = a >= 0 ? H5Aread(a, H5T_NATIVE_INT64, &cs) : -1;
        if (a >= 0) H5Aclose(a);
        if (e < 0 || cs < 1 || t->n_tokens % cs != 0)
            return sv_fail(SV_EINPUT, "%s: attribute context_size must be a positive divisor of n_tokens = %lld", path,
                           (long long)t->n_tokens);
        t->context_size = cs;
        t->n_seq = t->n_tokens / cs;
        if (!(t->offsets = sv_malloc((size_t)(t->n_seq + 1) * sizeof(int64_t)))) return SV_EINTERNAL;
        for (int64_t i = 0; i <= t->n_seq; i++) t->offsets[i] = i * cs;
    } else {
        return sv_fail(SV_EINPUT, "%s: neither /sequence_offsets nor attribute context_size", path);
    }
    if (H5Aexists(t->file, "special_token_ids") > 0) {
        hid_t a = H5Aopen(t->file, "special_token_ids", H5P_DEFAULT);
        hid_t s2 = a >= 0 ? H5Aget_space(a) : -1;
        hssize_t m = s2 >= 0 ? H5Sget_simple_extent_npoints(s2) : -1;
        if (s2 >= 0) H5Sclose(s2);
        if (m < 0 || m > 1000000) {
            if (a >= 0) H5Aclose(a);
            return sv_fail(SV_EINPUT, "%s: attribute special_token_ids: cannot read", path);
        }
        t->n_special = (int)m;
        t->special = sv_calloc((size_t)(m ? m : 1), sizeof(int64_t));
        herr_t e = t->special && m ? H5Aread(a, H5T_NATIVE_INT64, t->special) : 0;
        H5Aclose(a);
        if (!t->special || e < 0) return sv_fail(SV_EINPUT, "%s: attribute special_token_ids: cannot read", path);
    }
    return SV_OK;
}

/* Independent read of token ids [t0, t0 + n). */
static sv_rc tok_read(tokfile *t, int64_t t0, int64_t n, int64_t *out)
{
    hsize_t off = (hsize_t)t0, cnt = (hsize_t)n;
    hid_t fs = H5Dget_space(t->ids), ms = H5Screate_simple(1, &cnt, NULL);
    herr_t e = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    if (e >= 0) e = H5Dread(t->ids, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, out);
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    return e < 0 ? sv_fail(SV_EINTERNAL, "%s: /token_ids: read error", t->path) : SV_OK;
}

/* ---- output stores ---- */

typedef struct {
    char *final, *partial;
    hid_t file, act, ids;
} outstore;

static herr_t str_attr(hid_t obj, const char *name, const char *val)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    herr_t e = t < 0 ? -1 : H5Tset_size(t, strlen(val) ? strlen(val) : 1);
    if (e >= 0) e = H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = (e < 0 || sp < 0) ? -1 : H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    e = a < 0 ? -1 : H5Awrite(a, t, val);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return e;
}

static herr_t num_attr(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n, int scalar)
{
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return e;
}

/* No timestamps, space allocated at creation, no fill: the file's bytes
 * depend only on the data. */
static hid_t make_dset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    if (sp >= 0 && pl >= 0 && H5Pset_obj_track_times(pl, 0) >= 0 && H5Pset_alloc_time(pl, H5D_ALLOC_TIME_EARLY) >= 0 &&
        H5Pset_fill_time(pl, H5D_FILL_TIME_NEVER) >= 0)
        d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return d;
}

typedef struct {
    const char *hook, *model_name, *dataset_name;
    double model_params;
    int bf16;
    int64_t d;
} meta_t;

/* Collective. */
static sv_rc out_create(outstore *o, const tokfile *t, const meta_t *m, MPI_Comm comm, int rank)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fapl < 0 || fcpl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
        H5Pset_obj_track_times(fcpl, 0) < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        if (fcpl >= 0) H5Pclose(fcpl);
        return sv_fail(SV_EINTERNAL, "%s: cannot set up MPI-IO", o->partial);
    }
    o->file = H5Fcreate(o->partial, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    if (o->file < 0) return sv_fail(SV_EINPUT, "%s: cannot create", o->partial);
    hsize_t dims[2] = {(hsize_t)t->n_tokens, (hsize_t)m->d};
    o->act = make_dset(o->file, "/activations", m->bf16 ? H5T_STD_U16LE : H5T_IEEE_F32LE, 2, dims);
    o->ids = make_dset(o->file, "/token_ids", H5T_STD_I64LE, 1, dims);
    herr_t e = (o->act < 0 || o->ids < 0) ? -1 : 0;
    if (e >= 0 && m->bf16) e = str_attr(o->act, "dtype", "bfloat16");
    if (e >= 0 && t->context_size) {
        e = num_attr(o->file, "context_size", H5T_STD_I64LE, H5T_NATIVE_INT64, &t->context_size, 1, 1);
    } else if (e >= 0) {
        hsize_t n = (hsize_t)t->n_seq + 1;
        hid_t d = make_dset(o->file, "/sequence_offsets", H5T_STD_I64LE, 1, &n);
        /* Every rank calls the (collective) write; rank 0 alone brings data. */
        hid_t fs = d >= 0 ? H5Dget_space(d) : -1, ms = H5Screate_simple(1, &n, NULL);
        hid_t xf = H5Pcreate(H5P_DATASET_XFER);
        e = (d < 0 || fs < 0 || ms < 0 || xf < 0 || H5Pset_dxpl_mpio(xf, H5FD_MPIO_COLLECTIVE) < 0) ? -1 : 0;
        if (e >= 0 && rank != 0) e = H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0 ? -1 : 0;
        if (e >= 0) e = H5Dwrite(d, H5T_NATIVE_INT64, ms, fs, xf, t->offsets);
        if (xf >= 0) H5Pclose(xf);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (d >= 0) H5Dclose(d);
    }
    if (e >= 0 && t->n_special)
        e = num_attr(o->file, "special_token_ids", H5T_STD_I64LE, H5T_NATIVE_INT64, t->special, (hsize_t)t->n_special, 0);
    if (e >= 0) e = str_attr(o->file, "hook_name", m->hook);
    if (e >= 0) e = str_attr(o->file, "model_name", m->model_name);
    if (e >= 0) e = str_attr(o->file, "dataset_name", m->dataset_name);
    if (e >= 0) e = num_attr(o->file, "model_params", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->model_params, 1, 1);
    return e < 0 ? sv_fail(SV_EINTERNAL, "%s: cannot write the store's metadata", o->partial) : SV_OK;
}

/* Collective write of rows [r0, r0 + n) (n may be 0 on some ranks). */
static herr_t write_rows(hid_t d, int rank2, int64_t r0, int64_t n, int64_t cols, hid_t mtype, const void *buf)
{
    hsize_t off[2] = {(hsize_t)r0, 0}, cnt[2] = {(hsize_t)n, (hsize_t)cols};
    hsize_t mdim[2] = {(hsize_t)(n ? n : 1), (hsize_t)cols};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank2, mdim, NULL), xf = H5Pcreate(H5P_DATASET_XFER);
    herr_t e = (fs < 0 || ms < 0 || xf < 0 || H5Pset_dxpl_mpio(xf, H5FD_MPIO_COLLECTIVE) < 0) ? -1 : 0;
    if (e >= 0) {
        if (n) e = H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL);
        else e = (H5Sselect_none(fs) < 0 || H5Sselect_none(ms) < 0) ? -1 : 0;
    }
    if (e >= 0) e = H5Dwrite(d, mtype, ms, fs, xf, buf);
    if (xf >= 0) H5Pclose(xf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return e;
}

static void out_close(outstore *o)
{
    if (o->act >= 0) H5Dclose(o->act);
    if (o->ids >= 0) H5Dclose(o->ids);
    if (o->file >= 0) H5Fclose(o->file);
    o->act = o->ids = o->file = -1;
}

static char *base_name(const char *p, int strip_ext)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && p[b - 1] != '/') b--;
    char *s = sv_malloc(n - b + 1);
    if (!s) return NULL;
    memcpy(s, p + b, n - b);
    s[n - b] = 0;
    char *dot = strip_ext ? strrchr(s, '.') : NULL;
    if (dot && dot != s) *dot = 0;
    return s;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

sv_rc sv_collect(const sv_collect_opts *o, MPI_Comm comm)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (o->n_hooks < 1) return sv_fail(SV_EINPUT, "collect: no hook point given");
    if (o->precision != 32 && o->precision != 64) return sv_fail(SV_EINPUT, "collect: precision must be 32 or 64");
    sv_model m;
    sv_rc rc = sv_model_load(&m, o->model_dir, o->precision);
    if (rc != SV_OK) return rc;
    tokfile t;
    memset(&t, 0, sizeof t);
    t.file = t.ids = -1;
    const int H = o->n_hooks;
    sv_hook *hk = sv_calloc((size_t)H, sizeof *hk);
    int *todo = sv_calloc((size_t)H, sizeof *todo);
    outstore *out = sv_calloc((size_t)H, sizeof *out);
    char *mname = o->model_name ? sv_strdup(o->model_name) : base_name(o->model_dir, 0);
    char *dname = o->dataset_name ? sv_strdup(o->dataset_name) : base_name(o->tokens_path, 1);
    sv_model_ws ws;
    memset(&ws, 0, sizeof ws);
    int64_t *idbuf = NULL, *rowids = NULL;
    int32_t *ids32 = NULL;
    void **hv = NULL;
    void **rows = NULL;
    if (!hk || !todo || !out || !mname || !dname) {
        rc = SV_EINTERNAL;
        goto done;
    }
    for (int h = 0; h < H; h++) out[h].file = out[h].act = out[h].ids = -1;
    int ntodo = 0;
    for (int h = 0; h < H && rc == SV_OK; h++) {
        rc = sv_hook_parse(&hk[h], o->hooks[h], &m.cfg);
        for (int g = 0; g < h && rc == SV_OK; g++)
            if (!strcmp(o->out_paths[g], o->out_paths[h]))
                rc = sv_fail(SV_EINPUT, "collect: two hooks write the same store %s", o->out_paths[h]);
        if (rc != SV_OK) break;
        out[h].final = sv_strdup(o->out_paths[h]);
        size_t n = strlen(o->out_paths[h]) + 9;
        out[h].partial = sv_malloc(n);
        if (!out[h].final || !out[h].partial) {
            rc = SV_EINTERNAL;
            break;
        }
        snprintf(out[h].partial, n, "%s.partial", o->out_paths[h]);
        todo[h] = o->force || !exists(out[h].final);
        ntodo += todo[h];
    }
    if (rc != SV_OK || ntodo == 0) goto done; /* every store is complete already */
    if ((rc = tok_open(&t, o->tokens_path, comm)) != SV_OK) goto done;

    /* Sequences: lengths within the model's positions. */
    int64_t maxT = 0;
    for (int64_t s = 0; s < t.n_seq; s++) {
        const int64_t len = t.offsets[s + 1] - t.offsets[s];
        if (len > m.cfg.max_pos) {
            rc = sv_fail(SV_EINPUT, "%s: sequence %lld has %lld tokens, more than the model's %lld positions",
                         o->tokens_path, (long long)s, (long long)len, (long long)m.cfg.max_pos);
            goto done;
        }
        maxT = len > maxT ? len : maxT;
    }
    /* This rank's run of whole sequences, balanced by tokens. */
    int64_t s0 = 0, s1 = 0;
    {
        const int64_t lo = (int64_t)((double)t.n_tokens * rank / size), hi = (int64_t)((double)t.n_tokens * (rank + 1) / size);
        while (s0 < t.n_seq && t.offsets[s0] < lo) s0++;
        s1 = s0;
        while (s1 < t.n_seq && t.offsets[s1] < hi) s1++;
    }
    const int64_t r0 = t.offsets[s0], r1 = t.offsets[s1];
    /* Token ids in range, checked before anything is written. */
    const int64_t chunk = 1 << 20;
    if (!(idbuf = sv_malloc((size_t)(chunk > maxT ? chunk : maxT) * sizeof(int64_t)))) {
        rc = SV_EINTERNAL;
        goto done;
    }
    int64_t bad[2] = {INT64_MAX, 0};
    for (int64_t a = r0; a < r1 && bad[0] == INT64_MAX && rc == SV_OK; a += chunk) {
        const int64_t n = r1 - a < chunk ? r1 - a : chunk;
        rc = tok_read(&t, a, n, idbuf);
        for (int64_t i = 0; rc == SV_OK && i < n; i++)
            if (idbuf[i] < 0 || idbuf[i] >= m.cfg.vocab) {
                bad[0] = a + i;
                bad[1] = idbuf[i];
                break;
            }
    }
    {
        int lerr = rc != SV_OK, gerr = 0;
        MPI_Allreduce(&lerr, &gerr, 1, MPI_INT, MPI_MAX, comm);
        if (gerr) {
            if (rc == SV_OK) rc = sv_fail(SV_EINTERNAL, "%s: /token_ids: read error on another rank", o->tokens_path);
            goto done;
        }
        int64_t gbad = INT64_MAX, gid = INT64_MIN, mine;
        MPI_Allreduce(&bad[0], &gbad, 1, MPI_INT64_T, MPI_MIN, comm);
        mine = gbad != INT64_MAX && bad[0] == gbad ? bad[1] : INT64_MIN;
        MPI_Allreduce(&mine, &gid, 1, MPI_INT64_T, MPI_MAX, comm);
        if (gbad != INT64_MAX) {
            rc = sv_fail(SV_EINPUT, "%s: /token_ids[%lld] = %lld is outside the vocabulary of %s (%lld tokens)",
                         o->tokens_path, (long long)gbad, (long long)gid, o->model_dir, (long long)m.cfg.vocab);
            goto done;
        }
    }

    meta_t meta = {NULL, mname, dname, 0, o->bf16, m.cfg.d_model};
    meta.model_params = (double)(sv_model_weight_bytes(&m) / (o->precision == 64 ? sizeof(double) : sizeof(float)));
    for (int h = 0; h < H && rc == SV_OK; h++)
        if (todo[h]) {
            meta.hook = o->hooks[h];
            rc = out_create(&out[h], &t, &meta, comm, rank);
        }
    if (rc != SV_OK) goto done;

    /* Rounds: each rank takes whole sequences up to batch_tokens rows,
     * runs them, and every rank joins each collective write. */
    const int64_t d = m.cfg.d_model, bt = o->batch_tokens > 0 ? o->batch_tokens : 4096;
    const int64_t cap = bt > maxT ? bt : maxT;
    const size_t es = o->bf16 ? 2 : 4, rs = o->precision == 64 ? 8 : 4;
    if ((rc = sv_model_ws_init(&ws, &m, maxT > 0 ? maxT : 1, 1)) != SV_OK) goto done;
    hv = sv_calloc((size_t)H, sizeof(void *));
    rows = sv_calloc((size_t)H, sizeof(void *));
    ids32 = sv_malloc((size_t)(maxT > 0 ? maxT : 1) * sizeof(int32_t));
    if (!hv || !rows || !ids32) {
        rc = SV_EINTERNAL;
        goto done;
    }
    for (int h = 0; h < H; h++)
        if (!(hv[h] = sv_malloc((size_t)(maxT * d) * rs + 1)) || !(rows[h] = sv_malloc((size_t)(cap * d) * es + 1))) {
            rc = SV_EINTERNAL;
            goto done;
        }
    if (!(rowids = sv_malloc((size_t)cap * sizeof(int64_t) + 8))) {
        rc = SV_EINTERNAL;
        goto done;
    }
    int64_t next = s0;
    for (;;) {
        /* This round's sequences [next, e). */
        int64_t e = next;
        while (e < s1 && (e == next || t.offsets[e + 1] - t.offsets[next] <= bt)) e++;
        const int64_t a = t.offsets[next], n = t.offsets[e] - a;
        int lerr = 0;
        if (n > 0 && (rc = tok_read(&t, a, n, rowids)) != SV_OK) lerr = 1;
        for (int64_t s = next; !lerr && s < e; s++) {
            const int64_t so = t.offsets[s] - a, T = t.offsets[s + 1] - t.offsets[s];
            for (int64_t i = 0; i < T; i++) ids32[i] = (int32_t)rowids[so + i];
            if ((rc = sv_model_prefix_multi(&ws, ids32, T, H, hk, hv)) != SV_OK) {
                lerr = 1;
                break;
            }
            for (int h = 0; h < H; h++)
                for (int64_t i = 0; i < T * d; i++) {
                    const float v = rs == 8 ? (float)((double *)hv[h])[i] : ((float *)hv[h])[i];
                    if (o->bf16) ((uint16_t *)rows[h])[so * d + i] = sv_f32_to_bf16(v);
                    else ((float *)rows[h])[so * d + i] = v;
                }
        }
        int stop = o->stop ? o->stop() : 0, flags[2] = {lerr, stop}, g[2] = {0, 0}, more = e < s1, gmore = 0;
        MPI_Allreduce(flags, g, 2, MPI_INT, MPI_MAX, comm);
        if (g[0]) {
            if (rc == SV_OK) rc = sv_fail(SV_EINTERNAL, "collect: another rank failed");
            goto done;
        }
        if (g[1]) {
            rc = sv_fail(SV_EINTERRUPTED, "collect: stopped; rerun to start the stores again");
            goto done;
        }
        herr_t we = 0;
        for (int h = 0; h < H && we >= 0; h++)
            if (todo[h]) {
                we = write_rows(out[h].act, 2, a, n, d, o->bf16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT, rows[h]);
                if (we >= 0) we = write_rows(out[h].ids, 1, a, n, 1, H5T_NATIVE_INT64, rowids);
            }
        if (we < 0) {
            rc = sv_fail(SV_EINTERNAL, "collect: write error in a store");
            goto done;
        }
        next = e;
        MPI_Allreduce(&more, &gmore, 1, MPI_INT, MPI_MAX, comm);
        if (!gmore) break;
    }
    for (int h = 0; h < H; h++)
        if (todo[h]) out_close(&out[h]);
    MPI_Barrier(comm);
    if (rank == 0)
        for (int h = 0; h < H && rc == SV_OK; h++)
            if (todo[h] && rename(out[h].partial, out[h].final) != 0)
                rc = sv_fail(SV_EINTERNAL, "%s: cannot rename the finished store", out[h].partial);
    {
        int lerr = rc != SV_OK, gerr = 0;
        MPI_Allreduce(&lerr, &gerr, 1, MPI_INT, MPI_MAX, comm);
        if (gerr && rc == SV_OK) rc = sv_fail(SV_EINTERNAL, "collect: rank 0 could not finish the stores");
    }
done:
    for (int h = 0; out && h < H; h++) {
        const int open = out[h].file >= 0;
        out_close(&out[h]);
        if (open && rc != SV_OK && rank == 0) remove(out[h].partial); /* never a partial store left looking usable */
        free(out[h].final);
        free(out[h].partial);
    }
    for (int h = 0; hv && h < H; h++) free(hv[h]);
    for (int h = 0; rows && h < H; h++) free(rows[h]);
    free(hv);
    free(rows);
    free(ids32);
    free(idbuf);
    free(rowids);
    free(out);
    free(todo);
    free(hk);
    free(mname);
    free(dname);
    tok_close(&t);
    sv_model_ws_free(&ws);
    sv_model_free(&m);
    return rc;
}

const char *sv_collect_usage =
    "usage: mpirun -np N saeval collect --model DIR --tokens FILE --hook NAME=STORE.h5 [--hook ...]\n"
    "                               [--dtype float32|bfloat16] [--precision float32|float64]\n"
    "                               [--model-name S] [--dataset-name S] [--force]\n"
    "\n"
    "Runs the Hugging Face model in DIR (gpt2, gpt_neox, gemma2, llama) over the token ids\n"
    "of FILE (/token_ids, /sequence_offsets or context_size, special_token_ids) and\n"
    "writes one activation store per hook (blocks.L.hook_resid_pre, hook_resid_post,\n"
    "hook_attn_out, hook_mlp_out) in one pass. Ranks take whole sequences; the stores\n"
    "are byte-identical for any number of ranks. A store is written as STORE.h5.partial\n"
    "and renamed when complete; complete stores are kept unless --force.\n"
    "  --dtype        activations stored as float32 (default) or bfloat16\n"
    "  --precision    the model's compute precision (default float32)\n"
    "  --model-name   attribute model_name (default: the model directory's name)\n"
    "  --dataset-name attribute dataset_name (default: FILE's name without extension)\n";

void sv_collect_args_free(sv_collect_args *a)
{
    free(a->hooks);
    free(a->outs);
    memset(a, 0, sizeof *a);
}

sv_rc sv_collect_parse_args(sv_collect_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->o.precision = 32;
    a->hooks = sv_calloc((size_t)argc + 1, sizeof(char *));
    a->outs = sv_calloc((size_t)argc + 1, sizeof(char *));
    if (!a->hooks || !a->outs) {
        sv_collect_args_free(a);
        return SV_EINTERNAL;
    }
    sv_rc rc = SV_OK;
    for (int i = 1; i < argc && rc == SV_OK; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        static const char *const known[] = {"--model", "--tokens", "--model-name", "--dataset-name",
                                            "--dtype", "--precision", "--hook", "--force"};
        int kn = 0;
        for (size_t q = 0; q < sizeof known / sizeof known[0]; q++) kn |= !strcmp(k, known[q]);
        if (!kn) {
            rc = sv_fail(SV_EINPUT, "collect: unknown option '%.60s'", k);
            break;
        }
        const int takes = strcmp(k, "--force") != 0;
        if (takes && !v) {
            rc = sv_fail(SV_EINPUT, "collect: %s needs a value", k);
            break;
        }
        if (!strcmp(k, "--model")) a->o.model_dir = v;
        else if (!strcmp(k, "--tokens")) a->o.tokens_path = v;
        else if (!strcmp(k, "--model-name")) a->o.model_name = v;
        else if (!strcmp(k, "--dataset-name")) a->o.dataset_name = v;
        else if (!strcmp(k, "--force")) a->o.force = 1;
        else if (!strcmp(k, "--dtype")) {
            if (!strcmp(v, "float32")) a->o.bf16 = 0;
            else if (!strcmp(v, "bfloat16")) a->o.bf16 = 1;
            else rc = sv_fail(SV_EINPUT, "collect: --dtype takes float32 or bfloat16, not '%.40s'", v);
        } else if (!strcmp(k, "--precision")) {
            if (!strcmp(v, "float32")) a->o.precision = 32;
            else if (!strcmp(v, "float64")) a->o.precision = 64;
            else rc = sv_fail(SV_EINPUT, "collect: --precision takes float32 or float64, not '%.40s'", v);
        } else if (!strcmp(k, "--hook")) {
            char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                rc = sv_fail(SV_EINPUT, "collect: --hook takes NAME=STORE.h5, not '%.80s'", v);
                break;
            }
            *eq = 0; /* argv is ours to split */
            a->hooks[a->o.n_hooks] = (char *)v;
            a->outs[a->o.n_hooks++] = eq + 1;
        } else {
            rc = sv_fail(SV_EINPUT, "collect: unknown option '%.60s'", k);
        }
        if (takes) i++;
    }
    if (rc == SV_OK && !a->o.model_dir) rc = sv_fail(SV_EINPUT, "collect: --model DIR is required");
    if (rc == SV_OK && !a->o.tokens_path) rc = sv_fail(SV_EINPUT, "collect: --tokens FILE is required");
    if (rc == SV_OK && !a->o.n_hooks) rc = sv_fail(SV_EINPUT, "collect: at least one --hook NAME=STORE.h5 is required");
    a->o.hooks = (const char *const *)a->hooks;
    a->o.out_paths = (const char *const *)a->outs;
    if (rc != SV_OK) sv_collect_args_free(a);
    return rc;
}

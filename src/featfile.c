/* Feature files (HDF5) and the Neuronpedia batch export; layout in featfile.h.
 * One table lists every dataset: its name, type and per-latent shape, and
 * drives creation, writing, the reader's shape checks and reading. */
#include "saeval/featfile.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_I64, T_I32, T_F32, T_F64 };
/* per-latent extents */
enum { X_NONE, X_F, X_N, X_NW, X_I, X_IK, X_IKW };

enum {
    D_NONZERO, D_MAX, D_HISTW, D_HIST,
    D_TTOK, D_TVAL, D_TSTART, D_TLEN, D_TIDS, D_TVALS,
    D_ILO, D_IHI, D_ICNT,
    D_ITOK, D_IVAL, D_ISTART, D_ILEN, D_IIDS, D_IVALS,
    ND
};

static const struct { const char *name; int type, ext; } dsets[ND] = {
    {"nonzero", T_I64, X_NONE},           {"max", T_F32, X_NONE},
    {"hist_width", T_F64, X_NONE},        {"hist_counts", T_I64, X_F},
    {"top_token", T_I64, X_N},            {"top_value", T_F32, X_N},
    {"top_window_start", T_I64, X_N},     {"top_window_len", T_I32, X_N},
    {"top_window_ids", T_I32, X_NW},      {"top_window_values", T_F32, X_NW},
    {"interval_lo", T_F64, X_I},          {"interval_hi", T_F64, X_I},
    {"interval_count", T_I64, X_I},
    {"interval_token", T_I64, X_IK},      {"interval_value", T_F32, X_IK},
    {"interval_window_start", T_I64, X_IK}, {"interval_window_len", T_I32, X_IK},
    {"interval_window_ids", T_I32, X_IKW}, {"interval_window_values", T_F32, X_IKW},
};

static size_t type_size(int t) { return (t == T_I64 || t == T_F64) ? 8 : 4; }
static hid_t mem_type(int t)
{
    return t == T_I64 ? H5T_NATIVE_INT64 : t == T_I32 ? H5T_NATIVE_INT32 : t == T_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
}
static hid_t file_type(int t)
{
    return t == T_I64 ? H5T_STD_I64LE : t == T_I32 ? H5T_STD_I32LE : t == T_F32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
}

/* dims after the latent dimension; returns their count */
static int extents(const sv_feat_params *p, int64_t W, int ext, hsize_t *d)
{
    hsize_t N = (hsize_t)p->top_n, I = (hsize_t)p->n_intervals, K = (hsize_t)p->interval_k, F = (hsize_t)p->grid_bins;
    switch (ext) { /* the shapes of the table above */
    case X_F: d[0] = F; return 1;
    case X_N: d[0] = N; return 1;
    case X_NW: d[0] = N; d[1] = (hsize_t)W; return 2;
    case X_I: d[0] = I; return 1;
    case X_IK: d[0] = I; d[1] = K; return 2;
    case X_IKW: d[0] = I; d[1] = K; d[2] = (hsize_t)W; return 3;
    default: return 0;
    }
}

static size_t per_latent_elems(const sv_feat_params *p, int64_t W, int ext)
{
    hsize_t d[3];
    int r = extents(p, W, ext, d);
    size_t n = 1;
    for (int i = 0; i < r; i++) n *= (size_t)d[i];
    return n;
}

char *sv_featfile_path(const char *out_dir, const char *sae_id, const char *dataset)
{
    size_t n = strlen(out_dir) + strlen(sae_id) + strlen(dataset) + 32;
    char *p = sv_malloc(n);
    if (!p) return NULL;
    int k = snprintf(p, n, "%s/", out_dir);
    for (const char *c = sae_id; *c; c++) p[k++] = *c == '/' ? '-' : *c;
    snprintf(p + k, n - (size_t)k, "__%s.features.h5", dataset);
    return p;
}

/* ---- attributes ---- */
static herr_t attr_i64(hid_t loc, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return e;
}

static herr_t attr_str(hid_t loc, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, t, s);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return e;
}

static int read_attr_i64(hid_t loc, const char *name, int64_t *v)
{
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t sp = H5Aget_space(a);
    hid_t t = H5Aget_type(a);
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Tget_class(t) == H5T_INTEGER &&
             H5Aread(a, H5T_NATIVE_INT64, v) >= 0;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    H5Aclose(a);
    return ok;
}

/* A fixed-length string attribute of at most cap - 1 bytes. */
static int read_attr_str(hid_t loc, const char *name, char *out, size_t cap)
{
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int ok = 0;
    if (t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0 &&
        H5Sget_simple_extent_npoints(sp) == 1) {
        size_t n = H5Tget_size(t);
        if (n > 0 && n < cap) {
            hid_t mt = H5Tcopy(t); /* same size, padding and character set: no conversion */
            char *tmp = calloc(n + 2, 1);
            if (tmp && H5Aread(a, mt, tmp) >= 0) {
                memcpy(out, tmp, n + 1);
                out[n] = '\0';
                ok = 1;
            }
            free(tmp);
            H5Tclose(mt);
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* ---- writer ---- */
struct sv_featfile_writer {
    hid_t file;
    hid_t d[ND];
    char *path, *tmp;
    sv_feat_params p;
    int64_t W;
    void *buf[ND];     /* each dataset's rows of a latent chunk, kept from one put to */
    int64_t buf_nl;    /* the next (fresh pages for every chunk cost more than the writing) */
};

static void close_all(sv_featfile_writer *w)
{
    for (int i = 0; i < ND; i++)
        if (w->d[i] >= 0) { H5Dclose(w->d[i]); w->d[i] = -1; }
    if (w->file >= 0) { H5Fclose(w->file); w->file = -1; }
}

void sv_featfile_abort(sv_featfile_writer *w)
{
    if (!w) return;
    close_all(w);
    if (w->tmp) remove(w->tmp);
    for (int i = 0; i < ND; i++) free(w->buf[i]);
    free(w->path);
    free(w->tmp);
    free(w);
}

sv_rc sv_featfile_create(sv_featfile_writer **out, const char *path, const sv_feat *f, const sv_featfile_meta *m)
{
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const sv_feat_params *p = sv_feat_params_of(f);
    sv_featfile_writer *w = sv_calloc(1, sizeof *w);
    if (!w) return SV_EINTERNAL;
    w->file = -1;
    for (int i = 0; i < ND; i++) w->d[i] = -1;
    w->p = *p;
    w->W = m->window_width;
    w->path = sv_strdup(path);
    w->tmp = sv_malloc(strlen(path) + 5);
    if (!w->path || !w->tmp) { sv_featfile_abort(w); return SV_EINTERNAL; }
    sprintf(w->tmp, "%s.tmp", path);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    errno = 0;
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (w->file < 0) {
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot create: %s", w->tmp, errno ? strerror(errno) : "HDF5 error");
        sv_featfile_abort(w);
        return rc;
    }
    herr_t e = attr_str(w->file, "format", SV_FEATFILE_FORMAT);
    if (e >= 0) e = attr_str(w->file, "sae_id", m->sae_id);
    if (e >= 0) e = attr_str(w->file, "dataset", m->dataset);
    const char *names[] = {"d_sae", "top_n", "n_intervals", "interval_k", "histogram_bins", "context_before",
                           "context_after", "seed", "tokens_evaluated", "sequences", "window_width"};
    int64_t vals[] = {p->d_sae, p->top_n, p->n_intervals, p->interval_k, p->grid_bins, p->ctx_before,
                      p->ctx_after, (int64_t)p->seed, sv_feat_tokens(f), m->n_sequences, m->window_width};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0] && e >= 0; i++) e = attr_i64(w->file, names[i], vals[i]);
    int deflate = H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
    for (int i = 0; i < ND && e >= 0; i++) {
        hsize_t dims[4] = {(hsize_t)p->d_sae}, chunk[4];
        int r = 1 + extents(p, w->W, dsets[i].ext, dims + 1);
        /* chunks of whole latents, about 1 MiB at most */
        size_t per = per_latent_elems(p, w->W, dsets[i].ext) * type_size(dsets[i].type);
        hsize_t cl = per ? (hsize_t)((1u << 20) / per) : 64;
        if (cl > 64) cl = 64;
        if (cl < 1) cl = 1;
        if (cl > dims[0]) cl = dims[0];
        chunk[0] = cl;
        int empty = 0;
        for (int k = 1; k < r; k++) { chunk[k] = dims[k]; if (!dims[k]) empty = 1; }
        hid_t sp = H5Screate_simple(r, dims, NULL);
        hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
        e = (sp < 0 || pl < 0 || H5Pset_obj_track_times(pl, 0) < 0) ? -1 : 0;
        if (e >= 0 && !empty) {
            e = H5Pset_chunk(pl, r, chunk);
            if (e >= 0 && deflate) e = H5Pset_shuffle(pl) < 0 || H5Pset_deflate(pl, 1) < 0 ? -1 : 0;
        }
        if (e >= 0) {
            w->d[i] = H5Dcreate2(w->file, dsets[i].name, file_type(dsets[i].type), sp, H5P_DEFAULT, pl, H5P_DEFAULT);
            if (w->d[i] < 0) e = -1;
        }
        if (pl >= 0) H5Pclose(pl);
        if (sp >= 0) H5Sclose(sp);
    }
    if (e < 0) {
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot write the feature file layout (HDF5 error)", w->tmp);
        sv_featfile_abort(w);
        return rc;
    }
    *out = w;
    return SV_OK;
}

static herr_t write_rows(sv_featfile_writer *w, int i, int64_t j0, int64_t nl, const void *buf)
{
    hsize_t dims[4], start[4] = {(hsize_t)j0, 0, 0, 0};
    int r = 1 + extents(&w->p, w->W, dsets[i].ext, dims + 1);
    dims[0] = (hsize_t)nl;
    if (nl == 0) return 0;
    for (int k = 1; k < r; k++) if (!dims[k]) return 0;
    hid_t fs = H5Dget_space(w->d[i]);
    hid_t ms = H5Screate_simple(r, dims, NULL);
    herr_t e = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL);
    if (e >= 0) e = H5Dwrite(w->d[i], mem_type(dsets[i].type), ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return e;
}

sv_rc sv_featfile_put(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win)
{
    const sv_feat_params *p = &w->p;
    int64_t j0 = win->j0, nl = win->j1 - win->j0, W = w->W;
    if (win->width != W) return sv_fail(SV_EINTERNAL, "%s: windows of width %" PRId64 ", file of %" PRId64, w->path, win->width, W);
    void **buf = w->buf;
    if (nl > w->buf_nl) {
        int ok = 1;
        for (int i = 0; i < ND; i++) {
            free(buf[i]);
            buf[i] = malloc((size_t)(nl ? nl : 1) * per_latent_elems(p, W, dsets[i].ext) * type_size(dsets[i].type));
            if (!buf[i]) ok = 0;
        }
        w->buf_nl = ok ? nl : 0;
        if (!ok) return sv_fail(SV_EINTERNAL, "out of memory writing %s", w->path);
    }
    for (int i = 0; i < ND; i++)
        memset(buf[i], 0, (size_t)nl * per_latent_elems(p, W, dsets[i].ext) * type_size(dsets[i].type));
    size_t N = (size_t)p->top_n, I = (size_t)p->n_intervals, K = (size_t)p->interval_k;
    int64_t *ttok = buf[D_TTOK], *tstart = buf[D_TSTART], *itok = buf[D_ITOK], *istart = buf[D_ISTART];
    int32_t *tlen = buf[D_TLEN], *ilen = buf[D_ILEN], *tids = buf[D_TIDS], *iids = buf[D_IIDS];
    float *tval = buf[D_TVAL], *ival = buf[D_IVAL], *tvals = buf[D_TVALS], *ivals = buf[D_IVALS];
    /* empty slots */
    for (size_t k = 0; k < (size_t)nl * N; k++) { ttok[k] = -1; tstart[k] = -1; }
    for (size_t k = 0; k < (size_t)nl * I * K; k++) { itok[k] = -1; istart[k] = -1; }
    for (size_t k = 0; k < (size_t)nl * N * (size_t)W; k++) tids[k] = -1;
    for (size_t k = 0; k < (size_t)nl * I * K * (size_t)W; k++) iids[k] = -1;
    for (int64_t l = 0; l < nl; l++) {
        int64_t j = j0 + l;
        ((int64_t *)buf[D_NONZERO])[l] = sv_feat_nonzero(f, j);
        ((float *)buf[D_MAX])[l] = sv_feat_max(f, j);
        double wd;
        (void)sv_feat_hist(f, j, &wd, (int64_t *)buf[D_HIST] + (size_t)l * (size_t)p->grid_bins);
        ((double *)buf[D_HISTW])[l] = wd;
        for (size_t g = 0; g < I; g++) {
            double lo, hi;
            int64_t count;
            (void)sv_feat_interval(f, j, (int)g, &lo, &hi, &count, NULL);
            ((double *)buf[D_ILO])[(size_t)l * I + g] = lo;
            ((double *)buf[D_IHI])[(size_t)l * I + g] = hi;
            ((int64_t *)buf[D_ICNT])[(size_t)l * I + g] = count;
        }
    }
    /* windows come in (latent, top ranks, then interval by interval) order */
    int64_t prev_j = -1, prev_g = -1, r = 0;
    for (int64_t i = 0; i < win->n; i++) {
        const sv_feat_win *x = &win->win[i];
        size_t l = (size_t)(x->latent - j0), slot;
        const float *v = win->values + (size_t)i * (size_t)W;
        const int32_t *id = win->ids + (size_t)i * (size_t)W;
        if (x->kind == 0) {
            slot = l * N + (size_t)x->group;
            ttok[slot] = x->token; tval[slot] = x->value; tstart[slot] = x->start; tlen[slot] = (int32_t)x->len;
            memcpy(tvals + slot * (size_t)W, v, (size_t)W * sizeof *v);
            memcpy(tids + slot * (size_t)W, id, (size_t)W * sizeof *id);
        } else {
            if (x->latent != prev_j || x->group != prev_g) r = 0;
            prev_j = x->latent;
            prev_g = x->group;
            slot = (l * I + (size_t)x->group) * K + (size_t)r++;
            itok[slot] = x->token; ival[slot] = x->value; istart[slot] = x->start; ilen[slot] = (int32_t)x->len;
            memcpy(ivals + slot * (size_t)W, v, (size_t)W * sizeof *v);
            memcpy(iids + slot * (size_t)W, id, (size_t)W * sizeof *id);
        }
    }
    herr_t e = 0;
    int bad = -1;
    for (int i = 0; i < ND && e >= 0; i++) {
        e = write_rows(w, i, j0, nl, buf[i]);
        if (e < 0) bad = i;
    }
    if (e < 0) return sv_fail(SV_EINTERNAL, "%s: %s: write failed (HDF5 error)", w->tmp, dsets[bad].name);
    return SV_OK;
}

sv_rc sv_featfile_commit(sv_featfile_writer *w)
{
    herr_t e = 0;
    for (int i = 0; i < ND; i++)
        if (w->d[i] >= 0) { if (H5Dclose(w->d[i]) < 0) e = -1; w->d[i] = -1; }
    if (H5Fclose(w->file) < 0) e = -1;
    w->file = -1;
    if (e < 0) {
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot finish writing (HDF5 error)", w->tmp);
        sv_featfile_abort(w);
        return rc;
    }
    if (rename(w->tmp, w->path) != 0) {
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot rename %s: %s", w->path, w->tmp, strerror(errno));
        sv_featfile_abort(w);
        return rc;
    }
    free(w->tmp);
    w->tmp = NULL;
    sv_featfile_abort(w); /* frees; nothing left to remove */
    return SV_OK;
}

/* ---- reader ---- */
struct sv_featfile {
    hid_t file;
    hid_t d[ND];
    char *path;
    sv_feat_params p;
    int64_t tokens, sequences, W;
    char sae_id[1024], dataset[1024];
};

void sv_featfile_close(sv_featfile *f)
{
    if (!f) return;
    for (int i = 0; i < ND; i++)
        if (f->d[i] >= 0) H5Dclose(f->d[i]);
    if (f->file >= 0) H5Fclose(f->file);
    free(f->path);
    free(f);
}

const sv_feat_params *sv_featfile_params(const sv_featfile *f) { return &f->p; }
int64_t sv_featfile_tokens(const sv_featfile *f) { return f->tokens; }
int64_t sv_featfile_sequences(const sv_featfile *f) { return f->sequences; }
int64_t sv_featfile_width(const sv_featfile *f) { return f->W; }
const char *sv_featfile_sae_id(const sv_featfile *f) { return f->sae_id; }
const char *sv_featfile_dataset(const sv_featfile *f) { return f->dataset; }

sv_rc sv_featfile_open(sv_featfile **out, const char *path)
{
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    sv_featfile *f = sv_calloc(1, sizeof *f);
    if (!f) return SV_EINTERNAL;
    f->file = -1;
    for (int i = 0; i < ND; i++) f->d[i] = -1;
    f->path = sv_strdup(path);
    if (!f->path) { sv_featfile_close(f); return SV_EINTERNAL; }
    sv_rc rc = SV_OK;
    FILE *probe = fopen(path, "rb");
    if (!probe) { rc = sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno)); goto fail; }
    fclose(probe);
    if ((f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        rc = sv_fail(SV_EINPUT, "%s: not an HDF5 file", path);
        goto fail;
    }
    char fmt[64];
    if (!read_attr_str(f->file, "format", fmt, sizeof fmt) || strcmp(fmt, SV_FEATFILE_FORMAT) != 0) {
        rc = sv_fail(SV_EINPUT, "%s: attribute format: not a saeval feature file (%s)", path, SV_FEATFILE_FORMAT);
        goto fail;
    }
    if (!read_attr_str(f->file, "sae_id", f->sae_id, sizeof f->sae_id) ||
        !read_attr_str(f->file, "dataset", f->dataset, sizeof f->dataset)) {
        rc = sv_fail(SV_EINPUT, "%s: attributes sae_id/dataset: missing or not short strings", path);
        goto fail;
    }
    const char *names[] = {"d_sae", "top_n", "n_intervals", "interval_k", "histogram_bins", "context_before",
                           "context_after", "seed", "tokens_evaluated", "sequences", "window_width"};
    int64_t v[11];
    for (int i = 0; i < 11; i++)
        if (!read_attr_i64(f->file, names[i], &v[i])) {
            rc = sv_fail(SV_EINPUT, "%s: attribute %s: missing or not an integer", path, names[i]);
            goto fail;
        }
    for (int i = 1; i < 7; i++)
        if (v[i] < INT32_MIN || v[i] > INT32_MAX) { rc = sv_fail(SV_EINPUT, "%s: attribute %s: out of range", path, names[i]); goto fail; }
    f->p.d_sae = v[0]; f->p.top_n = (int)v[1]; f->p.n_intervals = (int)v[2]; f->p.interval_k = (int)v[3];
    f->p.grid_bins = (int)v[4]; f->p.ctx_before = (int)v[5]; f->p.ctx_after = (int)v[6]; f->p.seed = (uint64_t)v[7];
    f->tokens = v[8]; f->sequences = v[9]; f->W = v[10];
    rc = sv_feat_params_check(&f->p, path);
    if (rc != SV_OK) goto fail;
    if (f->p.d_sae > ((int64_t)1 << 31) || f->tokens < 0 || f->sequences < 0 || f->W < 1 || f->W > (1 << 20)) {
        rc = sv_fail(SV_EINPUT, "%s: attributes d_sae/tokens_evaluated/sequences/window_width: out of range", path);
        goto fail;
    }
    for (int i = 0; i < ND; i++) {
        hsize_t want[4] = {(hsize_t)f->p.d_sae}, got[4];
        int r = 1 + extents(&f->p, f->W, dsets[i].ext, want + 1);
        f->d[i] = H5Lexists(f->file, dsets[i].name, H5P_DEFAULT) > 0 ? H5Dopen2(f->file, dsets[i].name, H5P_DEFAULT) : -1;
        hid_t sp = f->d[i] >= 0 ? H5Dget_space(f->d[i]) : -1;
        int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == r && H5Sget_simple_extent_dims(sp, got, NULL) == r;
        for (int k = 0; ok && k < r; k++) ok = got[k] == want[k];
        if (sp >= 0) H5Sclose(sp);
        if (!ok) { rc = sv_fail(SV_EINPUT, "%s: dataset /%s: missing or of the wrong shape", path, dsets[i].name); goto fail; }
    }
    *out = f;
    return SV_OK;
fail:
    sv_featfile_close(f);
    return rc;
}

void sv_featfile_latent_free(sv_featfile_latent *l)
{
    free(l->mem_);
    memset(l, 0, sizeof *l);
}

sv_rc sv_featfile_read(sv_featfile *f, int64_t j, sv_featfile_latent *out)
{
    memset(out, 0, sizeof *out);
    const sv_feat_params *p = &f->p;
    if (j < 0 || j >= p->d_sae)
        return sv_fail(SV_EINPUT, "%s: latent %" PRId64 " out of range (d_sae %" PRId64 ")", f->path, j, p->d_sae);
    size_t N = (size_t)p->top_n, I = (size_t)p->n_intervals, K = (size_t)p->interval_k, W = (size_t)f->W;
    /* raw rows of every dataset for latent j, then the structs pointing into them */
    size_t off[ND], total = 0;
    for (int i = 0; i < ND; i++) {
        off[i] = total;
        total += (per_latent_elems(p, f->W, dsets[i].ext) * type_size(dsets[i].type) + 7) & ~(size_t)7;
    }
    size_t s_top = N * sizeof(sv_featfile_ex), s_iv = I * sizeof(sv_featfile_interval), s_iex = I * K * sizeof(sv_featfile_ex);
    char *mem = sv_calloc(total + s_top + s_iv + s_iex + 8, 1);
    if (!mem) return SV_EINTERNAL;
    for (int i = 0; i < ND; i++) {
        hsize_t dims[4], start[4] = {(hsize_t)j, 0, 0, 0};
        int r = 1 + extents(p, f->W, dsets[i].ext, dims + 1), empty = 0;
        dims[0] = 1;
        for (int k = 1; k < r; k++) if (!dims[k]) empty = 1;
        if (empty) continue;
        hid_t fs = H5Dget_space(f->d[i]);
        hid_t ms = H5Screate_simple(r, dims, NULL);
        herr_t e = (fs < 0 || ms < 0) ? -1 : H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL);
        if (e >= 0) e = H5Dread(f->d[i], mem_type(dsets[i].type), ms, fs, H5P_DEFAULT, mem + off[i]);
        if (ms >= 0) H5Sclose(ms);
        if (fs >= 0) H5Sclose(fs);
        if (e < 0) { free(mem); return sv_fail(SV_EINPUT, "%s: dataset /%s: cannot read latent %" PRId64, f->path, dsets[i].name, j); }
    }
#define ARR(i, T) ((T *)(mem + off[i]))
    out->mem_ = mem;
    out->latent = j;
    out->nonzero = ARR(D_NONZERO, int64_t)[0];
    out->max = ARR(D_MAX, float)[0];
    out->hist_width = ARR(D_HISTW, double)[0];
    out->hist = ARR(D_HIST, int64_t);
    out->frac_nonzero = f->tokens ? (double)out->nonzero / (double)f->tokens : 0;
    out->top = (sv_featfile_ex *)(mem + total);
    out->iv = (sv_featfile_interval *)(mem + total + s_top);
    sv_featfile_ex *iex = (sv_featfile_ex *)(mem + total + s_top + s_iv);
    sv_rc rc = SV_OK;
    /* slots: filled ones first, each window inside [0, W] */
    int seen_empty = 0;
    for (size_t k = 0; k < N; k++) {
        sv_featfile_ex *x = &out->top[k];
        x->token = ARR(D_TTOK, int64_t)[k];
        x->value = ARR(D_TVAL, float)[k];
        x->start = ARR(D_TSTART, int64_t)[k];
        x->len = ARR(D_TLEN, int32_t)[k];
        x->ids = ARR(D_TIDS, int32_t) + k * W;
        x->values = ARR(D_TVALS, float) + k * W;
        if (x->token < 0) { seen_empty = 1; continue; }
        if (seen_empty || x->len < 1 || (size_t)x->len > W || x->start < 0 || x->token < x->start || x->token >= x->start + x->len)
            rc = sv_fail(SV_EINPUT, "%s: latent %" PRId64 ": top example %zu: inconsistent slot", f->path, j, k);
        out->n_top = (int)k + 1;
    }
    for (size_t g = 0; g < I && rc == SV_OK; g++) {
        sv_featfile_interval *v = &out->iv[g];
        v->lo = ARR(D_ILO, double)[g];
        v->hi = ARR(D_IHI, double)[g];
        v->count = ARR(D_ICNT, int64_t)[g];
        v->ex = iex + g * K;
        seen_empty = 0;
        for (size_t k = 0; k < K; k++) {
            size_t s = g * K + k;
            sv_featfile_ex *x = &v->ex[k];
            x->token = ARR(D_ITOK, int64_t)[s];
            x->value = ARR(D_IVAL, float)[s];
            x->start = ARR(D_ISTART, int64_t)[s];
            x->len = ARR(D_ILEN, int32_t)[s];
            x->ids = ARR(D_IIDS, int32_t) + s * W;
            x->values = ARR(D_IVALS, float) + s * W;
            if (x->token < 0) { seen_empty = 1; continue; }
            if (seen_empty || x->len < 1 || (size_t)x->len > W || x->start < 0 || x->token < x->start || x->token >= x->start + x->len)
                rc = sv_fail(SV_EINPUT, "%s: latent %" PRId64 ": interval %zu sample %zu: inconsistent slot", f->path, j, g, k);
            v->n = (int)k + 1;
        }
    }
#undef ARR
    if (rc != SV_OK) sv_featfile_latent_free(out);
    return rc;
}

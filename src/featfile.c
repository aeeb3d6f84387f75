/* Feature files (HDF5) and the Neuronpedia batch export; layout in featfile.h.
 * One table lists every dataset: its name, type and per-latent shape, and
 * drives creation, writing, the reader's shape checks and reading. */
#include "saeval/featfile.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <mpi.h>
#include <zlib.h>
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

/* fill: the value of an empty slot (-1: no example, no token id) and the
 * dataset's HDF5 fill value, so a chunk holding only that is not stored. */
static const struct { const char *name; int type, ext, fill; } dsets[ND] = {
    {"nonzero", T_I64, X_NONE, 0},               {"max", T_F32, X_NONE, 0},
    {"hist_width", T_F64, X_NONE, 0},            {"hist_counts", T_I64, X_F, 0},
    {"top_token", T_I64, X_N, -1},               {"top_value", T_F32, X_N, 0},
    {"top_window_start", T_I64, X_N, -1},        {"top_window_len", T_I32, X_N, 0},
    {"top_window_ids", T_I32, X_NW, -1},         {"top_window_values", T_F32, X_NW, 0},
    {"interval_lo", T_F64, X_I, 0},              {"interval_hi", T_F64, X_I, 0},
    {"interval_count", T_I64, X_I, 0},
    {"interval_token", T_I64, X_IK, -1},         {"interval_value", T_F32, X_IK, 0},
    {"interval_window_start", T_I64, X_IK, -1},  {"interval_window_len", T_I32, X_IK, 0},
    {"interval_window_ids", T_I32, X_IKW, -1},   {"interval_window_values", T_F32, X_IKW, 0},
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
    int64_t cl[ND];    /* latents per HDF5 chunk (0: not chunked, nothing to write) */
    int filtered;      /* chunks go through shuffle + deflate */
    unsigned char *sh; /* filter_chunk's shuffled bytes, kept from one chunk to the next */
    size_t sh_cap;
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
    free(w->sh);
    free(w->path);
    free(w->tmp);
    free(w);
}

#define FEAT_DEFLATE 1 /* deflate level: fast; the windows' padding is what compresses */

/* Latents per HDF5 chunk of dataset i (0: an empty extent, not chunked):
 * whole latents, about 1 MiB at most, a power of two so that the featpass's
 * latent ranges (multiples of 64) hold whole chunks. */
static int64_t chunk_latents(const sv_feat_params *p, int64_t W, int i)
{
    hsize_t dims[4];
    int r = extents(p, W, dsets[i].ext, dims);
    for (int k = 0; k < r; k++)
        if (!dims[k]) return 0;
    size_t per = per_latent_elems(p, W, dsets[i].ext) * type_size(dsets[i].type);
    int64_t cl = 64;
    while (cl > 1 && per * (size_t)cl > ((size_t)1 << 20)) cl /= 2;
    return cl < p->d_sae ? cl : p->d_sae;
}

/* A writer without a file: its params and chunk layout, so a rank other
 * than 0 can filter its share of the chunks (sv_featfile_put_coll). */
static sv_featfile_writer *new_writer(const sv_feat_params *p, int64_t W)
{
    sv_featfile_writer *w = sv_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->file = -1;
    for (int i = 0; i < ND; i++) w->d[i] = -1;
    w->p = *p;
    w->W = W;
    w->filtered = H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
    for (int i = 0; i < ND; i++) w->cl[i] = chunk_latents(p, W, i);
    return w;
}

sv_rc sv_featfile_helper(sv_featfile_writer **out, const sv_feat_params *p, int64_t window_width)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *out = new_writer(p, window_width);
    return *out ? SV_OK : SV_EINTERNAL;
}

sv_rc sv_featfile_create(sv_featfile_writer **out, const char *path, const sv_feat *f, const sv_featfile_meta *m)
{
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const sv_feat_params *p = sv_feat_params_of(f);
    sv_featfile_writer *w = new_writer(p, m->window_width);
    if (!w) return SV_EINTERNAL;
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
    for (int i = 0; i < ND && e >= 0; i++) {
        hsize_t dims[4] = {(hsize_t)p->d_sae}, chunk[4] = {(hsize_t)w->cl[i]};
        int r = 1 + extents(p, w->W, dsets[i].ext, dims + 1);
        for (int k = 1; k < r; k++) chunk[k] = dims[k];
        hid_t sp = H5Screate_simple(r, dims, NULL);
        hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
        e = (sp < 0 || pl < 0 || H5Pset_obj_track_times(pl, 0) < 0) ? -1 : 0;
        if (e >= 0 && w->cl[i] > 0) { /* the filters, in the order filter_chunk applies them */
            e = H5Pset_chunk(pl, r, chunk);
            const int64_t f64 = dsets[i].fill;
            const int32_t f32 = (int32_t)dsets[i].fill;
            if (e >= 0 && f64 != 0) /* only integer datasets have a nonzero fill */
                e = dsets[i].type == T_I64 ? H5Pset_fill_value(pl, H5T_NATIVE_INT64, &f64)
                                           : H5Pset_fill_value(pl, H5T_NATIVE_INT32, &f32);
            if (e >= 0 && w->filtered) e = H5Pset_shuffle(pl) < 0 || H5Pset_deflate(pl, FEAT_DEFLATE) < 0 ? -1 : 0;
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

/* Rank 0: the put's rows of every dataset into w->buf (empty slots -1). */
static sv_rc fill_rows(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win)
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
    return SV_OK;
}

/* ---- chunks filtered on every rank ----
 * Compressing is most of the writing, and rank 0 alone holds the file, so
 * the put's whole chunks are shuffled and deflated in the formats of HDF5's
 * shuffle and deflate filters (a zlib stream; any HDF5 reader decodes them)
 * on the ranks in turn, and rank 0 stores them with H5Dwrite_chunk in chunk
 * order: the file does not depend on the number of ranks. */
typedef struct {
    int i;         /* dataset */
    int64_t c;     /* chunk index along the latents */
} job_t;

#define TAG_RAW 7301
#define TAG_OUT 7302

static size_t row_bytes(const sv_featfile_writer *w, int i)
{
    return per_latent_elems(&w->p, w->W, dsets[i].ext) * type_size(dsets[i].type);
}

/* Bytes of one whole chunk of dataset i (HDF5 stores the last one full too). */
static size_t chunk_bytes(const sv_featfile_writer *w, int i) { return (size_t)w->cl[i] * row_bytes(w, i); }

/* Whole chunks of dataset i inside [j0, j1): [*c0, *c1); the last chunk
 * of the dataset counts as whole when j1 is the end. */
static void whole_chunks(const sv_featfile_writer *w, int i, int64_t j0, int64_t j1, int64_t *c0, int64_t *c1)
{
    const int64_t cl = w->cl[i], d = w->p.d_sae;
    *c0 = *c1 = 0;
    if (cl <= 0) return;
    *c0 = (j0 + cl - 1) / cl;
    *c1 = j1 == d ? (d + cl - 1) / cl : j1 / cl;
    if (*c1 < *c0) *c1 = *c0;
}

/* HDF5's shuffle (as H5Zshuffle.c: the bytes of each byte position
 * together, a partial element's bytes last) then deflate (a zlib stream,
 * what H5Zdeflate.c stores and inflates), into *out (allocated). 0 on success. */
static int filter_chunk(sv_featfile_writer *w, int i, const unsigned char *raw, size_t n, unsigned char **out,
                        size_t *out_n)
{
    *out = NULL;
    if (!w->filtered) { /* no filters in the pipeline: the bytes as they are */
        if (!(*out = malloc(n ? n : 1))) return -1;
        memcpy(*out, raw, n);
        *out_n = n;
        return 0;
    }
    if (n > w->sh_cap) {
        free(w->sh);
        w->sh_cap = 0;
        if (!(w->sh = malloc(n))) return -1;
        w->sh_cap = n;
    }
    const size_t es = type_size(dsets[i].type), ne = n / es;
    unsigned char *sh = w->sh;
    uLongf len = compressBound((uLong)n);
    unsigned char *z = malloc(len);
    if (!z) return -1;
    if (es > 1 && ne > 1) {
        for (size_t b = 0; b < es; b++)
            for (size_t k = 0; k < ne; k++) sh[b * ne + k] = raw[k * es + b];
        memcpy(sh + ne * es, raw + ne * es, n - ne * es); /* HDF5 leaves a partial element's bytes at the end */
    } else {
        memcpy(sh, raw, n);
    }
    /* run-length matches only (Z_RLE): the arrays are runs of 0 and -1
     * bytes between incompressible float bytes, and it is several times
     * faster than a full match search; any inflate reads it */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int zr = deflateInit2(&zs, FEAT_DEFLATE, Z_DEFLATED, 15, 8, Z_RLE);
    if (zr == Z_OK) {
        zs.next_in = sh;
        zs.avail_in = (uInt)n;
        zs.next_out = z;
        zs.avail_out = (uInt)len;
        zr = deflate(&zs, Z_FINISH) == Z_STREAM_END ? Z_OK : Z_BUF_ERROR;
        len = (uLongf)zs.total_out;
        deflateEnd(&zs);
    }
    if (zr != Z_OK) { free(z); return -1; }
    *out = z;
    *out_n = (size_t)len;
    return 0;
}

sv_rc sv_featfile_put_coll(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win, int64_t j0,
                           int64_t j1, MPI_Comm comm)
{
    int rank = 0, P = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(comm, &P);
    }
    sv_rc rc = SV_OK;
    if (rank == 0) {
        if (!win) rc = SV_EINTERNAL; /* the caller could not make them: its message stands */
        else if (win->j0 != j0 || win->j1 != j1) rc = sv_fail(SV_EINTERNAL, "%s: windows of latents %" PRId64 "..%" PRId64 ", not %" PRId64 "..%" PRId64, w->path, win->j0, win->j1, j0, j1);
        else rc = fill_rows(w, f, win);
    }
    /* the jobs, the same list on every rank: dataset by dataset, chunk by chunk */
    int64_t c0[ND], c1[ND], nj = 0;
    size_t maxraw = 0;
    for (int i = 0; i < ND; i++) {
        whole_chunks(w, i, j0, j1, &c0[i], &c1[i]);
        nj += c1[i] - c0[i];
        if (c1[i] > c0[i] && chunk_bytes(w, i) > maxraw) maxraw = chunk_bytes(w, i);
    }
    const int too_big = maxraw > (size_t)INT_MAX / 2; /* MPI counts; the same verdict on every rank */
    job_t *jobs = sv_malloc((size_t)(nj ? nj : 1) * sizeof *jobs);
    int *own = sv_malloc((size_t)(nj ? nj : 1) * sizeof *own);
    for (int64_t i = 0, t = 0; jobs && i < ND; i++)
        for (int64_t c = c0[i]; c < c1[i]; c++) jobs[t++] = (job_t){(int)i, c};
    /* Rank 0: the raw bytes of each job (into its rows, or a padded copy of
     * the dataset's last chunk when it is short: HDF5 stores full chunks),
     * and which jobs hold nothing but the dataset's fill value (-1 or 0 in
     * every byte): those are not stored, HDF5 reads the fill value for them. */
    unsigned char *pad[ND] = {0};
    MPI_Request *sreq = NULL;
    int nreq = 0;
    const unsigned char **raw = NULL;
    if (rank == 0 && rc == SV_OK && !too_big && jobs && own) {
        raw = sv_malloc((size_t)(nj ? nj : 1) * sizeof *raw);
        sreq = sv_malloc((size_t)(nj ? nj : 1) * sizeof *sreq);
        for (int64_t t = 0; raw && sreq && t < nj; t++) {
            const int i = jobs[t].i;
            const size_t rb = row_bytes(w, i), n = chunk_bytes(w, i);
            const int64_t a = jobs[t].c * w->cl[i], e = a + w->cl[i] < j1 ? a + w->cl[i] : j1;
            raw[t] = (const unsigned char *)w->buf[i] + (size_t)(a - j0) * rb;
            if ((size_t)(e - a) * rb < n) {
                if (!(pad[i] = calloc(1, n))) { rc = SV_EINTERNAL; break; }
                memcpy(pad[i], raw[t], (size_t)(e - a) * rb);
                raw[t] = pad[i];
            }
            const unsigned char fb = dsets[i].fill ? 0xFF : 0x00;
            size_t q = 0;
            while (q < n && raw[t][q] == fb) q++;
            own[t] = q == n ? -1 : 0;
        }
        if (!raw || !sreq) rc = SV_EINTERNAL;
    }
    /* one agreement: rank 0's rows and buffers, every rank's lists */
    int ok = rc == SV_OK && !too_big && jobs && own;
    if (P > 1) MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm);
    if (!ok) {
        for (int i = 0; i < ND; i++) free(pad[i]);
        free(own); free(raw); free(sreq); free(jobs);
        if (rank == 0 && rc != SV_OK) return rc; /* its message stands */
        return sv_fail(SV_EINTERNAL, too_big ? "feature file: a chunk above 1 GiB"
                                             : "feature file: out of memory, here or on rank 0, preparing its chunks");
    }
    if (P > 1) MPI_Bcast(own, (int)nj, MPI_INT, 0, comm);
    for (int64_t t = 0, k = 0; t < nj; t++) /* the stored chunks go to the ranks in turn */
        if (own[t] == 0) own[t] = (int)(k++ % P);
    if (rank == 0) { /* hand out the other ranks' chunks */
        for (int64_t t = 0; t < nj; t++) {
            const int o = own[t];
            if (o <= 0) continue;
            const int i = jobs[t].i;
            MPI_Isend(raw[t], (int)chunk_bytes(w, i), MPI_BYTE, o, TAG_RAW, comm, &sreq[nreq++]);
        }
        int bad = -1;
        for (int64_t t = 0; t < nj; t++) {
            const int o = own[t], i = jobs[t].i;
            if (o < 0) continue; /* only the fill value */
            unsigned char *z = NULL;
            size_t zn = 0;
            int got = 0;
            if (o == 0) {
                got = filter_chunk(w, i, raw[t], chunk_bytes(w, i), &z, &zn) == 0;
            } else { /* an empty message: that rank could not filter it */
                MPI_Status stt;
                int cnt = 0;
                MPI_Probe(o, TAG_OUT, comm, &stt);
                MPI_Get_count(&stt, MPI_BYTE, &cnt);
                z = malloc(cnt > 0 ? (size_t)cnt : 1);
                MPI_Recv(z, cnt, MPI_BYTE, o, TAG_OUT, comm, MPI_STATUS_IGNORE);
                got = z && cnt > 0;
                zn = (size_t)cnt;
            }
            if (got && bad < 0) {
                hsize_t off[4] = {(hsize_t)(jobs[t].c * w->cl[i]), 0, 0, 0};
                if (H5Dwrite_chunk(w->d[i], H5P_DEFAULT, 0, off, zn, z) < 0) bad = i;
            } else if (!got && bad < 0) {
                bad = i;
                rc = SV_EINTERNAL;
            }
            free(z);
        }
        /* the rows of chunks this put only partly covers go through HDF5's pipeline */
        for (int i = 0; i < ND && bad < 0; i++) {
            if (w->cl[i] <= 0) continue;
            const int64_t cl = w->cl[i], a = c1[i] > c0[i] ? c0[i] * cl : j1,
                          e = c1[i] > c0[i] ? (c1[i] * cl < j1 ? c1[i] * cl : j1) : j1;
            const size_t rb = row_bytes(w, i);
            if (a > j0 && write_rows(w, i, j0, a - j0, w->buf[i]) < 0) bad = i;
            if (bad < 0 && e < j1 && write_rows(w, i, e, j1 - e, (const unsigned char *)w->buf[i] + (size_t)(e - j0) * rb) < 0) bad = i;
        }
        if (nreq > 0) MPI_Waitall(nreq, sreq, MPI_STATUSES_IGNORE);
        if (bad >= 0) rc = rc != SV_OK ? sv_fail(rc, "%s: %s: could not filter a chunk", w->tmp, dsets[bad].name)
                                       : sv_fail(SV_EINTERNAL, "%s: %s: write failed (HDF5 error)", w->tmp, dsets[bad].name);
    } else { /* filter this rank's share, in job order */
        int64_t mine = 0;
        for (int64_t t = 0; t < nj; t++) mine += own[t] == rank;
        unsigned char **outs = sv_calloc((size_t)(mine ? mine : 1), sizeof *outs);
        MPI_Request *oreq = sv_malloc((size_t)(mine ? mine : 1) * sizeof *oreq);
        unsigned char *in = malloc(maxraw ? maxraw : 1);
        int64_t k = 0;
        for (int64_t t = 0; t < nj; t++) {
            if (own[t] != rank) continue;
            const int i = jobs[t].i;
            const size_t n = chunk_bytes(w, i);
            size_t zn = 0;
            unsigned char *dummy = NULL;
            /* the raw chunk is received even when it cannot be filtered: rank 0 sent it */
            MPI_Recv(in ? in : (unsigned char *)&dummy, in ? (int)n : 0, MPI_BYTE, 0, TAG_RAW, comm, MPI_STATUS_IGNORE);
            unsigned char *z = NULL;
            if (!in || !outs || !oreq || filter_chunk(w, i, in, n, &z, &zn) != 0) { free(z); z = NULL; zn = 0; }
            if (outs) outs[k] = z;
            MPI_Request rq;
            MPI_Isend(z ? (void *)z : (void *)&dummy, (int)zn, MPI_BYTE, 0, TAG_OUT, comm, oreq ? &oreq[k] : &rq);
            if (!oreq) MPI_Wait(&rq, MPI_STATUS_IGNORE);
            k++;
        }
        if (oreq) MPI_Waitall((int)mine, oreq, MPI_STATUSES_IGNORE);
        for (int64_t q = 0; outs && q < mine; q++) free(outs[q]);
        free(outs); free(oreq); free(in);
    }
    for (int i = 0; i < ND; i++) free(pad[i]);
    free(own); free(raw); free(sreq); free(jobs);
    /* rank 0 speaks for the put: every rank returns the same */
    if (P > 1) {
        int r = (int)rc;
        MPI_Bcast(&r, 1, MPI_INT, 0, comm);
        if (rank != 0 && r != SV_OK) rc = sv_fail((sv_rc)r, "feature file: writing failed on rank 0");
    }
    return rc;
}

sv_rc sv_featfile_put(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win)
{
    return sv_featfile_put_coll(w, f, win, win->j0, win->j1, MPI_COMM_NULL);
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

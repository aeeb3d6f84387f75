/* Activation stores: a collective reader over the MPI-IO driver and a
 * serial writer for synthetic data and tests.
 *
 * Every rank opens the same file and reads the same (small) metadata, so all
 * ranks reach the same verdict on a malformed file without communicating.
 * The only collective HDF5 calls are H5Fopen and H5Fclose; everything in
 * between is independent, so a rank failing validation never leaves another
 * rank waiting. */
#include "saeval/store.h"
#include "saeval/watchdog.h"
#include "saeval/fsutil.h"
#include "saeval/half.h"

#include <hdf5.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* MPI-IO requests are capped below 2 GiB in several MPI stacks; staying
 * well under that keeps a large block read from failing mysteriously. */
#define SV_MAX_READ_BYTES ((int64_t)1 << 30)

const char *sv_store_dtype_name(sv_store_dtype d)
{
    switch (d) {
    case SV_STORE_F32: return "float32";
    case SV_STORE_F16: return "float16";
    case SV_STORE_BF16: return "bfloat16";
    case SV_STORE_BF16_U16: return "bfloat16 (uint16 + dtype attribute)";
    }
    return "?";
}

static void h5_quiet(void)
{
    /* Our own one-line messages replace HDF5's error stack dump. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void close_id(hid_t id, herr_t (*fn)(hid_t))
{
    if (id > 0) fn(id);
}

/* ------------------------------------------------------------------ */
/* Metadata helpers: each closes whatever it opened before returning.  */

/* Does loc have a link `name` (a dataset path like "/token_ids")? */
static int has_link(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

/* Open a dataset and return its rank and dims (up to 2). */
static sv_rc open_dset(const char *path, hid_t file, const char *name, hid_t *out, int *rank,
                       hsize_t dims[2])
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return sv_fail(SV_EINPUT, "%s: %s: cannot open (not a dataset?)", path, name);
    hid_t sp = H5Dget_space(d);
    int r = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (r < 0) {
        close_id(sp, H5Sclose);
        H5Dclose(d);
        return sv_fail(SV_EINPUT, "%s: %s: cannot read dataspace", path, name);
    }
    hsize_t tmp[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(sp, tmp, NULL);
    H5Sclose(sp);
    dims[0] = r > 0 ? tmp[0] : 1;
    dims[1] = r > 1 ? tmp[1] : 1;
    *rank = r;
    *out = d;
    return SV_OK;
}

/* Class of a dataset's datatype, or H5T_NO_CLASS on failure. */
static H5T_class_t dset_class(hid_t d)
{
    hid_t t = H5Dget_type(d);
    if (t < 0) return H5T_NO_CLASS;
    H5T_class_t c = H5Tget_class(t);
    H5Tclose(t);
    return c;
}

/* Read a string attribute (fixed or variable length, one element) into a
 * fresh NUL-terminated string. *out is NULL when the attribute is absent. */
static sv_rc read_str_attr(const char *path, hid_t obj, const char *objname, const char *name,
                           char **out)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0) return SV_OK;
    sv_rc rc = SV_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    hid_t mt = -1;
    if (a < 0 || t < 0 || sp < 0) {
        rc = sv_fail(SV_EINPUT, "%s: %s%s: cannot open attribute", path, objname, name);
        goto done;
    }
    if (H5Tget_class(t) != H5T_STRING) {
        rc = sv_fail(SV_EINPUT, "%s: %s%s: expected a string attribute", path, objname, name);
        goto done;
    }
    if (H5Sget_simple_extent_npoints(sp) != 1) {
        rc = sv_fail(SV_EINPUT, "%s: %s%s: expected a single string", path, objname, name);
        goto done;
    }
    if (H5Tis_variable_str(t) > 0) {
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        char *v = NULL;
        if (H5Aread(a, mt, &v) < 0) {
            rc = sv_fail(SV_EINPUT, "%s: %s%s: cannot read attribute", path, objname, name);
            goto done;
        }
        *out = sv_strdup(v ? v : "");
        H5free_memory(v);
    } else {
        size_t n = H5Tget_size(t);
        char *buf = sv_calloc(n + 1, 1);
        if (!buf) { rc = SV_EINTERNAL; goto done; }
        /* Reading with the file's own type copies the bytes unchanged. */
        if (H5Aread(a, t, buf) < 0) {
            free(buf);
            rc = sv_fail(SV_EINPUT, "%s: %s%s: cannot read attribute", path, objname, name);
            goto done;
        }
        buf[n] = '\0';
        /* Space-padded strings (Fortran style) lose their padding. */
        while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
        *out = buf;
    }
    if (!*out) rc = SV_EINTERNAL;
done:
    close_id(mt, H5Tclose);
    close_id(sp, H5Sclose);
    close_id(t, H5Tclose);
    close_id(a, H5Aclose);
    return rc;
}

/* Read an integer attribute of any shape as int64. *n = element count. */
static sv_rc read_int_attr(const char *path, hid_t obj, const char *name, int64_t **out, int64_t *n)
{
    sv_rc rc = SV_OK;
    *out = NULL;
    *n = 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a);
    if (a < 0 || t < 0 || sp < 0) {
        rc = sv_fail(SV_EINPUT, "%s: attribute %s: cannot open", path, name);
        goto done;
    }
    if (H5Tget_class(t) != H5T_INTEGER) {
        rc = sv_fail(SV_EINPUT, "%s: attribute %s: expected integers", path, name);
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np < 0) {
        rc = sv_fail(SV_EINPUT, "%s: attribute %s: cannot read dataspace", path, name);
        goto done;
    }
    *out = sv_malloc((size_t)np * sizeof(int64_t));
    if (!*out) { rc = SV_EINTERNAL; goto done; }
    if (np > 0 && H5Aread(a, H5T_NATIVE_INT64, *out) < 0) {
        free(*out);
        *out = NULL;
        rc = sv_fail(SV_EINPUT, "%s: attribute %s: cannot read", path, name);
        goto done;
    }
    *n = (int64_t)np;
done:
    close_id(sp, H5Sclose);
    close_id(t, H5Tclose);
    close_id(a, H5Aclose);
    return rc;
}

/* Is t a little-endian IEEE-style float with exactly these fields? */
static int float_is(hid_t t, size_t spos, size_t epos, size_t esize, size_t mpos, size_t msize,
                    size_t ebias)
{
    size_t sp, ep, es, mp, ms;
    if (H5Tget_fields(t, &sp, &ep, &es, &mp, &ms) < 0) return 0;
    return sp == spos && ep == epos && es == esize && mp == mpos && ms == msize &&
           H5Tget_ebias(t) == ebias && H5Tget_offset(t) == 0 &&
           H5Tget_precision(t) == 8 * H5Tget_size(t) && H5Tget_norm(t) == H5T_NORM_IMPLIED;
}

/* Decide which of the four supported forms /activations is in. */
static sv_rc classify_activations(const char *path, const char *nm, hid_t d, sv_store_dtype *dt)
{
    sv_rc rc = SV_OK;
    hid_t t = H5Dget_type(d);
    char *tag = NULL;
    if (t < 0) return sv_fail(SV_EINPUT, "%s: %s: cannot read datatype", path, nm);
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    if ((cls == H5T_FLOAT || cls == H5T_INTEGER) && H5Tget_order(t) != H5T_ORDER_LE) {
        rc = sv_fail(SV_EINPUT, "%s: %s: big-endian data is not supported", path, nm);
    } else if (cls == H5T_FLOAT) {
        if (size == 4 && float_is(t, 31, 23, 8, 0, 23, 127))
            *dt = SV_STORE_F32;
        else if (size == 2 && float_is(t, 15, 10, 5, 0, 10, 15))
            *dt = SV_STORE_F16;
        else if (size == 2 && float_is(t, 15, 7, 8, 0, 7, 127))
            *dt = SV_STORE_BF16;
        else
            rc = sv_fail(SV_EINPUT,
                         "%s: %s: unsupported %zu-byte float type (need float32, float16 or bfloat16)",
                         path, nm, size);
    } else if (cls == H5T_INTEGER) {
        char on[80];
        snprintf(on, sizeof on, "%s: attribute ", nm);
        rc = read_str_attr(path, d, on, "dtype", &tag);
        if (rc == SV_OK) {
            if (!tag)
                rc = sv_fail(SV_EINPUT,
                             "%s: %s: integer data without attribute dtype=\"bfloat16\"", path, nm);
            else if (strcmp(tag, "bfloat16") != 0)
                rc = sv_fail(SV_EINPUT, "%s: %s: attribute dtype: \"%s\" is not supported (need \"bfloat16\")",
                             path, nm, tag);
            else if (size != 2 || H5Tget_precision(t) != 16 || H5Tget_offset(t) != 0)
                rc = sv_fail(SV_EINPUT, "%s: %s: dtype=\"bfloat16\" needs a 16-bit integer dataset, got %zu bytes",
                             path, nm, size);
            else
                *dt = SV_STORE_BF16_U16;
        }
    } else {
        rc = sv_fail(SV_EINPUT, "%s: %s: unsupported datatype class (need float32, float16 or bfloat16)",
                     path, nm);
    }
    free(tag);
    H5Tclose(t);
    return rc;
}

/* Layout: chunk shape, and no filters (we read raw hyperslabs). */
static sv_rc read_layout(const char *path, const char *nm, hid_t d, int *chunked, int64_t *chunk)
{
    sv_rc rc = SV_OK;
    hid_t pl = H5Dget_create_plist(d);
    if (pl < 0) return sv_fail(SV_EINPUT, "%s: %s: cannot read creation properties", path, nm);
    H5D_layout_t lay = H5Pget_layout(pl);
    if (lay == H5D_CHUNKED) {
        hsize_t c[2] = {0, 0};
        if (H5Pget_chunk(pl, 2, c) != 2) {
            rc = sv_fail(SV_EINPUT, "%s: %s: cannot read chunk shape", path, nm);
        } else {
            *chunked = 1;
            chunk[0] = (int64_t)c[0];
            chunk[1] = (int64_t)c[1];
        }
        int nf = H5Pget_nfilters(pl);
        if (rc == SV_OK && nf != 0) {
            char fname[64] = "?";
            unsigned flags, cd[8];
            size_t ncd = 8;
            if (nf > 0) H5Pget_filter2(pl, 0, &flags, &ncd, cd, sizeof fname, fname, NULL);
            rc = sv_fail(SV_EINPUT,
                         "%s: %s: compressed/filtered datasets are not supported (filter %s); rewrite it uncompressed",
                         path, nm, fname);
        }
    } else if (lay == H5D_CONTIGUOUS || lay == H5D_COMPACT) {
        *chunked = 0;
    } else {
        rc = sv_fail(SV_EINPUT, "%s: %s: unsupported storage layout", path, nm);
    }
    H5Pclose(pl);
    return rc;
}

static sv_rc read_sequences(const char *path, sv_store *s)
{
    hid_t file = (hid_t)s->file;
    if (has_link(file, "/sequence_offsets")) {
        hid_t d;
        int r;
        hsize_t dims[2];
        sv_rc rc = open_dset(path, file, "/sequence_offsets", &d, &r, dims);
        if (rc != SV_OK) return rc;
        if (r != 1) rc = sv_fail(SV_EINPUT, "%s: /sequence_offsets: expected 1-D, got rank %d", path, r);
        else if (dset_class(d) != H5T_INTEGER)
            rc = sv_fail(SV_EINPUT, "%s: /sequence_offsets: expected integers", path);
        else if (dims[0] < 2)
            rc = sv_fail(SV_EINPUT, "%s: /sequence_offsets: needs at least 2 entries, got %llu", path,
                         (unsigned long long)dims[0]);
        if (rc == SV_OK) {
            s->seq_offsets = sv_malloc(dims[0] * sizeof(int64_t));
            if (!s->seq_offsets) rc = SV_EINTERNAL;
        }
        if (rc == SV_OK && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->seq_offsets) < 0)
            rc = sv_fail(SV_EINPUT, "%s: /sequence_offsets: read failed", path);
        H5Dclose(d);
        if (rc != SV_OK) return rc;
        s->n_seq = (int64_t)dims[0] - 1;
        s->context_size = 0;
        const int64_t *o = s->seq_offsets;
        if (o[0] != 0)
            return sv_fail(SV_EINPUT, "%s: /sequence_offsets: must start at 0, starts at %lld", path,
                           (long long)o[0]);
        for (int64_t i = 1; i <= s->n_seq; i++)
            if (o[i] <= o[i - 1])
                return sv_fail(SV_EINPUT,
                               "%s: /sequence_offsets: not strictly increasing at index %lld (%lld after %lld)",
                               path, (long long)i, (long long)o[i], (long long)o[i - 1]);
        if (o[s->n_seq] != s->n_tokens)
            return sv_fail(SV_EINPUT, "%s: /sequence_offsets: ends at %lld, expected n_tokens = %lld", path,
                           (long long)o[s->n_seq], (long long)s->n_tokens);
        return SV_OK;
    }
    if (H5Aexists(file, "context_size") > 0) {
        int64_t *v;
        int64_t n;
        sv_rc rc = read_int_attr(path, file, "context_size", &v, &n);
        if (rc != SV_OK) return rc;
        int64_t cs = n == 1 ? v[0] : 0;
        free(v);
        if (n != 1) return sv_fail(SV_EINPUT, "%s: attribute context_size: expected one integer", path);
        if (cs <= 0)
            return sv_fail(SV_EINPUT, "%s: attribute context_size: must be positive, got %lld", path, (long long)cs);
        if (s->n_tokens % cs != 0)
            return sv_fail(SV_EINPUT, "%s: attribute context_size: %lld does not divide n_tokens = %lld", path,
                           (long long)cs, (long long)s->n_tokens);
        s->context_size = cs;
        s->n_seq = s->n_tokens / cs;
        s->seq_offsets = sv_malloc((size_t)(s->n_seq + 1) * sizeof(int64_t));
        if (!s->seq_offsets) return SV_EINTERNAL;
        for (int64_t i = 0; i <= s->n_seq; i++) s->seq_offsets[i] = i * cs;
        return SV_OK;
    }
    return sv_fail(SV_EINPUT, "%s: no sequence structure: need /sequence_offsets or root attribute context_size",
                   path);
}

/* Everything after H5Fopen; errors here leave cleanup to the caller. */
static sv_rc read_metadata(const char *path, sv_store *s)
{
    hid_t file = (hid_t)s->file;
    hid_t d;
    int r;
    hsize_t dims[2];
    sv_rc rc;

    if (!has_link(file, "/activations")) return sv_fail(SV_EINPUT, "%s: /activations: missing", path);
    if ((rc = open_dset(path, file, "/activations", &d, &r, dims)) != SV_OK) return rc;
    s->dset = d;
    if (r != 2) return sv_fail(SV_EINPUT, "%s: /activations: expected 2-D [n_tokens, d_in], got rank %d", path, r);
    s->n_tokens = (int64_t)dims[0];
    s->d_in = (int64_t)dims[1];
    if (s->n_tokens == 0) return sv_fail(SV_EINPUT, "%s: /activations: zero tokens", path);
    if (s->d_in == 0) return sv_fail(SV_EINPUT, "%s: /activations: d_in is 0", path);
    if ((rc = classify_activations(path, "/activations", d, &s->dtype)) != SV_OK) return rc;
    if ((rc = read_layout(path, "/activations", d, &s->chunked, s->chunk)) != SV_OK) return rc;

    /* /targets: what a transcoder's output is compared with (optional). */
    if (has_link(file, "/targets")) {
        if ((rc = open_dset(path, file, "/targets", &d, &r, dims)) != SV_OK) return rc;
        s->tgt_dset = d;
        if (r != 2) return sv_fail(SV_EINPUT, "%s: /targets: expected 2-D [n_tokens, d_out], got rank %d", path, r);
        if ((int64_t)dims[0] != s->n_tokens)
            return sv_fail(SV_EINPUT, "%s: /targets: %lld rows, expected n_tokens = %lld (as /activations)", path,
                           (long long)dims[0], (long long)s->n_tokens);
        if (dims[1] == 0) return sv_fail(SV_EINPUT, "%s: /targets: d_out is 0", path);
        s->d_out = (int64_t)dims[1];
        int ch;
        int64_t cs[2];
        if ((rc = classify_activations(path, "/targets", d, &s->tgt_dtype)) != SV_OK) return rc;
        if ((rc = read_layout(path, "/targets", d, &ch, cs)) != SV_OK) return rc;
    }

    if (has_link(file, "/token_ids")) {
        if ((rc = open_dset(path, file, "/token_ids", &d, &r, dims)) != SV_OK) return rc;
        s->tok_dset = d;
        if (r != 1) return sv_fail(SV_EINPUT, "%s: /token_ids: expected 1-D, got rank %d", path, r);
        if (dset_class(d) != H5T_INTEGER) return sv_fail(SV_EINPUT, "%s: /token_ids: expected integers", path);
        if ((int64_t)dims[0] != s->n_tokens)
            return sv_fail(SV_EINPUT, "%s: /token_ids: length %lld, expected n_tokens = %lld", path,
                           (long long)dims[0], (long long)s->n_tokens);
        s->has_token_ids = 1;
    }

    if ((rc = read_sequences(path, s)) != SV_OK) return rc;

    if (H5Aexists(file, "special_token_ids") > 0) {
        int64_t n;
        if ((rc = read_int_attr(path, file, "special_token_ids", &s->special_ids, &n)) != SV_OK) return rc;
        if (n > 1 << 20) return sv_fail(SV_EINPUT, "%s: attribute special_token_ids: too many (%lld)", path, (long long)n);
        s->n_special = (int)n;
    }
    s->model_params = NAN;
    if (H5Aexists(file, "model_params") > 0) {
        /* One number, integer or float: the language model's size. */
        hid_t a = H5Aopen(file, "model_params", H5P_DEFAULT);
        hid_t sp = a < 0 ? -1 : H5Aget_space(a), t = a < 0 ? -1 : H5Aget_type(a);
        double v = NAN;
        int ok = a >= 0 && sp >= 0 && t >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
                 (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) &&
                 H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0 && isfinite(v) && v > 0;
        if (t >= 0) H5Tclose(t);
        if (sp >= 0) H5Sclose(sp);
        if (a >= 0) H5Aclose(a);
        if (!ok) return sv_fail(SV_EINPUT, "%s: attribute model_params: must be one positive number", path);
        s->model_params = v;
    }
    if ((rc = read_str_attr(path, file, "attribute ", "model_name", &s->model_name)) != SV_OK) return rc;
    if ((rc = read_str_attr(path, file, "attribute ", "hook_name", &s->hook_name)) != SV_OK) return rc;
    if ((rc = read_str_attr(path, file, "attribute ", "dataset_name", &s->dataset_name)) != SV_OK) return rc;
    return SV_OK;
}

static void store_reset(sv_store *s)
{
    memset(s, 0, sizeof *s);
    s->file = s->dset = s->tok_dset = s->tgt_dset = -1;
}

sv_rc sv_store_open(sv_store *s, const char *path, MPI_Comm comm)
{
    store_reset(s);
    h5_quiet();

    /* Non-collective checks first: every rank sees the same file system,
     * so all of them bail out here together, before H5Fopen. */
    struct stat st;
    if (stat(path, &st) != 0) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode) || H5Fis_hdf5(path) <= 0) return sv_fail(SV_EINPUT, "%s: not an HDF5 file", path);

    s->path = sv_strdup(path);
    if (!s->path) return SV_EINTERNAL;
    s->file_size = (uint64_t)st.st_size;
    s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        close_id(fapl, H5Pclose);
        sv_store_close(s);
        return sv_fail(SV_EINTERNAL, "%s: cannot set up the MPI-IO driver", path);
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        sv_store_close(s);
        return sv_fail(SV_EINPUT, "%s: cannot open as HDF5 (corrupt or truncated file?)", path);
    }
    s->file = f;

    sv_rc rc = read_metadata(path, s);
    if (rc != SV_OK) {
        /* Keep the message: close does not touch it. */
        sv_store_close(s);
        return rc;
    }
    return SV_OK;
}

/* Select rows [t0, t0+n) x all columns of a dataset of rank 1 or 2. */
static hid_t select_rows(hid_t d, int rank, int64_t t0, int64_t n, int64_t cols, hid_t *mspace)
{
    hid_t fs = H5Dget_space(d);
    if (fs < 0) return -1;
    hsize_t start[2] = {(hsize_t)t0, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        H5Sclose(fs);
        return -1;
    }
    *mspace = H5Screate_simple(rank, count, NULL);
    if (*mspace < 0) {
        H5Sclose(fs);
        return -1;
    }
    return fs;
}

static sv_rc check_range(const sv_store *s, int64_t t0, int64_t n, const char *what)
{
    if (t0 < 0 || n < 0 || t0 > s->n_tokens || n > s->n_tokens - t0)
        return sv_fail(SV_EINTERNAL, "%s: %s: range [%lld, %lld) outside [0, %lld)", s->path ? s->path : "?",
                       what, (long long)t0, (long long)(t0 + n), (long long)s->n_tokens);
    return SV_OK;
}

/* One bounded read of rows [t0, t0+n) of a 2-D dataset (cols wide, in
 * dtype dt) into out (float), via staging for 16-bit. */
static sv_rc read_rows_once(sv_store *s, hid_t d, const char *nm, sv_store_dtype dt, int64_t cols, int64_t t0,
                            int64_t n, float *out)
{
    hid_t ms = -1, fs = select_rows(d, 2, t0, n, cols, &ms);
    if (fs < 0) return sv_fail(SV_EINTERNAL, "%s: %s: cannot select rows", s->path, nm);
    sv_rc rc = SV_OK;
    size_t cnt = (size_t)n * (size_t)cols;
    sv_watch_begin("reading", s->path, t0, t0 + n);
    if (dt == SV_STORE_F32) {
        if (H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out) < 0) rc = SV_EINTERNAL;
    } else {
        /* Read the raw 16-bit patterns in the file's own type (no HDF5
         * conversion, whose rounding we do not control) into the upper half
         * of out and widen them in place, front to back: each piece ends
         * before the patterns not yet widened. A staging buffer would be
         * fresh pages on every read, which cost more than the conversion. */
        uint16_t *raw = (uint16_t *)out + cnt;
        hid_t t = H5Dget_type(d);
        if (t < 0 || H5Dread(d, t, ms, fs, H5P_DEFAULT, raw) < 0) rc = SV_EINTERNAL;
        for (size_t i = 0; rc == SV_OK && i < cnt;) {
            size_t b = (cnt - i) / 2; /* floats [i, i+b) end at byte 4(i+b) <= 2cnt + 2i */
            if (b > 65536) b = 65536;
            if (b == 0) b = 1;        /* the last one: read before it is written */
            if (dt == SV_STORE_F16) sv_f16_to_f32_n(raw + i, out + i, b);
            else sv_bf16_to_f32_n(raw + i, out + i, b);
            i += b;
        }
        close_id(t, H5Tclose);
    }
    sv_watch_end();
    H5Sclose(ms);
    H5Sclose(fs);
    if (rc != SV_OK)
        return sv_fail(rc, "%s: %s: read of rows [%lld, %lld) failed", s->path, nm, (long long)t0,
                       (long long)(t0 + n));
    return SV_OK;
}

static sv_rc read_rows(sv_store *s, hid_t d, const char *nm, sv_store_dtype dt, int64_t cols, int64_t t0, int64_t n,
                       float *out)
{
    sv_rc rc = check_range(s, t0, n, nm);
    if (rc != SV_OK) return rc;
    if (d <= 0) return sv_fail(SV_EINTERNAL, "%s: %s: not open", s->path ? s->path : "?", nm);
    int64_t elt = dt == SV_STORE_F32 ? 4 : 2;
    int64_t step = SV_MAX_READ_BYTES / (elt * cols);
    if (step < 1) step = 1;
    for (int64_t i = 0; i < n; i += step) {
        int64_t m = n - i < step ? n - i : step;
        if ((rc = read_rows_once(s, d, nm, dt, cols, t0 + i, m, out + (size_t)i * (size_t)cols)) != SV_OK) return rc;
    }
    return SV_OK;
}

sv_rc sv_store_read_rows(sv_store *s, int64_t t0, int64_t n, float *out)
{
    if (s->dset <= 0) return sv_fail(SV_EINTERNAL, "%s: store is not open", s->path ? s->path : "?");
    return read_rows(s, (hid_t)s->dset, "/activations", s->dtype, s->d_in, t0, n, out);
}

sv_rc sv_store_read_targets(sv_store *s, int64_t t0, int64_t n, float *out)
{
    if (s->d_out <= 0 || s->tgt_dset <= 0) return sv_fail(SV_EINPUT, "%s: /targets: missing", s->path ? s->path : "?");
    return read_rows(s, (hid_t)s->tgt_dset, "/targets", s->tgt_dtype, s->d_out, t0, n, out);
}

sv_rc sv_store_read_token_ids(sv_store *s, int64_t t0, int64_t n, int64_t *out)
{
    if (!s->has_token_ids || s->tok_dset <= 0)
        return sv_fail(SV_EINPUT, "%s: /token_ids: missing", s->path ? s->path : "?");
    sv_rc rc = check_range(s, t0, n, "/token_ids");
    if (rc != SV_OK) return rc;
    int64_t step = SV_MAX_READ_BYTES / 8;
    for (int64_t i = 0; i < n; i += step) {
        int64_t m = n - i < step ? n - i : step;
        hid_t ms = -1, fs = select_rows((hid_t)s->tok_dset, 1, t0 + i, m, 1, &ms);
        if (fs < 0) return sv_fail(SV_EINTERNAL, "%s: /token_ids: cannot select range", s->path);
        sv_watch_begin("reading token ids of", s->path, t0 + i, t0 + i + m);
        herr_t e = H5Dread((hid_t)s->tok_dset, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, out + i);
        sv_watch_end();
        H5Sclose(ms);
        H5Sclose(fs);
        if (e < 0)
            return sv_fail(SV_EINTERNAL, "%s: /token_ids: read of [%lld, %lld) failed", s->path,
                           (long long)(t0 + i), (long long)(t0 + i + m));
    }
    return SV_OK;
}

void sv_store_close(sv_store *s)
{
    /* Handles may be 0 (calloc'ed struct) or -1 (reset); only real ids close.
     * Datasets go first: the MPI-IO driver refuses to close a file with
     * objects still open. */
    close_id((hid_t)s->tok_dset, H5Dclose);
    close_id((hid_t)s->tgt_dset, H5Dclose);
    close_id((hid_t)s->dset, H5Dclose);
    close_id((hid_t)s->file, H5Fclose);
    free(s->path);
    free(s->seq_offsets);
    free(s->special_ids);
    free(s->model_name);
    free(s->hook_name);
    free(s->dataset_name);
    store_reset(s);
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */

/* 16-bit float file types; H5T_IEEE_F16LE does not exist in HDF5 1.10.
 * Fields must shrink before the precision, the precision before the size. */
static hid_t make_half_type(int bf16)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return -1;
    herr_t e = bf16 ? H5Tset_fields(t, 15, 7, 8, 0, 7) : H5Tset_fields(t, 15, 10, 5, 0, 10);
    if (e >= 0) e = H5Tset_precision(t, 16);
    if (e >= 0) e = H5Tset_size(t, 2);
    if (e >= 0) e = H5Tset_ebias(t, bf16 ? 127 : 15);
    if (e < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static herr_t write_str_attr(hid_t obj, const char *name, const char *val, int variable)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    herr_t e = H5Tset_size(t, variable ? H5T_VARIABLE : (strlen(val) ? strlen(val) : 1));
    if (e >= 0) e = H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = (e < 0 || sp < 0) ? -1 : H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) e = -1;
    else e = variable ? H5Awrite(a, t, &val) : H5Awrite(a, t, val);
    close_id(a, H5Aclose);
    close_id(sp, H5Sclose);
    H5Tclose(t);
    return e;
}

static herr_t write_i64_attr(hid_t obj, const char *name, const int64_t *v, hsize_t n, int scalar)
{
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, v);
    close_id(a, H5Aclose);
    H5Sclose(sp);
    return e;
}

static herr_t write_i64_dset(hid_t file, const char *name, const int64_t *v, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    if (sp < 0) return -1;
    /* No object timestamps: the same data gives the same bytes (synth). */
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    if (pl < 0 || H5Pset_obj_track_times(pl, 0) < 0) { close_id(pl, H5Pclose); H5Sclose(sp); return -1; }
    hid_t d = H5Dcreate2(file, name, H5T_STD_I64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    close_id(pl, H5Pclose);
    herr_t e = d < 0 ? -1 : (n ? H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : 0);
    close_id(d, H5Dclose);
    H5Sclose(sp);
    return e;
}

static int64_t clamp64(int64_t v, int64_t hi)
{
    if (v > hi) v = hi;
    return v < 1 ? 1 : v;
}

static herr_t write_activations(hid_t file, const char *name, const float *x, int64_t n_tokens, int64_t d_in,
                                const sv_store_wopts *o)
{
    hsize_t dims[2] = {(hsize_t)n_tokens, (hsize_t)d_in};
    /* A fixed zero-length dimension cannot hold a chunk of >= 1 row. */
    hsize_t maxdims[2] = {n_tokens ? dims[0] : H5S_UNLIMITED, d_in ? dims[1] : H5S_UNLIMITED};
    hid_t ftype = -1, mtype = -1, sp = -1, pl = -1, d = -1;
    void *buf = NULL;
    herr_t e = -1;
    size_t cnt = (size_t)n_tokens * (size_t)d_in;

    switch (o->dtype) {
    case SV_STORE_F32: ftype = H5Tcopy(H5T_IEEE_F32LE); mtype = H5Tcopy(H5T_NATIVE_FLOAT); break;
    case SV_STORE_F16: ftype = make_half_type(0); mtype = H5Tcopy(ftype); break;
    case SV_STORE_BF16: ftype = make_half_type(1); mtype = H5Tcopy(ftype); break;
    case SV_STORE_BF16_U16: ftype = H5Tcopy(H5T_STD_U16LE); mtype = H5Tcopy(H5T_NATIVE_UINT16); break;
    }
    if (ftype < 0 || mtype < 0) goto done;
    if (o->dtype == SV_STORE_F32) {
        buf = (void *)x;
    } else {
        /* Round here with our own code so files match what tests expect. */
        uint16_t *h = malloc((cnt ? cnt : 1) * sizeof(uint16_t));
        if (!h) goto done;
        for (size_t i = 0; i < cnt; i++)
            h[i] = o->dtype == SV_STORE_F16 ? sv_f32_to_f16(x[i]) : sv_f32_to_bf16(x[i]);
        buf = h;
    }
    sp = H5Screate_simple(2, dims, maxdims);
    pl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || pl < 0 || H5Pset_obj_track_times(pl, 0) < 0) goto done;
    if (o->chunked) {
        hsize_t c[2] = {(hsize_t)clamp64(o->chunk_rows, n_tokens), (hsize_t)clamp64(o->chunk_cols, d_in)};
        if (H5Pset_chunk(pl, 2, c) < 0) goto done;
    } else if (n_tokens == 0 || d_in == 0) {
        /* Unlimited dims need chunking; only reachable for error-test files. */
        hsize_t c[2] = {1, 1};
        if (H5Pset_chunk(pl, 2, c) < 0) goto done;
    }
    d = H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (d < 0) goto done;
    e = cnt ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    if (e >= 0 && o->dtype == SV_STORE_BF16_U16) e = write_str_attr(d, "dtype", "bfloat16", 0);
done:
    if (buf && buf != (void *)x) free(buf);
    close_id(d, H5Dclose);
    close_id(pl, H5Pclose);
    close_id(sp, H5Sclose);
    close_id(mtype, H5Tclose);
    close_id(ftype, H5Tclose);
    return e;
}

sv_rc sv_store_write(const char *path, const float *x, int64_t n_tokens, int64_t d_in,
                     const sv_store_wopts *o)
{
    if (n_tokens < 0 || d_in < 0) return sv_fail(SV_EINPUT, "%s: write: negative dimensions", path);
    if (!o->omit_sequences && ((o->seq_offsets != NULL) == (o->context_size > 0)))
        return sv_fail(SV_EINPUT, "%s: write: give exactly one of seq_offsets or context_size", path);
    if (o->n_special < 0 || (o->n_special > 0 && !o->special_ids))
        return sv_fail(SV_EINPUT, "%s: write: bad special_token_ids", path);
    h5_quiet();

    char *tmp = sv_tmp_path(path);
    if (!tmp) return SV_EINTERNAL;

    errno = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: cannot create: %s", tmp, errno ? strerror(errno) : "HDF5 error");
        free(tmp);
        return rc;
    }
    const char *what = "/activations";
    herr_t e = write_activations(f, "/activations", x, n_tokens, d_in, o);
    if (e >= 0 && o->targets) {
        what = "/targets";
        e = write_activations(f, "/targets", o->targets, n_tokens, o->d_out, o);
    }
    if (e >= 0 && o->token_ids) {
        what = "/token_ids";
        e = write_i64_dset(f, "/token_ids", o->token_ids, (hsize_t)n_tokens);
    }
    if (e >= 0 && !o->omit_sequences) {
        if (o->seq_offsets) {
            what = "/sequence_offsets";
            e = write_i64_dset(f, "/sequence_offsets", o->seq_offsets, (hsize_t)(o->n_seq + 1));
        } else {
            what = "attribute context_size";
            e = write_i64_attr(f, "context_size", &o->context_size, 1, 1);
        }
    }
    if (e >= 0 && o->n_special > 0) {
        what = "attribute special_token_ids";
        e = write_i64_attr(f, "special_token_ids", o->special_ids, (hsize_t)o->n_special, 0);
    }
    const char *names[3] = {"model_name", "hook_name", "dataset_name"};
    const char *vals[3] = {o->model_name, o->hook_name, o->dataset_name};
    for (int i = 0; i < 3 && e >= 0; i++)
        if (vals[i]) {
            what = names[i];
            e = write_str_attr(f, names[i], vals[i], 1);
        }
    if (H5Fclose(f) < 0 && e >= 0) {
        what = "close";
        e = -1;
    }
    if (e < 0) {
        remove(tmp);
        free(tmp);
        return sv_fail(SV_EINTERNAL, "%s: write: %s: HDF5 error", path, what);
    }
    sv_rc rc = sv_tmp_commit(tmp, path);
    free(tmp);
    return rc;
}

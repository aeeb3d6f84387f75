/* Zip reading on top of libzip (see zipfile.h). Messages name the archive
 * and the entry; libzip's own reason is appended. */
#include "saeval/zipfile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

struct sv_zip {
    zip_t *za;
    char *name;
    int64_t n;
    sv_zip_entry *e;
    sv_zip_entry **sorted; /* by name, for lookup */
};

struct sv_zip_stream {
    sv_zip *z;
    const sv_zip_entry *e;
    zip_file_t *zf;
    uint64_t pos;
};

/* Deflate cannot expand by more than about 1032:1; a larger declared size
 * is an inconsistent (or hostile) directory entry. */
#define SV_ZIP_MAX_RATIO 1100u

const char *sv_zip_name(const sv_zip *z) { return z->name; }
int64_t sv_zip_count(const sv_zip *z) { return z->n; }
const sv_zip_entry *sv_zip_entry_at(const sv_zip *z, int64_t i)
{
    return i >= 0 && i < z->n ? &z->e[i] : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    const sv_zip_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

const sv_zip_entry *sv_zip_find(const sv_zip *z, const char *name)
{
    int64_t lo = 0, hi = z->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->sorted[mid]->name, name);
        if (c == 0) return z->sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void sv_zip_close(sv_zip *z)
{
    if (!z) return;
    if (z->za) zip_discard(z->za);
    for (int64_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    free(z->sorted);
    free(z->name);
    free(z);
}

/* Build the entry table from the central directory. */
static sv_rc scan(sv_zip *z)
{
    zip_int64_t n = zip_get_num_entries(z->za, 0);
    if (n < 0) return sv_fail(SV_EINPUT, "%s: cannot list zip entries", z->name);
    if (n > SV_ZIP_MAX_ENTRIES)
        return sv_fail(SV_EINPUT, "%s: %lld zip entries (more than %d)", z->name, (long long)n,
                       SV_ZIP_MAX_ENTRIES);
    z->e = sv_calloc((size_t)n, sizeof *z->e);
    z->sorted = sv_calloc((size_t)n, sizeof *z->sorted);
    if (!z->e || !z->sorted) return SV_EINTERNAL;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(z->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0)
            return sv_fail(SV_EINPUT, "%s: zip entry %lld: %s", z->name, (long long)i,
                           zip_strerror(z->za));
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
        if ((st.valid & need) != need || !st.name)
            return sv_fail(SV_EINPUT, "%s: zip entry %lld: incomplete directory record", z->name, (long long)i);
        sv_zip_entry *e = &z->e[z->n];
        e->name = sv_strdup(st.name);
        if (!e->name) return SV_EINTERNAL;
        z->n++;
        e->index = i;
        e->size = st.size;
        e->comp_size = st.comp_size;
        if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
            return sv_fail(SV_EINPUT, "%s: zip entry '%s': encrypted entries are not supported", z->name, e->name);
        if (st.comp_method == ZIP_CM_STORE) {
            e->deflated = 0;
            if (st.size != st.comp_size)
                return sv_fail(SV_EINPUT, "%s: zip entry '%s': stored entry with size %llu but compressed size %llu",
                               z->name, e->name, (unsigned long long)st.size, (unsigned long long)st.comp_size);
        } else if (st.comp_method == ZIP_CM_DEFLATE) {
            e->deflated = 1;
            if (st.size / SV_ZIP_MAX_RATIO > st.comp_size + 64)
                return sv_fail(SV_EINPUT, "%s: zip entry '%s': declared size %llu impossible for %llu deflated bytes",
                               z->name, e->name, (unsigned long long)st.size, (unsigned long long)st.comp_size);
        } else {
            return sv_fail(SV_EINPUT, "%s: zip entry '%s': compression method %u (only stored and deflated are supported)",
                           z->name, e->name, (unsigned)st.comp_method);
        }
        z->sorted[i] = e;
    }
    qsort(z->sorted, (size_t)z->n, sizeof *z->sorted, cmp_entry);
    for (int64_t i = 1; i < z->n; i++)
        if (strcmp(z->sorted[i - 1]->name, z->sorted[i]->name) == 0)
            return sv_fail(SV_EINPUT, "%s: zip entry '%s' appears twice", z->name, z->sorted[i]->name);
    return SV_OK;
}

static sv_rc finish_open(sv_zip *z, sv_zip **out)
{
    sv_rc rc = scan(z);
    if (rc != SV_OK) {
        sv_zip_close(z);
        return rc;
    }
    *out = z;
    return SV_OK;
}

static sv_rc open_error(sv_zip *z, zip_error_t *ze)
{
    sv_rc rc = sv_fail(SV_EINPUT, "%s: not a readable zip archive: %s", z->name, zip_error_strerror(ze));
    zip_error_fini(ze);
    sv_zip_close(z);
    return rc;
}

sv_rc sv_zip_open(sv_zip **out, const char *path)
{
    *out = NULL;
    sv_zip *z = sv_calloc(1, sizeof *z);
    if (!z) return SV_EINTERNAL;
    if (!(z->name = sv_strdup(path))) { free(z); return SV_EINTERNAL; }
    /* libzip opens an empty file as an empty archive; a zip has at least
     * its 22-byte end record. */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < 22) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: not a readable zip archive: %lld bytes", path, (long long)sb.st_size);
        sv_zip_close(z);
        return rc;
    }
    int err = 0;
    z->za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!z->za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        return open_error(z, &ze);
    }
    return finish_open(z, out);
}

sv_rc sv_zip_open_mem(sv_zip **out, const void *buf, size_t len, const char *name)
{
    *out = NULL;
    sv_zip *z = sv_calloc(1, sizeof *z);
    if (!z) return SV_EINTERNAL;
    if (!(z->name = sv_strdup(name))) { free(z); return SV_EINTERNAL; }
    if (len < 22) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: not a readable zip archive: %zu bytes", name, len);
        sv_zip_close(z);
        return rc;
    }
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(len ? buf : "", len, 0, &ze);
    if (!src) return open_error(z, &ze);
    z->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!z->za) {
        zip_source_free(src);
        return open_error(z, &ze);
    }
    zip_error_fini(&ze);
    return finish_open(z, out);
}

/* ---------------------------------------------------------------- streams */

sv_rc sv_zip_stream_open(sv_zip *z, const sv_zip_entry *e, sv_zip_stream **out)
{
    *out = NULL;
    sv_zip_stream *s = sv_calloc(1, sizeof *s);
    if (!s) return SV_EINTERNAL;
    s->z = z;
    s->e = e;
    s->zf = zip_fopen_index(z->za, (zip_uint64_t)e->index, 0);
    if (!s->zf) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: zip entry '%s': cannot open: %s", z->name, e->name, zip_strerror(z->za));
        free(s);
        return rc;
    }
    *out = s;
    return SV_OK;
}

sv_rc sv_zip_stream_read(sv_zip_stream *s, void *buf, size_t n)
{
    if (n > s->e->size - s->pos)
        return sv_fail(SV_EINPUT, "%s: zip entry '%s': read of %zu bytes at %llu past its size %llu",
                       s->z->name, s->e->name, n, (unsigned long long)s->pos, (unsigned long long)s->e->size);
    char *p = buf;
    while (n > 0) {
        zip_int64_t got = zip_fread(s->zf, p, n);
        if (got < 0)
            return sv_fail(SV_EINPUT, "%s: zip entry '%s': %s", s->z->name, s->e->name, zip_file_strerror(s->zf));
        if (got == 0)
            return sv_fail(SV_EINPUT, "%s: zip entry '%s': data ends at byte %llu of %llu (truncated)",
                           s->z->name, s->e->name, (unsigned long long)s->pos, (unsigned long long)s->e->size);
        p += got;
        n -= (size_t)got;
        s->pos += (uint64_t)got;
    }
    return SV_OK;
}

sv_rc sv_zip_stream_skip(sv_zip_stream *s, uint64_t n)
{
    char tmp[16384];
    while (n > 0) {
        size_t m = n < sizeof tmp ? (size_t)n : sizeof tmp;
        sv_rc rc = sv_zip_stream_read(s, tmp, m);
        if (rc != SV_OK) return rc;
        n -= m;
    }
    return SV_OK;
}

sv_rc sv_zip_stream_close(sv_zip_stream *s, int check)
{
    if (!s) return SV_OK;
    sv_rc rc = SV_OK;
    if (check) {
        /* Reading to the end makes libzip compare the CRC. */
        if ((rc = sv_zip_stream_skip(s, s->e->size - s->pos)) == SV_OK) {
            char extra;
            zip_int64_t got = zip_fread(s->zf, &extra, 1);
            if (got < 0)
                rc = sv_fail(SV_EINPUT, "%s: zip entry '%s': %s", s->z->name, s->e->name, zip_file_strerror(s->zf));
            else if (got > 0)
                rc = sv_fail(SV_EINPUT, "%s: zip entry '%s': data longer than its declared size %llu",
                             s->z->name, s->e->name, (unsigned long long)s->e->size);
        }
    }
    int err = zip_fclose(s->zf);
    if (check && rc == SV_OK && err != 0) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        rc = sv_fail(SV_EINPUT, "%s: zip entry '%s': %s", s->z->name, s->e->name, zip_error_strerror(&ze));
        zip_error_fini(&ze);
    }
    free(s);
    return rc;
}

sv_rc sv_zip_read(sv_zip *z, const sv_zip_entry *e, uint64_t max_size, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    if (e->size > max_size || e->size >= SIZE_MAX)
        return sv_fail(SV_EINPUT, "%s: zip entry '%s': %llu bytes (at most %llu accepted)", z->name, e->name,
                       (unsigned long long)e->size, (unsigned long long)max_size);
    char *buf = sv_malloc((size_t)e->size + 1);
    if (!buf) return SV_EINTERNAL;
    sv_zip_stream *s;
    sv_rc rc = sv_zip_stream_open(z, e, &s);
    if (rc == SV_OK) {
        rc = sv_zip_stream_read(s, buf, (size_t)e->size);
        sv_rc rc2 = sv_zip_stream_close(s, rc == SV_OK);
        if (rc == SV_OK) rc = rc2;
    }
    if (rc != SV_OK) {
        free(buf);
        return rc;
    }
    buf[e->size] = '\0';
    *out = buf;
    if (len) *len = (size_t)e->size;
    return SV_OK;
}

/* ------------------------------------------------------- raw float reading */

#include "saeval/half.h"

size_t sv_dtype_size(sv_dtype d)
{
    static const size_t sz[] = {4, 2, 2, 8};
    return (unsigned)d < 4 ? sz[d] : 0;
}

void sv_raw_to_f32(sv_dtype d, const void *raw, size_t n, float *out)
{
    switch (d) {
    case SV_DT_F32: memcpy(out, raw, n * 4); break;
    case SV_DT_F16: sv_f16_to_f32_n(raw, out, n); break;
    case SV_DT_BF16: sv_bf16_to_f32_n(raw, out, n); break;
    case SV_DT_F64: {
        const unsigned char *p = raw;
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    }
    }
}

void sv_raw_to_f64(sv_dtype d, const void *raw, size_t n, double *out)
{
    if (d == SV_DT_F64) {
        memcpy(out, raw, n * 8);
        return;
    }
    float tmp[1024];
    const unsigned char *p = raw;
    size_t isz = sv_dtype_size(d);
    for (size_t i = 0; i < n; i += 1024) {
        size_t m = n - i < 1024 ? n - i : 1024;
        sv_raw_to_f32(d, p + i * isz, m, tmp);
        for (size_t k = 0; k < m; k++) out[i + k] = tmp[k];
    }
}

#define SV_ZIP_CHUNK (1u << 16)

sv_rc sv_zip_read_floats(sv_zip *z, const sv_zip_entry *e, uint64_t offset, sv_dtype d,
                         size_t n, float *out_f, double *out_d)
{
    size_t isz = sv_dtype_size(d);
    if (!isz) return sv_fail(SV_EINTERNAL, "%s: zip entry '%s': bad dtype", z->name, e->name);
    if (offset > e->size || n > (e->size - offset) / isz)
        return sv_fail(SV_EINPUT, "%s: zip entry '%s': %zu values of %zu bytes at byte %llu exceed its %llu bytes",
                       z->name, e->name, n, isz, (unsigned long long)offset, (unsigned long long)e->size);
    sv_zip_stream *s;
    sv_rc rc = sv_zip_stream_open(z, e, &s);
    if (rc != SV_OK) return rc;
    unsigned char *raw = NULL;
    if ((rc = sv_zip_stream_skip(s, offset)) != SV_OK) goto out;
    /* Same type: straight into the output. */
    if ((out_f && d == SV_DT_F32) || (out_d && d == SV_DT_F64)) {
        rc = sv_zip_stream_read(s, out_f ? (void *)out_f : (void *)out_d, n * isz);
        goto out;
    }
    raw = sv_malloc((size_t)SV_ZIP_CHUNK * 8);
    if (!raw) { rc = SV_EINTERNAL; goto out; }
    for (size_t i = 0; i < n; i += SV_ZIP_CHUNK) {
        size_t m = n - i < SV_ZIP_CHUNK ? n - i : SV_ZIP_CHUNK;
        if ((rc = sv_zip_stream_read(s, raw, m * isz)) != SV_OK) goto out;
        if (out_f) sv_raw_to_f32(d, raw, m, out_f + i);
        else sv_raw_to_f64(d, raw, m, out_d + i);
    }
out:
    free(raw);
    {
        /* Reads that reach the end of the entry also check its CRC. */
        int whole = rc == SV_OK && offset + n * isz == e->size;
        sv_rc rc2 = sv_zip_stream_close(s, whole);
        if (rc == SV_OK) rc = rc2;
    }
    return rc;
}

sv_rc sv_zip_read_raw(sv_zip *z, const sv_zip_entry *e, uint64_t offset, void *out, size_t n)
{
    if (offset > e->size || n > e->size - offset)
        return sv_fail(SV_EINPUT, "%s: zip entry '%s': %zu bytes at byte %llu exceed its %llu bytes", z->name,
                       e->name, n, (unsigned long long)offset, (unsigned long long)e->size);
    sv_zip_stream *s;
    sv_rc rc = sv_zip_stream_open(z, e, &s);
    if (rc != SV_OK) return rc;
    if ((rc = sv_zip_stream_skip(s, offset)) == SV_OK) rc = sv_zip_stream_read(s, out, n);
    sv_rc rc2 = sv_zip_stream_close(s, rc == SV_OK && offset + n == e->size);
    return rc != SV_OK ? rc : rc2;
}

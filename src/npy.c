/* .npy header parser and .npz reader (see npy.h). The header dict is a
 * Python literal from an untrusted file: it is parsed by a small grammar
 * (strings, True/False, tuples of integers) and nothing is evaluated. */
#include "saeval/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t sv_npy_dim(const sv_npy_header *h, int i)
{
    return i >= 0 && i < h->ndim ? h->shape[i] : 1;
}

typedef struct {
    const char *p, *end;
    const char *what;
} lex;

static void skip_ws(lex *l)
{
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t')) l->p++;
}

static int eat(lex *l, char c)
{
    skip_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes; copies at most cap-1 bytes. */
static int str_lit(lex *l, char *out, size_t cap)
{
    skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return 0;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return 0;
    l->p++;
    out[n] = '\0';
    return 1;
}

static int word(lex *l, const char *w)
{
    skip_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
        l->p += n;
        return 1;
    }
    return 0;
}

static sv_rc bad(const lex *l, const char *field, const char *why)
{
    return sv_fail(SV_EINPUT, "%s: npy header: field '%s': %s", l->what, field, why);
}

static sv_rc parse_shape(lex *l, sv_npy_header *h)
{
    if (!eat(l, '(')) return bad(l, "shape", "expected a tuple");
    h->ndim = 0;
    for (;;) {
        if (eat(l, ')')) return SV_OK;
        skip_ws(l);
        if (l->p >= l->end || *l->p < '0' || *l->p > '9')
            return bad(l, "shape", "expected a non-negative integer");
        int64_t v = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            int dgt = *l->p++ - '0';
            if (v > (INT64_MAX - dgt) / 10) return bad(l, "shape", "dimension too large");
            v = v * 10 + dgt;
        }
        if (l->p < l->end && *l->p == 'L') l->p++; /* Python 2 long */
        if (h->ndim >= SV_ST_MAXDIM) return bad(l, "shape", "more than 8 dimensions");
        h->shape[h->ndim++] = v;
        if (eat(l, ')')) return SV_OK;
        if (!eat(l, ',')) return bad(l, "shape", "expected ',' or ')'");
    }
}

static const struct {
    const char *code;
    sv_dtype dt;
} descr_table[] = {{"f2", SV_DT_F16}, {"f4", SV_DT_F32}, {"f8", SV_DT_F64}};

static sv_rc parse_descr(lex *l, sv_npy_header *h)
{
    char d[32];
    if (!str_lit(l, d, sizeof d)) {
        skip_ws(l);
        if (l->p < l->end && *l->p == '[')
            return bad(l, "descr", "structured dtypes are not supported (need <f2, <f4 or <f8)");
        return bad(l, "descr", "expected a dtype string");
    }
    char order = d[0];
    if (order == '>') return sv_fail(SV_EINPUT, "%s: npy header: field 'descr': '%s' is big-endian (need <f2, <f4 or <f8)", l->what, d);
    if (strcmp(d, "<V2") == 0 || strcmp(d, "|V2") == 0)
        return sv_fail(SV_EINPUT, "%s: npy header: field 'descr': '%s' is a raw 2-byte type (how NumPy saves ml_dtypes bfloat16); "
                       "it cannot be told apart from other 2-byte types: save as float32", l->what, d);
    if (order == '<' || order == '=' || order == '|')
        for (size_t i = 0; i < sizeof descr_table / sizeof descr_table[0]; i++)
            if (strcmp(d + 1, descr_table[i].code) == 0) {
                h->dtype = descr_table[i].dt;
                return SV_OK;
            }
    return sv_fail(SV_EINPUT, "%s: npy header: field 'descr': dtype '%s' is not supported (need <f2, <f4 or <f8)", l->what, d);
}

sv_rc sv_npy_parse_header(const void *buf, size_t n, uint64_t total_size, const char *what,
                          sv_npy_header *h)
{
    memset(h, 0, sizeof *h);
    const unsigned char *b = buf;
    if (n < 10 || total_size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return sv_fail(SV_EINPUT, "%s: not a .npy file (bad magic)", what);
    unsigned major = b[6], minor = b[7];
    uint64_t hlen, hstart;
    if (major == 1) {
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) return sv_fail(SV_EINPUT, "%s: npy header: truncated", what);
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        hstart = 12;
    } else {
        return sv_fail(SV_EINPUT, "%s: npy header: version %u.%u (need 1.0, 2.0 or 3.0)", what, major, minor);
    }
    if (minor != 0) return sv_fail(SV_EINPUT, "%s: npy header: version %u.%u (need 1.0, 2.0 or 3.0)", what, major, minor);
    if (hlen > SV_NPY_MAX_HEADER)
        return sv_fail(SV_EINPUT, "%s: npy header: length %llu (at most %d)", what, (unsigned long long)hlen, SV_NPY_MAX_HEADER);
    if (hstart + hlen > total_size || hstart + hlen > n)
        return sv_fail(SV_EINPUT, "%s: npy header: length %llu runs past the end of the data (truncated)", what,
                       (unsigned long long)hlen);
    h->version = (int)major;
    h->data_offset = hstart + hlen;

    const char *txt = (const char *)b + hstart;
    if (hlen == 0 || txt[hlen - 1] != '\n')
        return sv_fail(SV_EINPUT, "%s: npy header: does not end with a newline", what);
    for (uint64_t i = 0; i + 1 < hlen; i++)
        if ((unsigned char)txt[i] < 0x20 || (unsigned char)txt[i] > 0x7e)
            return sv_fail(SV_EINPUT, "%s: npy header: byte %llu is not printable ASCII", what, (unsigned long long)i);
    lex l = {txt, txt + hlen - 1, what};

    if (!eat(&l, '{')) return sv_fail(SV_EINPUT, "%s: npy header: not a dict literal", what);
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    sv_rc rc;
    for (;;) {
        if (eat(&l, '}')) break;
        char key[32];
        if (!str_lit(&l, key, sizeof key))
            return sv_fail(SV_EINPUT, "%s: npy header: expected a quoted key", what);
        if (!eat(&l, ':')) return bad(&l, key, "expected ':'");
        if (strcmp(key, "descr") == 0) {
            if (seen_descr++) return bad(&l, key, "appears twice");
            if ((rc = parse_descr(&l, h)) != SV_OK) return rc;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (seen_fortran++) return bad(&l, key, "appears twice");
            if (word(&l, "True"))
                return bad(&l, key, "True (column-major data) is not supported: save a C-ordered array (np.ascontiguousarray)");
            if (!word(&l, "False")) return bad(&l, key, "expected True or False");
        } else if (strcmp(key, "shape") == 0) {
            if (seen_shape++) return bad(&l, key, "appears twice");
            if ((rc = parse_shape(&l, h)) != SV_OK) return rc;
        } else {
            return bad(&l, key, "unknown key");
        }
        if (eat(&l, '}')) break;
        if (!eat(&l, ',')) return sv_fail(SV_EINPUT, "%s: npy header: expected ',' or '}' after '%s'", what, key);
    }
    skip_ws(&l);
    if (l.p != l.end) return sv_fail(SV_EINPUT, "%s: npy header: junk after the dict", what);
    if (!seen_descr) return bad(&l, "descr", "missing");
    if (!seen_fortran) return bad(&l, "fortran_order", "missing");
    if (!seen_shape) return bad(&l, "shape", "missing");

    uint64_t isz = sv_dtype_size(h->dtype), numel = 1;
    for (int i = 0; i < h->ndim; i++) {
        uint64_t d = (uint64_t)h->shape[i];
        if (d != 0 && numel > UINT64_MAX / d / isz) return bad(&l, "shape", "size overflows");
        numel *= d;
    }
    h->numel = numel;
    h->data_bytes = numel * isz;
    if (total_size - h->data_offset != h->data_bytes)
        return sv_fail(SV_EINPUT, "%s: npy data: %llu bytes, but shape and dtype need %llu%s", what,
                       (unsigned long long)(total_size - h->data_offset), (unsigned long long)h->data_bytes,
                       total_size - h->data_offset < h->data_bytes ? " (truncated)" : "");
    return SV_OK;
}

/* ------------------------------------------------------------------- npz */

void sv_npz_close(sv_npz *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->a[i].name);
    free(f->a);
    free(f->path);
    sv_zip_close(f->z);
    memset(f, 0, sizeof *f);
}

const sv_npz_array *sv_npz_find(const sv_npz *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->a[i].name, name) == 0) return &f->a[i];
    return NULL;
}

static sv_rc npz_scan(sv_npz *f)
{
    int64_t n = sv_zip_count(f->z);
    if (n == 0) return sv_fail(SV_EINPUT, "%s: npz archive holds no arrays", f->path);
    f->a = sv_calloc((size_t)n, sizeof *f->a);
    if (!f->a) return SV_EINTERNAL;
    unsigned char head[12 + SV_NPY_MAX_HEADER];
    for (int64_t i = 0; i < n; i++) {
        const sv_zip_entry *e = sv_zip_entry_at(f->z, i);
        size_t len = strlen(e->name);
        if (len < 5 || strcmp(e->name + len - 4, ".npy") != 0)
            return sv_fail(SV_EINPUT, "%s: npz member '%s' is not a .npy file", f->path, e->name);
        sv_npz_array *a = &f->a[f->n];
        if (!(a->name = sv_malloc(len - 3))) return SV_EINTERNAL;
        memcpy(a->name, e->name, len - 4);
        a->name[len - 4] = '\0';
        a->entry = e;
        f->n++;
        /* The header: the fixed part, then the length it announces. */
        size_t want = e->size < 12 ? (size_t)e->size : 12;
        char what[512];
        snprintf(what, sizeof what, "%s: array '%s'", f->path, a->name);
        sv_zip_stream *s;
        sv_rc rc = sv_zip_stream_open(f->z, e, &s);
        if (rc != SV_OK) return rc;
        rc = sv_zip_stream_read(s, head, want);
        if (rc == SV_OK && want >= 10 && memcmp(head, "\x93NUMPY", 6) == 0) {
            uint64_t hl = head[6] == 1 ? (uint64_t)head[8] | (uint64_t)head[9] << 8
                                       : (want < 12 ? 0 : (uint64_t)head[8] | (uint64_t)head[9] << 8 |
                                                              (uint64_t)head[10] << 16 | (uint64_t)head[11] << 24);
            uint64_t hs = head[6] == 1 ? 10 : 12;
            if (hl <= SV_NPY_MAX_HEADER && hs + hl <= e->size && hs + hl > want) {
                rc = sv_zip_stream_read(s, head + want, (size_t)(hs + hl - want));
                want = (size_t)(hs + hl);
            }
        }
        sv_zip_stream_close(s, 0);
        if (rc != SV_OK) return rc;
        if ((rc = sv_npy_parse_header(head, want, e->size, what, &a->h)) != SV_OK) return rc;
    }
    return SV_OK;
}

static sv_rc npz_finish(sv_npz *f, sv_rc rc)
{
    if (rc == SV_OK) rc = npz_scan(f);
    if (rc != SV_OK) sv_npz_close(f);
    return rc;
}

sv_rc sv_npz_open(sv_npz *f, const char *path)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = sv_strdup(path))) return SV_EINTERNAL;
    return npz_finish(f, sv_zip_open(&f->z, path));
}

sv_rc sv_npz_open_mem(sv_npz *f, const void *buf, size_t len, const char *name)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = sv_strdup(name))) return SV_EINTERNAL;
    return npz_finish(f, sv_zip_open_mem(&f->z, buf, len, name));
}

sv_rc sv_npz_read_f32(sv_npz *f, const sv_npz_array *a, float *out)
{
    return sv_zip_read_floats(f->z, a->entry, a->h.data_offset, a->h.dtype, (size_t)a->h.numel, out, NULL);
}

sv_rc sv_npz_read_f64(sv_npz *f, const sv_npz_array *a, double *out)
{
    return sv_zip_read_floats(f->z, a->entry, a->h.data_offset, a->h.dtype, (size_t)a->h.numel, NULL, out);
}

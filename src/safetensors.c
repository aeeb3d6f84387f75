/* safetensors reader and writer.
 *
 * The header is untrusted input (and the fuzzer's entry point), so every
 * field is validated before anything is sized or read from it. The host is
 * assumed little-endian (x86_64), like the format. */
#include "saeval/safetensors.h"
#include "saeval/half.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SV_ST_MAX_HEADER (100u * 1000u * 1000u)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define SV_ST_MAX_INT 9007199254740992.0

static const char *dtype_names[] = {"F32", "F16", "BF16", "F64"};
static const size_t dtype_sizes[] = {4, 2, 2, 8};

const char *sv_dtype_name(sv_dtype d)
{
    return (unsigned)d < 4 ? dtype_names[d] : "?";
}

int64_t sv_st_numel(const sv_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

const sv_st_tensor *sv_st_find(const sv_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

void sv_st_close(sv_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- parsing */

/* A JSON number that is a non-negative integer exactly representable. */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d >= SV_ST_MAX_INT || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_begin(const void *a, const void *b)
{
    const sv_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b)
{
    const sv_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Fill one tensor from its JSON entry; messages name the file and tensor. */
static sv_rc parse_entry(sv_st_tensor *t, const cJSON *e, uint64_t data_size,
                         const char *path)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return sv_fail(SV_EINPUT, "%s: tensor '%s': entry is not a JSON object", path, nm);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!dt) return sv_fail(SV_EINPUT, "%s: tensor '%s': dtype: missing", path, nm);
    if (!cJSON_IsString(dt))
        return sv_fail(SV_EINPUT, "%s: tensor '%s': dtype: not a string", path, nm);
    int found = 0;
    for (int k = 0; k < 4; k++)
        if (strcmp(dt->valuestring, dtype_names[k]) == 0) { t->dtype = (sv_dtype)k; found = 1; }
    if (!found)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': dtype: unsupported dtype '%.32s' (want F32, F16, BF16 or F64)",
                       path, nm, dt->valuestring);

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return sv_fail(SV_EINPUT, "%s: tensor '%s': shape: missing or not an array", path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > SV_ST_MAXDIM)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': shape: %d dimensions, at most %d supported",
                       path, nm, nd, SV_ST_MAXDIM);
    t->ndim = nd;
    uint64_t numel = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        uint64_t v;
        if (!json_uint(d, &v))
            return sv_fail(SV_EINPUT, "%s: tensor '%s': shape: dimension %d is not a non-negative integer (below 2^53)",
                           path, nm, i);
        t->shape[i++] = (int64_t)v;
        /* numel*itemsize must fit in int64 as well, hence the /8 margin. */
        if (v != 0 && numel > (uint64_t)INT64_MAX / 8 / v)
            return sv_fail(SV_EINPUT, "%s: tensor '%s': shape: element count overflows", path, nm);
        numel *= v;
    }

    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !json_uint(of->child, &t->begin) || !json_uint(of->child->next, &t->end))
        return sv_fail(SV_EINPUT, "%s: tensor '%s': data_offsets: must be 2 non-negative integers",
                       path, nm);
    if (t->begin > t->end)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': data_offsets: begin %llu > end %llu", path, nm,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': data_offsets: end %llu is out of range (data block is %llu bytes)",
                       path, nm, (unsigned long long)t->end, (unsigned long long)data_size);
    uint64_t want = numel * dtype_sizes[t->dtype];
    if (t->end - t->begin != want)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': data_offsets: size %llu bytes does not match shape (%llu x %s = %llu bytes)",
                       path, nm, (unsigned long long)(t->end - t->begin), (unsigned long long)numel,
                       dtype_names[t->dtype], (unsigned long long)want);
    return SV_OK;
}

sv_rc sv_st_parse_header(sv_st_file *f, const char *json, size_t n,
                         uint64_t data_size, const char *path)
{
    memset(f, 0, sizeof *f);
    if (!path) path = "(safetensors)";
    if (!json) n = 0;

    /* The reference writer pads with spaces; anything else trailing is junk. */
    cJSON *root = sv_json_parse_exact(json, n);
    if (!root) return sv_fail(SV_EINPUT, "%s: header is not valid JSON", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sv_fail(SV_EINPUT, "%s: header is not a JSON object", path);
    }

    sv_rc rc = SV_OK;
    sv_st_tensor **byname = NULL;
    int cap = cJSON_GetArraySize(root);
    f->t = sv_calloc((size_t)cap, sizeof *f->t);
    if (!f->t) { rc = SV_EINTERNAL; goto out; }

    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (e->string && strcmp(e->string, "__metadata__") == 0) continue;
        sv_st_tensor *t = &f->t[f->n];
        t->name = sv_strdup(e->string ? e->string : "");
        if (!t->name) { rc = SV_EINTERNAL; goto out; }
        f->n++;
        if ((rc = parse_entry(t, e, data_size, path)) != SV_OK) goto out;
    }

    /* Duplicate names would make lookups ambiguous. */
    if (f->n > 1) {
        byname = sv_malloc((size_t)f->n * sizeof *byname);
        if (!byname) { rc = SV_EINTERNAL; goto out; }
        for (int i = 0; i < f->n; i++) byname[i] = &f->t[i];
        qsort(byname, (size_t)f->n, sizeof *byname, cmp_name);
        for (int i = 1; i < f->n; i++)
            if (strcmp(byname[i - 1]->name, byname[i]->name) == 0) {
                rc = sv_fail(SV_EINPUT, "%s: tensor '%s': duplicate tensor name", path, byname[i]->name);
                goto out;
            }
    }

    /* Sorted by offset, each tensor must start at or after the previous end.
     * Empty tensors occupy no bytes and cannot overlap anything. */
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_begin);
    f->data_start = 8 + (uint64_t)n;
    f->file_size = f->data_start + data_size;
    uint64_t prev_end = 0;
    const char *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const sv_st_tensor *t = &f->t[i];
        if (t->begin == t->end) continue;
        if (prev && t->begin < prev_end) {
            rc = sv_fail(SV_EINPUT, "%s: tensor '%s': data_offsets: overlaps tensor '%s'",
                         path, t->name, prev);
            goto out;
        }
        prev_end = t->end;
        prev = t->name;
    }

out:
    free(byname);
    cJSON_Delete(root);
    if (rc != SV_OK) sv_st_close(f);
    return rc;
}

/* Read exactly n bytes at off, looping over short reads. */
static sv_rc pread_all(int fd, void *dst, size_t n, uint64_t off, const char *path)
{
    char *p = dst;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return sv_fail(SV_EINTERNAL, "%s: read error: %s", path, strerror(errno));
        }
        if (r == 0) return sv_fail(SV_EINPUT, "%s: unexpected end of file", path);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return SV_OK;
}

sv_rc sv_st_open(sv_st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));

    sv_rc rc;
    char *hdr = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = sv_fail(SV_EINTERNAL, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8) {
        rc = sv_fail(SV_EINPUT, "%s: file too short (%llu bytes) to be safetensors",
                     path, (unsigned long long)size);
        goto out;
    }
    unsigned char lenb[8];
    if ((rc = pread_all(fd, lenb, 8, 0, path)) != SV_OK) goto out;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | lenb[i];
    if (hn > size - 8 || hn > SV_ST_MAX_HEADER) {
        rc = sv_fail(SV_EINPUT, "%s: header length %llu is invalid (file is %llu bytes, limit %u)",
                     path, (unsigned long long)hn, (unsigned long long)size, SV_ST_MAX_HEADER);
        goto out;
    }
    hdr = sv_malloc((size_t)hn);
    if (!hdr) { rc = SV_EINTERNAL; goto out; }
    if ((rc = pread_all(fd, hdr, (size_t)hn, 8, path)) != SV_OK) goto out;
    if ((rc = sv_st_parse_header(f, hdr, (size_t)hn, size - 8 - hn, path)) != SV_OK) goto out;
    f->path = sv_strdup(path);
    if (!f->path) { rc = SV_EINTERNAL; sv_st_close(f); goto out; }
    f->file_size = size;
    f->data_start = 8 + hn;
out:
    free(hdr);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- reading */

#define CHUNK_ELEMS (1u << 16)

/* Read tensor t converting to float (out_f) or double (out_d). Raw bytes
 * are read in chunks so a conversion never needs a full-size copy. */
static sv_rc read_conv(const sv_st_file *f, const sv_st_tensor *t, float *out_f, double *out_d)
{
    size_t numel = (size_t)sv_st_numel(t);
    size_t isz = dtype_sizes[t->dtype];
    if (numel == 0) return SV_OK;
    if (!f->path) return sv_fail(SV_EINTERNAL, "safetensors: read from a file that was not opened");

    int fd = open(f->path, O_RDONLY);
    if (fd < 0) return sv_fail(SV_EINPUT, "%s: cannot open: %s", f->path, strerror(errno));
    uint64_t base = f->data_start + t->begin;
    sv_rc rc = SV_OK;

    /* Same-type reads go straight into the output. */
    if ((out_f && t->dtype == SV_DT_F32) || (out_d && t->dtype == SV_DT_F64)) {
        rc = pread_all(fd, out_f ? (void *)out_f : (void *)out_d, numel * isz, base, f->path);
        close(fd);
        return rc;
    }

    size_t cn = numel < CHUNK_ELEMS ? numel : CHUNK_ELEMS;
    void *raw = sv_malloc(cn * 8);
    float *tmp = sv_malloc(cn * sizeof(float));
    if (!raw || !tmp) { rc = SV_EINTERNAL; goto out; }
    for (size_t i = 0; i < numel; i += cn) {
        size_t m = numel - i < cn ? numel - i : cn;
        if ((rc = pread_all(fd, raw, m * isz, base + i * isz, f->path)) != SV_OK) goto out;
        switch (t->dtype) {
        case SV_DT_F32: memcpy(tmp, raw, m * 4); break;
        case SV_DT_F16: sv_f16_to_f32_n(raw, tmp, m); break;
        case SV_DT_BF16: sv_bf16_to_f32_n(raw, tmp, m); break;
        case SV_DT_F64: {
            const double *s = raw;
            if (out_f) for (size_t k = 0; k < m; k++) out_f[i + k] = (float)s[k];
            continue;
        }
        }
        if (out_f) memcpy(out_f + i, tmp, m * sizeof(float));
        else for (size_t k = 0; k < m; k++) out_d[i + k] = tmp[k];
    }
out:
    free(raw);
    free(tmp);
    close(fd);
    return rc;
}

sv_rc sv_st_read_f32(const sv_st_file *f, const sv_st_tensor *t, float *out)
{
    return read_conv(f, t, out, NULL);
}

sv_rc sv_st_read_f64(const sv_st_file *f, const sv_st_tensor *t, double *out)
{
    return read_conv(f, t, NULL, out);
}

/* ---------------------------------------------------------------- writing */

typedef struct { char *p; size_t len, cap; int oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_str(b, tmp);
}

/* JSON string literal with the escapes JSON requires. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_add(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_str(b, e);
        } else {
            sb_add(b, (const char *)&c, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static sv_rc write_data(FILE *fp, const sv_st_wtensor *w, size_t numel, const char *tmp)
{
    size_t isz = dtype_sizes[w->dtype];
    size_t cn = numel < CHUNK_ELEMS ? numel : CHUNK_ELEMS;
    unsigned char *raw = sv_malloc(cn * isz);
    if (!raw) return SV_EINTERNAL;
    for (size_t i = 0; i < numel; i += cn) {
        size_t m = numel - i < cn ? numel - i : cn;
        const double *s = w->data + i;
        for (size_t k = 0; k < m; k++) {
            switch (w->dtype) {
            case SV_DT_F32: { float v = (float)s[k]; memcpy(raw + 4 * k, &v, 4); break; }
            case SV_DT_F16: { uint16_t v = sv_f32_to_f16((float)s[k]); memcpy(raw + 2 * k, &v, 2); break; }
            case SV_DT_BF16: { uint16_t v = sv_f32_to_bf16((float)s[k]); memcpy(raw + 2 * k, &v, 2); break; }
            case SV_DT_F64: memcpy(raw + 8 * k, &s[k], 8); break;
            }
        }
        if (fwrite(raw, isz, m, fp) != m) {
            free(raw);
            return sv_fail(SV_EINTERNAL, "%s: write error: %s", tmp, strerror(errno));
        }
    }
    free(raw);
    return SV_OK;
}

sv_rc sv_st_write(const char *path, const sv_st_wtensor *t, int n)
{
    sbuf h = {0};
    uint64_t off = 0;
    size_t *numels = sv_calloc(n > 0 ? (size_t)n : 1, sizeof *numels);
    if (!numels) return SV_EINTERNAL;
    sv_rc rc = SV_OK;
    char *tmp = NULL;
    FILE *fp = NULL;

    sb_str(&h, "{");
    for (int i = 0; i < n; i++) {
        const sv_st_wtensor *w = &t[i];
        if ((unsigned)w->dtype > SV_DT_F64 || w->ndim < 0 || w->ndim > SV_ST_MAXDIM || !w->name) {
            rc = sv_fail(SV_EINTERNAL, "%s: tensor %d: bad dtype, ndim or name", path, i);
            goto out;
        }
        uint64_t numel = 1;
        for (int d = 0; d < w->ndim; d++) {
            uint64_t v = (uint64_t)w->shape[d];
            if (w->shape[d] < 0 || (v && numel > (uint64_t)INT64_MAX / 8 / v)) {
                rc = sv_fail(SV_EINTERNAL, "%s: tensor '%s': bad shape", path, w->name);
                goto out;
            }
            numel *= v;
        }
        if (numel && !w->data) {
            rc = sv_fail(SV_EINTERNAL, "%s: tensor '%s': no data", path, w->name);
            goto out;
        }
        numels[i] = (size_t)numel;
        uint64_t bytes = numel * dtype_sizes[w->dtype];
        if (i) sb_str(&h, ",");
        sb_json_str(&h, w->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, dtype_names[w->dtype]);
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < w->ndim; d++) {
            if (d) sb_str(&h, ",");
            sb_u64(&h, (uint64_t)w->shape[d]);
        }
        sb_str(&h, "],\"data_offsets\":[");
        sb_u64(&h, off);
        sb_str(&h, ",");
        sb_u64(&h, off + bytes);
        sb_str(&h, "]}");
        off += bytes;
    }
    sb_str(&h, "}");
    /* Pad so the data block starts 8-byte aligned, as the reference does. */
    while (!h.oom && h.len % 8) sb_str(&h, " ");
    if (h.oom) { rc = sv_fail(SV_EINTERNAL, "%s: out of memory building header", path); goto out; }

    tmp = sv_tmp_path(path);
    if (!tmp) { rc = SV_EINTERNAL; goto out; }
    fp = fopen(tmp, "wb");
    if (!fp) { rc = sv_fail(SV_EINPUT, "%s: cannot create: %s", tmp, strerror(errno)); goto out; }

    unsigned char lenb[8];
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(hl >> (8 * i));
    if (fwrite(lenb, 1, 8, fp) != 8 || fwrite(h.p, 1, h.len, fp) != h.len) {
        rc = sv_fail(SV_EINTERNAL, "%s: write error: %s", tmp, strerror(errno));
        goto out;
    }
    for (int i = 0; i < n; i++)
        if ((rc = write_data(fp, &t[i], numels[i], tmp)) != SV_OK) goto out;
    int err = fclose(fp);
    fp = NULL;
    if (err != 0) { rc = sv_fail(SV_EINTERNAL, "%s: write error: %s", tmp, strerror(errno)); goto out; }
    rc = sv_tmp_commit(tmp, path);

out:
    if (fp) fclose(fp);
    if (rc != SV_OK && tmp) remove(tmp);
    free(tmp);
    free(h.p);
    free(numels);
    return rc;
}

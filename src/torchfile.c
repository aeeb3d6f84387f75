/* PyTorch .pt reader (see torchfile.h): zip + restricted pickle + raw
 * storages. Everything the pickle claims about a tensor (storage, dtype,
 * offset, shape, strides) is checked against the archive before use. */
#include "saeval/torchfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VISITS 1000000
#define MAX_NAME_BYTES ((size_t)64 << 20)

void sv_pt_close(sv_torchfile *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->t[i].name);
    for (int i = 0; i < f->n_items; i++) free(f->items[i].name);
    free(f->t);
    free(f->items);
    sv_pickle_free(&f->pk);
    sv_zip_close(f->z);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const sv_pt_tensor *sv_pt_find(const sv_torchfile *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const sv_pt_item *sv_pt_item_find(const sv_torchfile *f, const char *name)
{
    for (int i = 0; i < f->n_items; i++)
        if (strcmp(f->items[i].name, name) == 0) return &f->items[i];
    return NULL;
}

typedef struct {
    sv_torchfile *f;
    const char *prefix;
    int64_t visits;
    size_t name_bytes;
    int tcap, icap;
} walker;

static sv_rc add_tensor(walker *w, char *name, const sv_pk_value *v)
{
    sv_torchfile *f = w->f;
    if (f->n_tensors == w->tcap) {
        int nc = w->tcap ? w->tcap * 2 : 16;
        sv_pt_tensor *nt = realloc(f->t, (size_t)nc * sizeof *nt);
        if (!nt) { free(name); return sv_fail(SV_EINTERNAL, "out of memory"); }
        f->t = nt;
        w->tcap = nc;
    }
    sv_pt_tensor *t = &f->t[f->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = name;
    const sv_pk_value *s = v->u.tensor.storage;
    t->dtype = s->u.storage.dtype;
    t->ndim = v->u.tensor.ndim;
    memcpy(t->shape, v->u.tensor.shape, sizeof t->shape);
    memcpy(t->stride, v->u.tensor.stride, sizeof t->stride);
    t->offset = v->u.tensor.offset;
    t->storage_key = s->u.storage.key;
    t->storage_numel = s->u.storage.numel;

    /* Storage entry: exactly numel elements of the storage's type. */
    char ename[600];
    snprintf(ename, sizeof ename, "%s/data/%s", w->prefix, t->storage_key);
    t->entry = sv_zip_find(f->z, ename);
    if (!t->entry)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': storage entry '%s' is missing", f->path, name, ename);
    uint64_t isz = sv_tdtype_size(t->dtype);
    if ((uint64_t)t->storage_numel > UINT64_MAX / isz || t->entry->size != (uint64_t)t->storage_numel * isz)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': storage '%s' holds %llu bytes, not %lld x %s",
                       f->path, name, ename, (unsigned long long)t->entry->size,
                       (long long)t->storage_numel, sv_tdtype_name(t->dtype));
    /* Every element the view can address lies inside the storage. */
    uint64_t numel = 1, last = (uint64_t)t->offset;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d && numel > UINT64_MAX / d) return sv_fail(SV_EINPUT, "%s: tensor '%s': shape overflows", f->path, name);
        numel *= d;
    }
    if (numel > (uint64_t)INT64_MAX / 8) return sv_fail(SV_EINPUT, "%s: tensor '%s': too many elements", f->path, name);
    t->numel = (int64_t)numel;
    if (numel > 0) {
        for (int i = 0; i < t->ndim; i++) {
            uint64_t span = (uint64_t)(t->shape[i] - 1), st = (uint64_t)t->stride[i];
            if (st && span > (UINT64_MAX - last) / st)
                return sv_fail(SV_EINPUT, "%s: tensor '%s': strides overflow", f->path, name);
            last += span * st;
        }
        if (last >= (uint64_t)t->storage_numel)
            return sv_fail(SV_EINPUT, "%s: tensor '%s': offset %lld, shape and strides reach element %llu of a storage of %lld",
                           f->path, name, (long long)t->offset, (unsigned long long)last, (long long)t->storage_numel);
    }
    t->contiguous = 1;
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect) t->contiguous = 0;
        expect *= t->shape[i];
    }
    return SV_OK;
}

static sv_rc add_item(walker *w, char *name, const sv_pk_value *v)
{
    sv_torchfile *f = w->f;
    if (f->n_items == w->icap) {
        int nc = w->icap ? w->icap * 2 : 16;
        sv_pt_item *ni = realloc(f->items, (size_t)nc * sizeof *ni);
        if (!ni) { free(name); return sv_fail(SV_EINTERNAL, "out of memory"); }
        f->items = ni;
        w->icap = nc;
    }
    f->items[f->n_items].name = name;
    f->items[f->n_items++].v = v;
    return SV_OK;
}

/* Depth is bounded by the unpickler (256 levels); visited values (leaves
 * too) by MAX_VISITS and name bytes by MAX_NAME_BYTES, so sub-dicts shared
 * through the memo cannot blow up the walk. */
static sv_rc walk(walker *w, const char *prefix, const sv_pk_value *v)
{
    if (++w->visits > MAX_VISITS)
        return sv_fail(SV_EINPUT, "%s: data.pkl: more than %d entries", w->f->path, MAX_VISITS);
    if (v->type == SV_PK_DICT || v->type == SV_PK_LIST || v->type == SV_PK_TUPLE) {
        int dict = v->type == SV_PK_DICT;
        int64_t n = dict ? v->u.dict.n : v->u.seq.n;
        for (int64_t i = 0; i < n; i++) {
            char key[64];
            const char *ks = key;
            if (dict) {
                const sv_pk_value *k = v->u.dict.k[i];
                if (k->type == SV_PK_STR) ks = k->u.str.s;
                else if (k->type == SV_PK_INT) snprintf(key, sizeof key, "%lld", (long long)k->u.i);
                else return sv_fail(SV_EINPUT, "%s: data.pkl: dict key of type %s under '%s'", w->f->path,
                                    sv_pk_type_name(k->type), prefix);
            } else {
                snprintf(key, sizeof key, "%lld", (long long)i);
            }
            size_t len = strlen(prefix) + strlen(ks) + 2;
            if (len > SV_PT_MAX_NAME)
                return sv_fail(SV_EINPUT, "%s: data.pkl: entry name longer than %d bytes", w->f->path, SV_PT_MAX_NAME);
            if (++w->visits > MAX_VISITS || (w->name_bytes += len) > MAX_NAME_BYTES)
                return sv_fail(SV_EINPUT, "%s: data.pkl: more than %d entries or %zu MiB of names", w->f->path,
                               MAX_VISITS, MAX_NAME_BYTES >> 20);
            char *name = sv_malloc(len);
            if (!name) return SV_EINTERNAL;
            snprintf(name, len, "%s%s%s", prefix, *prefix ? "." : "", ks);
            const sv_pk_value *c = dict ? v->u.dict.v[i] : v->u.seq.v[i];
            sv_rc rc;
            if (c->type == SV_PK_TENSOR) {
                rc = add_tensor(w, name, c);
            } else if (c->type <= SV_PK_STR) {
                rc = add_item(w, name, c);
            } else if (c->type == SV_PK_DICT || c->type == SV_PK_LIST || c->type == SV_PK_TUPLE) {
                rc = walk(w, name, c);
                free(name);
            } else {
                rc = sv_fail(SV_EINPUT, "%s: data.pkl: entry '%s' is a %s, not a tensor or plain value",
                             w->f->path, name, sv_pk_type_name(c->type));
                free(name);
            }
            if (rc != SV_OK) return rc;
        }
        return SV_OK;
    }
    return sv_fail(SV_EINPUT, "%s: data.pkl: unexpected %s", w->f->path, sv_pk_type_name(v->type));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_storage(const void *a, const void *b)
{
    const sv_pt_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->storage_key, (*y)->storage_key);
}

/* Storages shared between tensors must agree on what they hold. */
static sv_rc check_shared(sv_torchfile *f)
{
    const sv_pt_tensor **ts = sv_calloc((size_t)f->n_tensors, sizeof *ts);
    if (!ts) return SV_EINTERNAL;
    for (int i = 0; i < f->n_tensors; i++) ts[i] = &f->t[i];
    qsort(ts, (size_t)f->n_tensors, sizeof *ts, cmp_storage);
    sv_rc rc = SV_OK;
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(ts[i - 1]->storage_key, ts[i]->storage_key) == 0 &&
            (ts[i - 1]->dtype != ts[i]->dtype || ts[i - 1]->storage_numel != ts[i]->storage_numel)) {
            rc = sv_fail(SV_EINPUT, "%s: tensors '%s' and '%s' view storage '%s' with different types or sizes",
                         f->path, ts[i - 1]->name, ts[i]->name, ts[i]->storage_key);
            break;
        }
    free(ts);
    return rc;
}

static sv_rc check_unique(sv_torchfile *f)
{
    sv_rc rc0 = check_shared(f);
    if (rc0 != SV_OK) return rc0;
    size_t n = (size_t)f->n_tensors + (size_t)f->n_items;
    const char **names = sv_calloc(n, sizeof *names);
    if (!names) return SV_EINTERNAL;
    size_t k = 0;
    for (int i = 0; i < f->n_tensors; i++) names[k++] = f->t[i].name;
    for (int i = 0; i < f->n_items; i++) names[k++] = f->items[i].name;
    qsort(names, n, sizeof *names, cmp_str);
    sv_rc rc = SV_OK;
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            rc = sv_fail(SV_EINPUT, "%s: data.pkl: entry '%s' appears twice", f->path, names[i]);
            break;
        }
    free(names);
    return rc;
}

static sv_rc load(sv_torchfile *f)
{
    /* The record prefix: the one top-level folder holding data.pkl. */
    const sv_zip_entry *pkl = NULL;
    for (int64_t i = 0; i < sv_zip_count(f->z); i++) {
        const sv_zip_entry *e = sv_zip_entry_at(f->z, i);
        const char *slash = strchr(e->name, '/');
        if (slash && slash != e->name && strcmp(slash, "/data.pkl") == 0) {
            if (pkl) return sv_fail(SV_EINPUT, "%s: two data.pkl records ('%s', '%s')", f->path, pkl->name, e->name);
            pkl = e;
        }
    }
    if (!pkl) return sv_fail(SV_EINPUT, "%s: not a PyTorch file: no <name>/data.pkl in the zip", f->path);
    size_t plen = strlen(pkl->name) - strlen("/data.pkl");
    if (plen > 255) return sv_fail(SV_EINPUT, "%s: record name longer than 255 bytes", f->path);
    char prefix[256];
    memcpy(prefix, pkl->name, plen);
    prefix[plen] = '\0';

    char bo[300];
    snprintf(bo, sizeof bo, "%s/byteorder", prefix);
    const sv_zip_entry *be = sv_zip_find(f->z, bo);
    sv_rc rc;
    if (be) {
        char *txt;
        size_t len;
        if ((rc = sv_zip_read(f->z, be, 64, &txt, &len)) != SV_OK) return rc;
        int little = len == 6 && memcmp(txt, "little", 6) == 0;
        free(txt);
        if (!little) return sv_fail(SV_EINPUT, "%s: field '%s': storages are not little-endian", f->path, bo);
    }

    char *buf;
    size_t len;
    if ((rc = sv_zip_read(f->z, pkl, SV_PK_MAX_INPUT, &buf, &len)) != SV_OK) return rc;
    char what[600];
    snprintf(what, sizeof what, "%s: %s", f->path, pkl->name);
    rc = sv_pickle_load(&f->pk, buf, len, what);
    free(buf);
    if (rc != SV_OK) return rc;
    if (f->pk.root->type != SV_PK_DICT)
        return sv_fail(SV_EINPUT, "%s: data.pkl holds a %s, not a state dict", f->path, sv_pk_type_name(f->pk.root->type));
    walker w = {.f = f, .prefix = prefix};
    if ((rc = walk(&w, "", f->pk.root)) != SV_OK) return rc;
    return check_unique(f);
}

/* The pre-1.6 format is a bare pickle stream starting with a magic number. */
static sv_rc legacy_hint(sv_torchfile *f, const unsigned char *b, size_t n, sv_rc rc)
{
    if (rc != SV_OK && n >= 2 && b[0] == 0x80 && b[1] <= 5)
        return sv_fail(SV_EINPUT, "%s: legacy (pre-1.6) torch.save format is not supported: re-save it with torch >= 1.6",
                       f->path);
    return rc;
}

sv_rc sv_pt_open(sv_torchfile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = sv_strdup(path))) return SV_EINTERNAL;
    sv_rc rc = sv_zip_open(&f->z, path);
    if (rc != SV_OK) {
        unsigned char head[2] = {0, 0};
        FILE *fp = fopen(path, "rb");
        size_t n = fp ? fread(head, 1, 2, fp) : 0;
        if (fp) fclose(fp);
        rc = legacy_hint(f, head, n, rc);
    } else {
        rc = load(f);
    }
    if (rc != SV_OK) sv_pt_close(f);
    return rc;
}

sv_rc sv_pt_open_mem(sv_torchfile *f, const void *buf, size_t len, const char *name)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = sv_strdup(name))) return SV_EINTERNAL;
    sv_rc rc = sv_zip_open_mem(&f->z, buf, len, name);
    rc = rc != SV_OK ? legacy_hint(f, buf, len, rc) : load(f);
    if (rc != SV_OK) sv_pt_close(f);
    return rc;
}

static sv_rc not_contiguous(const sv_torchfile *f, const sv_pt_tensor *t)
{
    char sh[200] = "", st[200] = "";
    for (int i = 0; i < t->ndim; i++) {
        size_t a = strlen(sh), b = strlen(st);
        snprintf(sh + a, sizeof sh - a, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        snprintf(st + b, sizeof st - b, "%s%lld", i ? ", " : "", (long long)t->stride[i]);
    }
    return sv_fail(SV_EINPUT, "%s: tensor '%s': not contiguous (shape (%s), stride (%s)); save it with .contiguous()",
                   f->path, t->name, sh, st);
}

sv_rc sv_pt_read_i64(sv_torchfile *f, const sv_pt_tensor *t, int64_t *out)
{
    if (t->dtype <= SV_TDT_F64)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': dtype %s is not an integer type", f->path, t->name,
                       sv_tdtype_name(t->dtype));
    if (!t->contiguous) return not_contiguous(f, t);
    if (t->numel == 0) return SV_OK;
    size_t isz = sv_tdtype_size(t->dtype), n = (size_t)t->numel;
    if (n > SIZE_MAX / 8) return sv_fail(SV_EINPUT, "%s: tensor '%s': too large", f->path, t->name);
    /* Read the raw values into the tail of out, widen front to back. */
    unsigned char *raw = (unsigned char *)out + n * (8 - isz);
    sv_rc rc = sv_zip_read_raw(f->z, t->entry, (uint64_t)t->offset * isz, raw, n * isz);
    if (rc != SV_OK) return rc;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = raw + i * isz;
        int64_t v;
        switch (t->dtype) {
        case SV_TDT_I64: memcpy(&v, p, 8); break;
        case SV_TDT_I32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
        case SV_TDT_I16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
        case SV_TDT_I8: v = (int8_t)p[0]; break;
        case SV_TDT_U8: v = p[0]; break;
        default: v = p[0] != 0; break; /* bool */
        }
        out[i] = v;
    }
    return SV_OK;
}

static sv_rc read_conv(sv_torchfile *f, const sv_pt_tensor *t, float *of, double *od)
{
    static const sv_dtype map[] = {[SV_TDT_F32] = SV_DT_F32, [SV_TDT_F16] = SV_DT_F16,
                                   [SV_TDT_BF16] = SV_DT_BF16, [SV_TDT_F64] = SV_DT_F64};
    if (t->dtype > SV_TDT_F64)
        return sv_fail(SV_EINPUT, "%s: tensor '%s': dtype %s is not a floating-point type", f->path, t->name,
                       sv_tdtype_name(t->dtype));
    if (!t->contiguous) return not_contiguous(f, t);
    if (t->numel == 0) return SV_OK;
    uint64_t isz = sv_tdtype_size(t->dtype);
    return sv_zip_read_floats(f->z, t->entry, (uint64_t)t->offset * isz, map[t->dtype], (size_t)t->numel, of, od);
}

sv_rc sv_pt_read_f32(sv_torchfile *f, const sv_pt_tensor *t, float *out) { return read_conv(f, t, out, NULL); }
sv_rc sv_pt_read_f64(sv_torchfile *f, const sv_pt_tensor *t, double *out) { return read_conv(f, t, NULL, out); }

/* Loading a Hugging Face model directory: config.json (model_family.c),
 * model.safetensors or model.safetensors.index.json + shards, every tensor
 * checked against the family's list (both spellings, with or without the
 * family prefix; known buffers ignored; unknown, duplicate, missing or
 * misshapen tensors refused by name), upcast to the compute precision.
 * Also hook names, scratch sizes and the workspace. */
#include "model_impl.h"
#include "saeval/json.h" /* sv_json_parse_exact */
#include "saeval/fsutil.h" /* sv_read_file */
#include "saeval/safetensors.h"
#include "saeval/forward.h" /* sv_fwd_get_threads */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void sv_bind(sv_binder *b, void **dst, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
{
    if (b->oom) return;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        sv_need *v = realloc(b->v, (size_t)cap * sizeof *v);
        if (!v) {
            b->oom = 1;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    sv_need *e = &b->v[b->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->ndim = ndim;
    e->shape[0] = d0;
    e->shape[1] = d1;
    e->dst = dst;
}

/* ---- model.safetensors.index.json ---- */

void sv_model_index_free(sv_model_index *ix)
{
    for (int i = 0; i < ix->nfiles; i++) free(ix->files[i]);
    for (int i = 0; i < ix->ntensors; i++) free(ix->names[i]);
    free(ix->files);
    free(ix->names);
    free(ix->file_of);
    memset(ix, 0, sizeof *ix);
}

/* A shard must be a plain file name in the model directory. */
static int plain_name(const char *s)
{
    if (!*s || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 255) return 0;
    for (const char *p = s; *p; p++)
        if (*p == '/' || *p == '\\') return 0;
    return 1;
}

sv_rc sv_model_index_parse(sv_model_index *ix, const char *json, size_t n, const char *path)
{
    memset(ix, 0, sizeof *ix);
    cJSON *root = sv_json_parse_exact(json, n);
    sv_rc rc = SV_OK;
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(root)) {
        rc = sv_fail(SV_EINPUT, "%s: not a JSON object", path);
        goto out;
    }
    if (!cJSON_IsObject(wm)) {
        rc = sv_fail(SV_EINPUT, "%s: field 'weight_map' is missing or not an object", path);
        goto out;
    }
    const int cnt = cJSON_GetArraySize(wm);
    if (cnt < 1 || cnt > 1000000) {
        rc = sv_fail(SV_EINPUT, "%s: field 'weight_map' has %d entries", path, cnt);
        goto out;
    }
    ix->names = sv_calloc((size_t)cnt, sizeof(char *));
    ix->file_of = sv_calloc((size_t)cnt, sizeof(int));
    ix->files = sv_calloc((size_t)cnt, sizeof(char *));
    if (!ix->names || !ix->file_of || !ix->files) {
        rc = SV_EINTERNAL;
        goto out;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !e->string || !plain_name(e->valuestring)) {
            rc = sv_fail(SV_EINPUT, "%s: field 'weight_map.%.80s' must name a file in the model directory", path,
                         e->string ? e->string : "");
            goto out;
        }
        for (int i = 0; i < ix->ntensors; i++)
            if (!strcmp(ix->names[i], e->string)) {
                rc = sv_fail(SV_EINPUT, "%s: field 'weight_map' lists tensor '%.80s' twice", path, e->string);
                goto out;
            }
        int f = 0;
        while (f < ix->nfiles && strcmp(ix->files[f], e->valuestring)) f++;
        if (f == ix->nfiles) {
            if (!(ix->files[f] = sv_strdup(e->valuestring))) {
                rc = SV_EINTERNAL;
                goto out;
            }
            ix->nfiles++;
        }
        if (!(ix->names[ix->ntensors] = sv_strdup(e->string))) {
            rc = SV_EINTERNAL;
            goto out;
        }
        ix->file_of[ix->ntensors++] = f;
    }
out:
    cJSON_Delete(root);
    if (rc != SV_OK) sv_model_index_free(ix);
    return rc;
}

/* ---- loading ---- */

void sv_model_free(sv_model *m)
{
    free(m->dir);
    free(m->buf);
    free(m->layers);
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}

size_t sv_model_weight_bytes(const sv_model *m) { return m->weight_bytes; }

size_t sv_model_cfg_weight_bytes(const sv_model_cfg *c, int precision)
{
    const sv_model_family *f = sv_model_family_find(c->model_type);
    if (!f) return 0;
    sv_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *c;
    if (!(m.layers = calloc((size_t)c->n_layers, sizeof *m.layers))) return 0;
    sv_binder b = {0};
    f->bind(&b, &m); /* the same list the loader checks the files against */
    size_t n = 0;
    for (int k = 0; k < b.n; k++) n += (size_t)b.v[k].shape[0] * (size_t)(b.v[k].ndim == 2 ? b.v[k].shape[1] : 1);
    const int oom = b.oom;
    free(b.v);
    free(m.layers);
    return oom ? 0 : n * (precision == 64 ? sizeof(double) : sizeof(float));
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sv_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* inv_freq as transformers' rope_init functions (modeling_rope_utils.py). */
static sv_rc rope_init(sv_model *m)
{
    const sv_model_cfg *c = &m->cfg;
    const int64_t h = c->rotary_dim / 2;
    if (!h) return SV_OK;
    m->inv_freq = sv_malloc((size_t)h * sizeof(double));
    if (!m->inv_freq) return SV_EINTERNAL;
    for (int64_t i = 0; i < h; i++) {
        double f = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->rotary_dim);
        if (c->rope == SV_ROPE_LINEAR) f /= c->rope_factor;
        if (c->rope == SV_ROPE_LLAMA3) { /* _compute_llama3_parameters */
            const double lo_wl = (double)c->rope_orig / c->rope_low, hi_wl = (double)c->rope_orig / c->rope_high;
            const double wl = 2 * 3.14159265358979323846 / f;
            if (wl > lo_wl) {
                f /= c->rope_factor;
            } else if (wl >= hi_wl) { /* medium: interpolate */
                const double s = ((double)c->rope_orig / wl - c->rope_low) / (c->rope_high - c->rope_low);
                f = (1 - s) * f / c->rope_factor + s * f;
            }
        }
        m->inv_freq[i] = f;
    }
    return SV_OK;
}

typedef struct {
    const sv_st_file *f;
    const sv_st_tensor *t;
} found_t;

static sv_rc load_weights(sv_model *m, sv_st_file *files, int nf, const sv_model_index *ix)
{
    sv_binder b = {0};
    found_t *found = NULL;
    sv_rc rc = SV_OK;
    const sv_model_cfg *c = &m->cfg;
    const char *pre = m->fam->prefix;
    const size_t plen = strlen(pre), rs = m->precision == 64 ? sizeof(double) : sizeof(float);
    m->fam->bind(&b, m);
    if (b.oom || !(found = sv_calloc((size_t)(b.n ? b.n : 1), sizeof *found))) {
        rc = sv_fail(SV_EINTERNAL, "out of memory");
        goto out;
    }
    for (int fi = 0; fi < nf; fi++) {
        const sv_st_file *f = &files[fi];
        for (int ti = 0; ti < f->n; ti++) {
            const sv_st_tensor *t = &f->t[ti];
            if (ix) { /* the index must agree with where the tensor is */
                int k = 0;
                while (k < ix->ntensors && strcmp(ix->names[k], t->name)) k++;
                if (k == ix->ntensors || ix->file_of[k] != fi) {
                    rc = sv_fail(SV_EINPUT, "%s: tensor '%.100s' is not assigned to this shard by "
                                 "model.safetensors.index.json", f->path, t->name);
                    goto out;
                }
            }
            const char *nm = strncmp(t->name, pre, plen) == 0 ? t->name + plen : t->name;
            if (m->fam->is_buffer(nm)) continue;
            /* Tied: save_pretrained drops the head, but other writers may keep a copy. */
            if (c->tied && (!strcmp(nm, "lm_head.weight") || !strcmp(nm, "embed_out.weight"))) continue;
            int k = 0;
            while (k < b.n && strcmp(b.v[k].name, nm)) k++;
            if (k == b.n) {
                rc = sv_fail(SV_EINPUT, "%s: unexpected tensor '%.100s' for a %s model with these settings", f->path,
                             t->name, c->model_type);
                goto out;
            }
            if (found[k].t) {
                rc = sv_fail(SV_EINPUT, "%s: tensor '%.100s' appears twice (as '%.100s' and '%.100s')", f->path, nm,
                             found[k].t->name, t->name);
                goto out;
            }
            const sv_need *nd = &b.v[k];
            if (t->ndim != nd->ndim || t->shape[0] != nd->shape[0] || (nd->ndim == 2 && t->shape[1] != nd->shape[1])) {
                char got[96] = "", want[64];
                for (int i = 0, o = 0; i < t->ndim && o < 80; i++)
                    o += snprintf(got + o, sizeof got - (size_t)o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
                if (nd->ndim == 2) snprintf(want, sizeof want, "%lld, %lld", (long long)nd->shape[0], (long long)nd->shape[1]);
                else snprintf(want, sizeof want, "%lld", (long long)nd->shape[0]);
                rc = sv_fail(SV_EINPUT, "%s: tensor '%.100s' has shape [%s], the config implies [%s]", f->path, t->name,
                             got, want);
                goto out;
            }
            found[k] = (found_t){f, t};
        }
    }
    if (ix)
        for (int k = 0; k < ix->ntensors; k++) {
            int hit = 0;
            for (int ti = 0; ti < files[ix->file_of[k]].n && !hit; ti++)
                hit = !strcmp(files[ix->file_of[k]].t[ti].name, ix->names[k]);
            if (!hit) {
                rc = sv_fail(SV_EINPUT, "%s: tensor '%.100s' listed in model.safetensors.index.json is missing",
                             files[ix->file_of[k]].path, ix->names[k]);
                goto out;
            }
        }
    size_t total = 0;
    for (int k = 0; k < b.n; k++) {
        if (!found[k].t) {
            int miss = 0;
            for (int j = 0; j < b.n; j++) miss += !found[j].t;
            rc = sv_fail(SV_EINPUT, "%s: tensor '%s%s' is missing (%d missing in all) for model_type %s", m->dir,
                         strncmp(b.v[k].name, "lm_head", 7) && strncmp(b.v[k].name, "embed_out", 9) ? pre : "",
                         b.v[k].name, miss, c->model_type);
            goto out;
        }
        total += (size_t)sv_st_numel(found[k].t);
    }
    m->weight_bytes = total * rs;
    if (!(m->buf = sv_malloc(m->weight_bytes ? m->weight_bytes : 1))) {
        rc = SV_EINTERNAL;
        goto out;
    }
    size_t off = 0;
    for (int k = 0; k < b.n; k++) {
        char *dst = (char *)m->buf + off * rs;
        rc = m->precision == 64 ? sv_st_read_f64(found[k].f, found[k].t, (double *)dst)
                                : sv_st_read_f32(found[k].f, found[k].t, (float *)dst);
        if (rc != SV_OK) goto out;
        *b.v[k].dst = dst;
        off += (size_t)sv_st_numel(found[k].t);
    }
    if (c->tied) m->unembed = m->embed;
out:
    free(found);
    free(b.v);
    return rc;
}

sv_rc sv_model_load(sv_model *m, const char *dir, int precision)
{
    memset(m, 0, sizeof *m);
    if (precision != 32 && precision != 64) return sv_fail(SV_EINTERNAL, "model: precision %d", precision);
    m->precision = precision;
    sv_rc rc = SV_OK;
    char *cfgp = NULL, *text = NULL, *ixp = NULL;
    size_t len = 0;
    sv_st_file *files = NULL;
    int nf = 0;
    sv_model_index ix = {0};
    int have_ix = 0;
    if (!(m->dir = sv_strdup(dir)) || !(cfgp = join(dir, "config.json")) ||
        !(ixp = join(dir, "model.safetensors.index.json"))) {
        rc = SV_EINTERNAL;
        goto out;
    }
    if ((rc = sv_read_file(cfgp, &text, &len)) != SV_OK) goto out;
    if ((rc = sv_model_cfg_parse(&m->cfg, text, len, cfgp)) != SV_OK) goto out;
    m->fam = sv_model_family_find(m->cfg.model_type);
    free(text);
    text = NULL;
    if (!(m->layers = sv_calloc((size_t)m->cfg.n_layers, sizeof *m->layers))) {
        rc = SV_EINTERNAL;
        goto out;
    }
    if (exists(ixp)) {
        if ((rc = sv_read_file(ixp, &text, &len)) != SV_OK) goto out;
        if ((rc = sv_model_index_parse(&ix, text, len, ixp)) != SV_OK) goto out;
        have_ix = 1;
        nf = ix.nfiles;
    } else {
        nf = 1;
    }
    if (!(files = sv_calloc((size_t)nf, sizeof *files))) {
        rc = SV_EINTERNAL;
        goto out;
    }
    for (int i = 0; i < nf; i++) {
        char *p = join(dir, have_ix ? ix.files[i] : "model.safetensors");
        if (!p) {
            rc = SV_EINTERNAL;
            goto out;
        }
        if (!have_ix && !exists(p)) {
            rc = sv_fail(SV_EINPUT, "%s: neither model.safetensors nor model.safetensors.index.json exists", dir);
            free(p);
            goto out;
        }
        rc = sv_st_open(&files[i], p);
        free(p);
        if (rc != SV_OK) goto out;
    }
    if ((rc = load_weights(m, files, nf, have_ix ? &ix : NULL)) != SV_OK) goto out;
    rc = rope_init(m);
out:
    for (int i = 0; i < nf && files; i++) sv_st_close(&files[i]);
    free(files);
    sv_model_index_free(&ix);
    free(text);
    free(cfgp);
    free(ixp);
    if (rc != SV_OK) sv_model_free(m);
    return rc;
}

sv_rc sv_model_random(sv_model *m, const sv_model_cfg *c, int precision, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->precision = precision;
    m->fam = sv_model_family_find(c->model_type);
    sv_binder b = {0};
    sv_rc rc = SV_OK;
    if (!m->fam) return sv_fail(SV_EINPUT, "model_type '%s' is not supported", c->model_type);
    if (!(m->dir = sv_strdup("(random)")) || !(m->layers = sv_calloc((size_t)c->n_layers, sizeof *m->layers))) {
        sv_model_free(m);
        return SV_EINTERNAL;
    }
    m->fam->bind(&b, m);
    const size_t rs = precision == 64 ? sizeof(double) : sizeof(float);
    size_t total = 0;
    for (int k = 0; k < b.n; k++) total += (size_t)b.v[k].shape[0] * (size_t)(b.v[k].ndim == 2 ? b.v[k].shape[1] : 1);
    m->weight_bytes = total * rs;
    if (b.oom || !(m->buf = sv_malloc(m->weight_bytes ? m->weight_bytes : 1))) {
        rc = SV_EINTERNAL;
    } else {
        uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
        size_t off = 0;
        for (int k = 0; k < b.n; k++) {
            const sv_need *nd = &b.v[k];
            const size_t n = (size_t)nd->shape[0] * (size_t)(nd->ndim == 2 ? nd->shape[1] : 1);
            /* matrices: unit-variance outputs; vectors: norm weights near 1, biases near 0 */
            const double a = nd->ndim == 2 ? sqrt(3.0 / (double)nd->shape[1]) : 0.1;
            const int normw = nd->ndim == 1 && (strstr(nd->name, "norm") || strstr(nd->name, "ln_")) &&
                              strstr(nd->name, "weight");
            const double base = normw && c->norm != SV_NORMK_RMS_1P ? 1.0 : 0.0;
            char *dst = (char *)m->buf + off * rs;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                const double v = base + a * (2.0 * ((double)(x >> 11) * 0x1.0p-53) - 1.0);
                if (precision == 64) ((double *)dst)[i] = v;
                else ((float *)dst)[i] = (float)v;
            }
            *nd->dst = dst;
            off += n;
        }
        if (c->tied) m->unembed = m->embed;
        rc = rope_init(m);
    }
    free(b.v);
    if (rc != SV_OK) sv_model_free(m);
    return rc;
}

sv_rc sv_model_write_random(const char *dir, const char *config_json, uint64_t seed)
{
    sv_model_cfg c;
    sv_rc rc = sv_model_cfg_parse(&c, config_json, strlen(config_json), "config.json");
    if (rc != SV_OK) return rc;
    sv_model m;
    if ((rc = sv_model_random(&m, &c, 32, seed)) != SV_OK) return rc;
    sv_binder b = {0};
    /* Names and shapes again (binding resets the pointers): sv_model_random
     * filled m.buf in binding order, so tensor k starts where k-1 ended. */
    m.fam->bind(&b, &m);
    sv_st_wtensor *t = sv_calloc((size_t)(b.n ? b.n : 1), sizeof *t);
    double *data = sv_malloc((m.weight_bytes / sizeof(float) + 1) * sizeof(double));
    char (*names)[192] = sv_calloc((size_t)(b.n ? b.n : 1), sizeof *names);
    char *cp = sv_path_join(dir, "config.json"), *wp = sv_path_join(dir, "model.safetensors");
    if (b.oom || !t || !data || !names || !cp || !wp) rc = SV_EINTERNAL;
    size_t off = 0;
    for (int k = 0; k < b.n && rc == SV_OK; k++) {
        const sv_need *nd = &b.v[k];
        const size_t n = (size_t)nd->shape[0] * (size_t)(nd->ndim == 2 ? nd->shape[1] : 1);
        const float *src = (const float *)m.buf + off;
        for (size_t i = 0; i < n; i++) data[off + i] = src[i];
        /* Hugging Face keeps the head outside the base model's prefix. */
        snprintf(names[k], sizeof names[k], "%s%s", strcmp(nd->name, "lm_head.weight") ? m.fam->prefix : "", nd->name);
        t[k] = (sv_st_wtensor){names[k], SV_DT_F32, nd->ndim, {nd->shape[0], nd->ndim == 2 ? nd->shape[1] : 0}, data + off};
        off += n;
    }
    if (rc == SV_OK) rc = sv_mkdir_p(dir);
    if (rc == SV_OK) rc = sv_write_atomic(cp, config_json, strlen(config_json));
    if (rc == SV_OK) rc = sv_st_write(wp, t, b.n);
    free(cp);
    free(wp);
    free(names);
    free(data);
    free(t);
    free(b.v);
    sv_model_free(&m);
    return rc;
}

/* ---- hooks ---- */

sv_rc sv_hook_parse(sv_hook *h, const char *name, const sv_model_cfg *c)
{
    static const struct { const char *suffix; sv_hook_kind kind; } kinds[] = {
        {"hook_resid_pre", SV_HOOK_RESID_PRE}, {"hook_resid_post", SV_HOOK_RESID_POST},
        {"hook_attn_out", SV_HOOK_ATTN_OUT},   {"hook_mlp_out", SV_HOOK_MLP_OUT},
    };
    const char *p = name;
    int64_t L = 0;
    int ok = strncmp(p, "blocks.", 7) == 0;
    if (ok) {
        p += 7;
        ok = *p >= '0' && *p <= '9';
        while (ok && *p >= '0' && *p <= '9' && L < 1000000) L = L * 10 + (*p++ - '0');
        ok = ok && *p++ == '.';
    }
    for (size_t i = 0; ok && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(p, kinds[i].suffix)) {
            if (L >= c->n_layers)
                return sv_fail(SV_EINPUT, "hook_name '%.80s': layer %lld is beyond the model's last layer %lld", name,
                               (long long)L, (long long)c->n_layers - 1);
            h->kind = kinds[i].kind;
            h->layer = L;
            return SV_OK;
        }
    return sv_fail(SV_EINPUT, "hook_name '%.80s' is not supported (blocks.L.hook_resid_pre, blocks.L.hook_resid_post, "
                   "blocks.L.hook_attn_out, blocks.L.hook_mlp_out)", name);
}

/* ---- workspace ---- */

typedef struct { size_t x, h, ao, mo, q, k, v, att, f1, f2, tmp, scores, rowd, rope, normed, tiles; } ws_sizes;

static ws_sizes sizes(const sv_model_cfg *c, int precision, int64_t T, int streams, int threads)
{
    const size_t rs = precision == 64 ? 8 : 4, t = (size_t)T, d = (size_t)c->d_model;
    const size_t hq = (size_t)(c->n_heads * c->head_dim), hk = (size_t)(c->n_kv_heads * c->head_dim);
    const size_t w = 3 * d > hq + 2 * hk ? 3 * d : hq + 2 * hk;
    ws_sizes s;
    s.x = s.h = s.ao = s.mo = t * d * rs;
    s.q = t * hq * rs;
    s.k = s.v = t * hk * rs;
    s.att = t * hq * rs;
    s.f1 = s.f2 = t * (size_t)c->d_ff * rs;
    s.tmp = t * (w > d ? w : d) * rs;
    s.scores = (size_t)threads * SV_MODEL_QBLOCK * t * rs;
    s.rowd = (size_t)threads * t * sizeof(double);
    s.rope = t * (size_t)(c->rotary_dim / 2 > 0 ? c->rotary_dim / 2 : 1) * rs;
    s.normed = (size_t)streams * t * d * rs;
    s.tiles = (size_t)streams * t * SV_MODEL_VTILE * rs;
    return s;
}

size_t sv_model_scratch_bytes(const sv_model_cfg *c, int precision, int64_t T, int streams, int threads)
{
    ws_sizes s = sizes(c, precision, T, streams, threads);
    return s.x + s.h + s.ao + s.mo + s.q + s.k + s.v + s.att + s.f1 + s.f2 + s.tmp + s.scores + s.rowd + 2 * s.rope +
           s.normed + s.tiles;
}

void sv_model_ws_free(sv_model_ws *ws)
{
    void *p[] = {ws->x, ws->h, ws->ao, ws->mo, ws->q, ws->k, ws->v, ws->att, ws->f1, ws->f2, ws->tmp, ws->scores,
                 ws->rowd, ws->cosb, ws->sinb, ws->normed, ws->tiles};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    memset(ws, 0, sizeof *ws);
}

sv_rc sv_model_ws_init(sv_model_ws *ws, const sv_model *m, int64_t max_T, int max_streams)
{
    memset(ws, 0, sizeof *ws);
    if (max_T < 1 || max_streams < 1) return sv_fail(SV_EINTERNAL, "model: workspace for %lld tokens", (long long)max_T);
    ws->m = m;
    ws->max_T = max_T;
    ws->max_streams = max_streams;
    ws->threads = sv_fwd_get_threads();
    ws->rows = SV_MODEL_ROWS;
    ws->cols = SV_MODEL_COLS;
    ws->qblock = SV_MODEL_QBLOCK;
    ws->vtile = SV_MODEL_VTILE;
    ws_sizes s = sizes(&m->cfg, m->precision, max_T, max_streams, ws->threads);
    void **dst[] = {&ws->x, &ws->h, &ws->ao, &ws->mo, &ws->q, &ws->k, &ws->v, &ws->att, &ws->f1, &ws->f2, &ws->tmp,
                    &ws->scores, (void **)&ws->rowd, &ws->cosb, &ws->sinb, &ws->normed, &ws->tiles};
    const size_t n[] = {s.x, s.h, s.ao, s.mo, s.q, s.k, s.v, s.att, s.f1, s.f2, s.tmp, s.scores, s.rowd, s.rope, s.rope,
                        s.normed, s.tiles};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        if (!(*dst[i] = sv_calloc(n[i] ? n[i] : 1, 1))) {
            sv_model_ws_free(ws);
            return SV_EINTERNAL;
        }
    return SV_OK;
}

/* SAELens SAEs: DIR/cfg.json (architecture), DIR/sae_weights.safetensors
 * (weights), DIR/activation_scaler.json (expected_average_only_in factor,
 * when the run config gives none). The first row of the format table. */
#include "saeval/fmt_saelens.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "saeval/arch.h"
#include "saeval/format.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "saeval/safetensors.h"

/* ------------------------------------------------------------- cfg.json */

/* Absent and JSON null both mean "use the default" in SAELens configs. */
static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(j) ? NULL : j;
}

/* Integral JSON number in [1, 2^53): exact in a double. */
static int json_posint(const cJSON *j, int64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 1) || d >= 9007199254740992.0 || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

static sv_rc get_bool(const cJSON *root, const char *key, int *out, const char *path)
{
    const cJSON *j = get(root, key);
    if (!j) return SV_OK;
    if (!cJSON_IsBool(j)) return sv_fail(SV_EINPUT, "%s: %s: must be true or false", path, key);
    *out = cJSON_IsTrue(j);
    return SV_OK;
}

static sv_rc get_dim(const cJSON *root, const char *key, int64_t *out, const char *path)
{
    const cJSON *j = get(root, key);
    if (!j) return sv_fail(SV_EINPUT, "%s: %s: missing (required)", path, key);
    if (!json_posint(j, out)) return sv_fail(SV_EINPUT, "%s: %s: must be a positive integer", path, key);
    return SV_OK;
}

static int is_topk_str(const cJSON *j)
{
    return cJSON_IsString(j) && strcmp(j->valuestring, "topk") == 0;
}

/* SAELens's loader (handle_config_defaulting) applies its pre-6.0 handling
 * when sae_lens_version (top level, else metadata.sae_lens_version) is
 * missing or below 6.0.0-rc.0: the major number decides. */
static sv_rc is_pre_6(const cJSON *root, const char *path, int *pre)
{
    const cJSON *v = get(root, "sae_lens_version");
    const cJSON *md = get(root, "metadata");
    if (!v && cJSON_IsObject(md)) v = get(md, "sae_lens_version");
    *pre = 1;
    if (!v) return SV_OK;
    if (!cJSON_IsString(v) || v->valuestring[0] < '0' || v->valuestring[0] > '9')
        return sv_fail(SV_EINPUT, "%s: sae_lens_version: not a version string", path);
    long major = 0;
    for (const char *c = v->valuestring; *c >= '0' && *c <= '9' && major < 100000; c++) major = major * 10 + (*c - '0');
    *pre = major < 6;
    return SV_OK;
}

sv_rc sv_sae_cfg_parse(sv_sae_cfg *c, const char *json, size_t n, const char *path)
{
    memset(c, 0, sizeof *c);
    c->apply_b_dec_to_input = 1;
    strcpy(c->dtype, "float32");
    if (!path) path = "cfg.json";

    cJSON *root = sv_json_parse_exact(json, n);
    if (!root) return sv_fail(SV_EINPUT, "%s: not valid JSON", path);
    sv_rc rc = SV_OK;
    if (!cJSON_IsObject(root)) { rc = sv_fail(SV_EINPUT, "%s: not a JSON object", path); goto out; }

    if ((rc = get_dim(root, "d_in", &c->d_in, path)) != SV_OK) goto out;
    if ((rc = get_dim(root, "d_sae", &c->d_sae, path)) != SV_OK) goto out;

    /* Architecture: explicit key, else the pre-6.0 flat activation_fn form. */
    const cJSON *a = get(root, "architecture");
    if (a) {
        if (!cJSON_IsString(a)) { rc = sv_fail(SV_EINPUT, "%s: architecture: must be a string", path); goto out; }
        const sv_arch_row *row = sv_arch_lookup(a->valuestring, &c->alias_flags);
        if (!row) {
            rc = sv_fail(SV_EINPUT, "%s: architecture: unknown architecture '%.64s' (want %s)",
                         path, a->valuestring, sv_arch_list());
            goto out;
        }
        if (row->flags & SV_AF_NOT_SAELENS) {
            rc = sv_fail(SV_EINPUT, "%s: architecture: '%.64s' is not a SAELens architecture (saeval reads it from "
                         "sparsify files)", path, a->valuestring);
            goto out;
        }
        c->arch = row->id;
        /* SAELens 4.x saved top-k SAEs as "standard" with activation_fn_str
         * "topk" and activation_fn_kwargs.k; its loader reads them as top-k
         * when the cfg predates 6.0. */
        int pre6 = 0;
        if ((rc = is_pre_6(root, path, &pre6)) != SV_OK) goto out;
        if (pre6 && c->arch == SV_ARCH_STANDARD &&
            (is_topk_str(get(root, "activation_fn_str")) || is_topk_str(get(root, "activation_fn")))) {
            c->arch = SV_ARCH_TOPK;
            c->pre6_topk = 1;
        }
    } else if (is_topk_str(get(root, "activation_fn_str")) || is_topk_str(get(root, "activation_fn"))) {
        c->arch = SV_ARCH_TOPK;
    } else {
        c->arch = SV_ARCH_STANDARD;
    }

    if (sv_arch_has(c->arch, SV_AF_TOPK)) {
        const cJSON *k = get(root, "k");
        if (!k) {
            const cJSON *kw = get(root, "activation_fn_kwargs");
            if (cJSON_IsObject(kw)) k = get(kw, "k");
        }
        if (!k) { rc = sv_fail(SV_EINPUT, "%s: k: missing (required for topk)", path); goto out; }
        if (!json_posint(k, &c->k) || c->k > c->d_sae) {
            rc = sv_fail(SV_EINPUT, "%s: k: must be an integer with 1 <= k <= d_sae (%lld)",
                         path, (long long)c->d_sae);
            goto out;
        }
    }

    if ((rc = get_bool(root, "rescale_acts_by_decoder_norm", &c->rescale_acts_by_decoder_norm, path)) != SV_OK) goto out;
    if ((rc = get_bool(root, "apply_b_dec_to_input", &c->apply_b_dec_to_input, path)) != SV_OK) goto out;

    const cJSON *nz = get(root, "normalize_activations");
    if (cJSON_IsBool(nz)) {
        /* Early SAELens wrote a bool: true meant expected_average_only_in. */
        c->normalize = cJSON_IsTrue(nz) ? SV_NORM_EXPECTED_AVERAGE_ONLY_IN : SV_NORM_NONE;
    } else if (nz) {
        if (!cJSON_IsString(nz)) { rc = sv_fail(SV_EINPUT, "%s: normalize_activations: must be a string", path); goto out; }
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(nz->valuestring, sv_norm_name((sv_norm)i)) == 0) { c->normalize = (sv_norm)i; found = 1; }
        if (!found) {
            rc = sv_fail(SV_EINPUT, "%s: normalize_activations: unknown value '%.64s' (want none, layer_norm, "
                         "constant_norm_rescale or expected_average_only_in)", path, nz->valuestring);
            goto out;
        }
    }

    /* Transcoders (SAELens transcoder.py): d_out from cfg.json; the input is
     * never shifted by b_dec (its width is d_out); the output is not
     * de-normalized there, so a normalization is refused rather than
     * half-applied. */
    if (c->alias_flags & SV_AF_TRANSCODER) {
        c->transcoder = 1;
        c->skip = (c->alias_flags & SV_AF_SKIP) != 0;
        c->apply_b_dec_to_input = 0;
        if ((rc = get_dim(root, "d_out", &c->d_out, path)) != SV_OK) goto out;
        if (c->normalize != SV_NORM_NONE) {
            rc = sv_fail(SV_EINPUT, "%s: normalize_activations: '%s' is not supported for a transcoder (want none)",
                         path, sv_norm_name(c->normalize));
            goto out;
        }
    }

    const cJSON *dt = get(root, "dtype");
    if (dt) {
        if (!cJSON_IsString(dt)) { rc = sv_fail(SV_EINPUT, "%s: dtype: must be a string", path); goto out; }
        if (strlen(dt->valuestring) >= sizeof c->dtype) {
            rc = sv_fail(SV_EINPUT, "%s: dtype: too long", path);
            goto out;
        }
        strcpy(c->dtype, dt->valuestring);
    }

out:
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------- loading */

static sv_rc read_cfg(const char *dir, sv_sae_cfg *c)
{
    char *path = sv_path_join(dir, "cfg.json");
    if (!path) return SV_EINTERNAL;
    char *txt = NULL;
    size_t len = 0;
    sv_rc rc = sv_read_file(path, &txt, &len);
    if (rc == SV_OK) rc = sv_sae_cfg_parse(c, txt, len, path);
    free(txt);
    free(path);
    return rc;
}

static void fmt_shape(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Find tensor `name`, check its shape, read it into a new array of the
 * working precision. */
static sv_rc load_tensor(const sv_st_file *f, const char *name, int ndim, int64_t d0, int64_t d1,
                         int precision, int scalar_ok, void **out)
{
    int64_t want[2] = {d0, d1};
    char ws[64], gs[256];
    fmt_shape(ws, sizeof ws, want, ndim);

    const sv_st_tensor *t = sv_st_find(f, name);
    if (!t)
        return sv_fail(SV_EINPUT, "%s: tensor %s: missing (expected shape %s from cfg.json)",
                       f->path, name, ws);
    /* One number for every latent (batchtopk's global threshold). */
    const int scalar = scalar_ok && t->ndim <= 1 && sv_st_numel(t) == 1;
    int ok = t->ndim == ndim || scalar;
    for (int i = 0; ok && !scalar && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        fmt_shape(gs, sizeof gs, t->shape, t->ndim);
        return sv_fail(SV_EINPUT, "%s: tensor %s: shape %s does not match cfg.json (expected %s)",
                       f->path, name, gs, ws);
    }
    size_t numel = (size_t)sv_st_numel(t), full = scalar ? (size_t)d0 : numel;
    void *p = sv_malloc(full * (precision == 32 ? sizeof(float) : sizeof(double)));
    if (!p) return SV_EINTERNAL;
    sv_rc rc = precision == 32 ? sv_st_read_f32(f, t, p) : sv_st_read_f64(f, t, p);
    if (rc != SV_OK) { free(p); return rc; }
    /* A NaN or Inf weight would poison every token's metrics silently
     * (and a float64 value can overflow float32). */
    const size_t bad = sv_first_nonfinite(p, numel, precision);
    if (bad < numel) {
        const double v = precision == 32 ? (double)((const float *)p)[bad] : ((const double *)p)[bad];
        free(p);
        return sv_fail(SV_EINPUT, "%s: tensor %s: non-finite value (%g) at flat index %zu%s", f->path, name, v, bad,
                       precision == 32 && t->dtype == SV_DT_F64 ? " (after conversion to float32)" : "");
    }
    for (size_t i = 1; scalar && i < full; i++) {
        if (precision == 32) ((float *)p)[i] = ((const float *)p)[0];
        else ((double *)p)[i] = ((const double *)p)[0];
    }
    *out = p;
    return SV_OK;
}

static sv_rc read_scaler(const char *dir, double *s)
{
    char *path = sv_path_join(dir, "activation_scaler.json");
    if (!path) return SV_EINTERNAL;
    char *txt = NULL;
    size_t len = 0;
    sv_rc rc = sv_read_file(path, &txt, &len);
    if (rc != SV_OK) goto out;
    cJSON *root = sv_json_parse_exact(txt, len);
    if (!root) { rc = sv_fail(SV_EINPUT, "%s: not valid JSON", path); goto out; }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "scaling_factor");
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0)
        rc = sv_fail(SV_EINPUT, "%s: scaling_factor: missing or not a positive number", path);
    else
        *s = v->valuedouble;
    cJSON_Delete(root);
out:
    free(txt);
    free(path);
    return rc;
}

static sv_rc saelens_load(sv_sae *s, const char *dir, int has_scale, double scale)
{
    const int precision = s->precision;

    sv_st_file f;
    memset(&f, 0, sizeof f);
    char *wpath = NULL;
    sv_rc rc = read_cfg(dir, &s->cfg);
    if (rc != SV_OK) goto out;
    const sv_sae_cfg *c = &s->cfg;
    int64_t ni = c->d_in, ns = c->d_sae, no = sv_cfg_d_out(c);
    if (ni > INT64_MAX / 8 / ns || no > INT64_MAX / 8 / ns || no > INT64_MAX / 8 / ni) {
        rc = sv_fail(SV_EINPUT, "%s/cfg.json: d_in x d_sae (or d_out x d_sae, d_out x d_in) is too large", dir);
        goto out;
    }

    if (c->normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN) {
        if (has_scale) {
            if (!(scale > 0) || !isfinite(scale)) {
                rc = sv_fail(SV_EINPUT, "%s: scaling_factor: must be a positive number", dir);
                goto out;
            }
            s->scaling_factor = scale;
        } else {
            char *sp = sv_path_join(dir, "activation_scaler.json");
            if (!sp) { rc = SV_EINTERNAL; goto out; }
            struct stat st;
            int exists = stat(sp, &st) == 0;
            free(sp);
            if (!exists) {
                rc = sv_fail(SV_EINPUT, "%s: normalize_activations=expected_average_only_in needs a "
                             "scaling factor: set scaling_factor for this SAE in the config or provide "
                             "activation_scaler.json", dir);
                goto out;
            }
            if ((rc = read_scaler(dir, &s->scaling_factor)) != SV_OK) goto out;
        }
    }

    wpath = sv_path_join(dir, "sae_weights.safetensors");
    if (!wpath) { rc = SV_EINTERNAL; goto out; }
    if ((rc = sv_st_open(&f, wpath)) != SV_OK) goto out;
    s->weights_bytes = f.file_size;

    /* The tensors the architecture's row lists, in its order. */
    void **slot[] = {[SV_T_W_ENC] = &s->W_enc, [SV_T_B_ENC] = &s->b_enc, [SV_T_W_DEC] = &s->W_dec,
                     [SV_T_B_DEC] = &s->b_dec, [SV_T_THRESHOLD] = &s->threshold, [SV_T_B_GATE] = &s->b_gate,
                     [SV_T_R_MAG] = &s->r_mag, [SV_T_B_MAG] = &s->b_mag, [SV_T_W_SKIP] = &s->W_skip};
    /* The row's tensors in its order, then W_skip for the skip aliases. */
    const sv_tensor_spec *specs[9];
    int n_spec = 0;
    for (const sv_tensor_spec *ts = sv_arch_row_of(c->arch)->tensors; ts->name; ts++) specs[n_spec++] = ts;
    if (c->skip) specs[n_spec++] = &sv_arch_w_skip;
    for (int q = 0; q < n_spec && rc == SV_OK; q++) {
        const sv_tensor_spec *ts = specs[q];
        const int64_t d0 = ts->shape == SV_SHAPE_IN_SAE ? ni : ts->shape == SV_SHAPE_OUT || ts->shape == SV_SHAPE_OUT_IN ? no : ns;
        const int64_t d1 = ts->shape == SV_SHAPE_IN_SAE ? ns : ts->shape == SV_SHAPE_SAE_OUT ? no : ts->shape == SV_SHAPE_OUT_IN ? ni : 0;
        const int scalar_ok = ts->id == SV_T_THRESHOLD && (c->alias_flags & SV_AF_SCALAR_THRESHOLD);
        rc = load_tensor(&f, ts->name, d1 ? 2 : 1, d0, d1, precision, scalar_ok, slot[ts->id]);
    }
    if (rc != SV_OK) goto out;

    /* Pre-6.0 finetuning_scaling_factor: SAELens 5 multiplied the feature
     * activations by this [d_sae] tensor before decoding; its loader drops
     * it when allclose to 1. saeval does not apply it: refused otherwise. */
    const sv_st_tensor *sf = sv_st_find(&f, "scaling_factor");
    if (sf) {
        size_t n = (size_t)sv_st_numel(sf);
        double *v = sv_malloc((n ? n : 1) * sizeof *v);
        if (!v) { rc = SV_EINTERNAL; goto out; }
        rc = sv_st_read_f64(&f, sf, v);
        for (size_t i = 0; rc == SV_OK && i < n; i++)
            if (!(fabs(v[i] - 1.0) <= 1e-8 + 1e-5))
                rc = sv_fail(SV_EINPUT, "%s: tensor scaling_factor: value %.17g at index %zu is not 1 (pre-6.0 "
                             "finetuning_scaling_factor, which SAELens 5 applied to the feature activations before "
                             "decoding); saeval does not apply it, so it refuses this SAE rather than ignore it",
                             f.path, v[i], i);
        free(v);
        if (rc != SV_OK) goto out;
    }

out:
    free(wpath);
    sv_st_close(&f);
    return rc;
}

/* A directory holding cfg.json. */
static int saelens_probe(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    char *cfg = sv_path_join(path, "cfg.json");
    int ok = cfg && stat(cfg, &st) == 0 && S_ISREG(st.st_mode);
    free(cfg);
    return ok ? 10 : 0;
}

static sv_rc saelens_identity(const char *dir, sv_ident_visit visit, void *ctx)
{
    static const struct { const char *name; sv_ident_kind kind; } files[] = {
        {"cfg.json", SV_IDENT_BYTES}, {"sae_weights.safetensors", SV_IDENT_STAT}, {"activation_scaler.json", SV_IDENT_BYTES}};
    for (int i = 0; i < 3; i++) {
        char *p = sv_path_join(dir, files[i].name);
        if (!p) return SV_EINTERNAL;
        visit(ctx, p, files[i].kind);
        free(p);
    }
    return SV_OK;
}

static sv_rc saelens_describe(const char *dir, FILE *out)
{
    sv_sae_cfg c;
    sv_rc rc = read_cfg(dir, &c);
    if (rc != SV_OK) return rc;
    fprintf(out, "SAE %s\n", dir);
    fprintf(out, "  architecture          %s\n", sv_arch_name(c.arch));
    fprintf(out, "  d_in                  %lld\n", (long long)c.d_in);
    fprintf(out, "  d_sae                 %lld\n", (long long)c.d_sae);
    if (c.transcoder)
        fprintf(out, "  d_out                 %lld (transcoder%s: compared with the store's /targets)\n",
                (long long)c.d_out, c.skip ? " with skip connection" : "");
    if (sv_arch_has(c.arch, SV_AF_TOPK)) {
        fprintf(out, "  k                     %lld\n", (long long)c.k);
        fprintf(out, "  rescale_acts_by_decoder_norm %s\n", c.rescale_acts_by_decoder_norm ? "true" : "false");
    }
    fprintf(out, "  normalization         %s\n", sv_norm_name(c.normalize));
    fprintf(out, "  apply_b_dec_to_input  %s\n", c.apply_b_dec_to_input ? "true" : "false");
    fprintf(out, "  dtype (cfg.json)      %s\n", c.dtype);

    char *wpath = sv_path_join(dir, "sae_weights.safetensors");
    if (!wpath) return SV_EINTERNAL;
    sv_st_file f;
    memset(&f, 0, sizeof f);
    rc = sv_st_open(&f, wpath);
    if (rc == SV_OK) {
        fprintf(out, "  weights               %s (%llu bytes, %d tensors)\n", wpath,
                (unsigned long long)f.file_size, f.n);
        for (int i = 0; i < f.n; i++) {
            const sv_st_tensor *t = &f.t[i];
            fprintf(out, "    %-20s %-4s [", t->name, sv_dtype_name(t->dtype));
            for (int j = 0; j < t->ndim; j++) fprintf(out, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
            fprintf(out, "]\n");
        }
        sv_st_close(&f);
    }
    free(wpath);
    return rc;
}

const sv_format sv_fmt_saelens = {
    "saelens", saelens_probe, read_cfg, saelens_load, saelens_identity, saelens_describe,
};

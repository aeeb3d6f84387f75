/* SAELens SAEs: cfg.json parsing, weight loading and derived per-latent norms. */
#include "saeval/sae.h"
#include "saeval/config.h" /* sv_path_join */
#include "saeval/output.h" /* sv_json_parse_exact */
#include "saeval/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *arch_names[] = {"standard", "topk", "jumprelu", "gated"};
static const char *norm_names[] = {"none", "layer_norm", "constant_norm_rescale",
                                   "expected_average_only_in"};

const char *sv_arch_name(sv_arch a) { return (unsigned)a < 4 ? arch_names[a] : "?"; }
const char *sv_norm_name(sv_norm n) { return (unsigned)n < 4 ? norm_names[n] : "?"; }

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
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(a->valuestring, arch_names[i]) == 0) { c->arch = (sv_arch)i; found = 1; }
        if (!found) {
            rc = sv_fail(SV_EINPUT, "%s: architecture: unknown architecture '%.64s' (want standard, topk, jumprelu or gated)",
                         path, a->valuestring);
            goto out;
        }
    } else if (is_topk_str(get(root, "activation_fn_str")) || is_topk_str(get(root, "activation_fn"))) {
        c->arch = SV_ARCH_TOPK;
    } else {
        c->arch = SV_ARCH_STANDARD;
    }

    if (c->arch == SV_ARCH_TOPK) {
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
            if (strcmp(nz->valuestring, norm_names[i]) == 0) { c->normalize = (sv_norm)i; found = 1; }
        if (!found) {
            rc = sv_fail(SV_EINPUT, "%s: normalize_activations: unknown value '%.64s' (want none, layer_norm, "
                         "constant_norm_rescale or expected_average_only_in)", path, nz->valuestring);
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

sv_rc sv_sae_load_cfg(const char *dir, sv_sae_cfg *c)
{
    return read_cfg(dir, c);
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
                         int precision, void **out)
{
    int64_t want[2] = {d0, d1};
    char ws[64], gs[256];
    fmt_shape(ws, sizeof ws, want, ndim);

    const sv_st_tensor *t = sv_st_find(f, name);
    if (!t)
        return sv_fail(SV_EINPUT, "%s: tensor %s: missing (expected shape %s from cfg.json)",
                       f->path, name, ws);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        fmt_shape(gs, sizeof gs, t->shape, t->ndim);
        return sv_fail(SV_EINPUT, "%s: tensor %s: shape %s does not match cfg.json (expected %s)",
                       f->path, name, gs, ws);
    }
    size_t numel = (size_t)sv_st_numel(t);
    void *p = sv_malloc(numel * (precision == 32 ? sizeof(float) : sizeof(double)));
    if (!p) return SV_EINTERNAL;
    sv_rc rc = precision == 32 ? sv_st_read_f32(f, t, p) : sv_st_read_f64(f, t, p);
    if (rc != SV_OK) { free(p); return rc; }
    /* A NaN or Inf weight would poison every token's metrics silently
     * (and a float64 value can overflow float32). */
    for (size_t i = 0; i < numel; i++) {
        double v = precision == 32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
        if (!isfinite(v)) {
            free(p);
            return sv_fail(SV_EINPUT, "%s: tensor %s: non-finite value (%g) at flat index %zu%s", f->path, name, v, i,
                           precision == 32 && t->dtype == SV_DT_F64 ? " (after conversion to float32)" : "");
        }
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

/* Per-latent norms, blocked over latents so that both W_enc rows and the
 * W_dec rows of a block stream through cache. Each sum runs over i in
 * order, so the result equals the naive loop. */
#define NORMS_BODY(T)                                                          \
    do {                                                                       \
        const T *We = s->W_enc, *Wd = s->W_dec;                                \
        for (size_t j0 = 0; j0 < ns; j0 += 64) {                               \
            size_t j1 = j0 + 64 < ns ? j0 + 64 : ns;                           \
            for (size_t i = 0; i < ni; i++) {                                  \
                const T *er = We + i * ns;                                     \
                for (size_t j = j0; j < j1; j++) {                             \
                    double e = er[j], d = Wd[j * ni + i];                      \
                    en[j] += e * e;                                            \
                    dn[j] += d * d;                                            \
                    dot[j] += e * d;                                           \
                }                                                              \
            }                                                                  \
        }                                                                      \
    } while (0)

static void compute_norms(sv_sae *s, double *dot)
{
    size_t ni = (size_t)s->cfg.d_in, ns = (size_t)s->cfg.d_sae;
    double *en = s->enc_norm, *dn = s->dec_norm;
    if (s->precision != 64) NORMS_BODY(float);
    else NORMS_BODY(double);
    for (size_t j = 0; j < ns; j++) {
        en[j] = sqrt(en[j]);
        dn[j] = sqrt(dn[j]);
        s->enc_dec_cos[j] = (en[j] > 0 && dn[j] > 0) ? dot[j] / (en[j] * dn[j]) : 0.0;
    }
}

sv_rc sv_sae_load(sv_sae *s, const char *dir, int precision, int has_scale, double scale)
{
    memset(s, 0, sizeof *s);
    if (precision != 16 && precision != 32 && precision != 64)
        return sv_fail(SV_EINTERNAL, "%s: precision must be 16, 32 or 64 (got %d)", dir, precision);
    s->precision = precision;
    /* bfloat16 mode holds float32 weights; the forward pass rounds its own
     * copy of W_enc for the encoder GEMM. */
    if (precision == 16) precision = 32;
    s->scaling_factor = 1.0;
    s->dir = sv_strdup(dir);
    if (!s->dir) return SV_EINTERNAL;

    sv_st_file f;
    memset(&f, 0, sizeof f);
    char *wpath = NULL;
    double *dot = NULL;
    sv_rc rc = read_cfg(dir, &s->cfg);
    if (rc != SV_OK) goto out;
    const sv_sae_cfg *c = &s->cfg;
    int64_t ni = c->d_in, ns = c->d_sae;
    if (ni > INT64_MAX / 8 / ns) {
        rc = sv_fail(SV_EINPUT, "%s/cfg.json: d_in x d_sae is too large", dir);
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

    if ((rc = load_tensor(&f, "W_enc", 2, ni, ns, precision, &s->W_enc)) != SV_OK) goto out;
    if (c->arch != SV_ARCH_GATED &&
        (rc = load_tensor(&f, "b_enc", 1, ns, 0, precision, &s->b_enc)) != SV_OK) goto out;
    if ((rc = load_tensor(&f, "W_dec", 2, ns, ni, precision, &s->W_dec)) != SV_OK) goto out;
    if ((rc = load_tensor(&f, "b_dec", 1, ni, 0, precision, &s->b_dec)) != SV_OK) goto out;
    if (c->arch == SV_ARCH_JUMPRELU &&
        (rc = load_tensor(&f, "threshold", 1, ns, 0, precision, &s->threshold)) != SV_OK) goto out;
    if (c->arch == SV_ARCH_GATED) {
        if ((rc = load_tensor(&f, "b_gate", 1, ns, 0, precision, &s->b_gate)) != SV_OK) goto out;
        if ((rc = load_tensor(&f, "r_mag", 1, ns, 0, precision, &s->r_mag)) != SV_OK) goto out;
        if ((rc = load_tensor(&f, "b_mag", 1, ns, 0, precision, &s->b_mag)) != SV_OK) goto out;
    }

    s->dec_norm = sv_calloc((size_t)ns, sizeof(double));
    s->enc_norm = sv_calloc((size_t)ns, sizeof(double));
    s->enc_dec_cos = sv_calloc((size_t)ns, sizeof(double));
    dot = sv_calloc((size_t)ns, sizeof(double));
    if (!s->dec_norm || !s->enc_norm || !s->enc_dec_cos || !dot) { rc = SV_EINTERNAL; goto out; }
    compute_norms(s, dot);

out:
    free(dot);
    free(wpath);
    sv_st_close(&f);
    if (rc != SV_OK) sv_sae_free(s);
    return rc;
}

void sv_sae_free(sv_sae *s)
{
    if (!s) return;
    free(s->dir);
    free(s->W_enc);
    free(s->b_enc);
    free(s->W_dec);
    free(s->b_dec);
    free(s->threshold);
    free(s->b_gate);
    free(s->r_mag);
    free(s->b_mag);
    free(s->dec_norm);
    free(s->enc_norm);
    free(s->enc_dec_cos);
    memset(s, 0, sizeof *s);
}

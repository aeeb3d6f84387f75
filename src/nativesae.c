/* Native SAE formats into the canonical form (see nativesae.h). One loader
 * per format, all over a small "tensor source" that hides whether tensors
 * come from an .npz, a safetensors file or a torch .pt. */
#include "saeval/nativesae.h"
#include "saeval/npy.h"
#include "saeval/output.h" /* sv_json_parse_exact */
#include "saeval/safetensors.h"
#include "saeval/torchfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *act_names[] = {"relu", "jumprelu", "topk", "signed_topk", "groupmax", "gated"};
const char *sv_nact_name(sv_nact a) { return (unsigned)a <= SV_NACT_GATED ? act_names[a] : "?"; }

/* ------------------------------------------------------------ sources */

typedef struct {
    int kind; /* 0 npz, 1 safetensors, 2 pt */
    const char *path;
    sv_npz npz;
    sv_st_file st;
    sv_torchfile pt;
} src_t;

static void src_close(src_t *s)
{
    if (s->kind == 0) sv_npz_close(&s->npz);
    else if (s->kind == 1) sv_st_close(&s->st);
    else sv_pt_close(&s->pt);
}

/* Shape of tensor name: 1 found, 0 absent. */
static int src_shape(const src_t *s, const char *name, int *ndim, int64_t *shape)
{
    if (s->kind == 0) {
        const sv_npz_array *a = sv_npz_find(&s->npz, name);
        if (!a) return 0;
        *ndim = a->h.ndim;
        memcpy(shape, a->h.shape, sizeof(int64_t) * (size_t)a->h.ndim);
    } else if (s->kind == 1) {
        const sv_st_tensor *t = sv_st_find(&s->st, name);
        if (!t) return 0;
        *ndim = t->ndim;
        memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    } else {
        const sv_pt_tensor *t = sv_pt_find(&s->pt, name);
        if (!t) return 0;
        *ndim = t->ndim;
        memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    }
    return 1;
}

static sv_rc src_read(src_t *s, const char *name, double *out)
{
    if (s->kind == 0) return sv_npz_read_f64(&s->npz, sv_npz_find(&s->npz, name), out);
    if (s->kind == 1) return sv_st_read_f64(&s->st, sv_st_find(&s->st, name), out);
    const sv_pt_tensor *t = sv_pt_find(&s->pt, name);
    if (t->dtype > SV_TDT_F64) { /* integer tensors (k) widened */
        int64_t *tmp = sv_calloc((size_t)t->numel, sizeof *tmp);
        if (!tmp) return SV_EINTERNAL;
        sv_rc rc = sv_pt_read_i64(&s->pt, t, tmp);
        for (int64_t i = 0; rc == SV_OK && i < t->numel; i++) out[i] = (double)tmp[i];
        free(tmp);
        return rc;
    }
    return sv_pt_read_f64(&s->pt, t, out);
}

/* Tensor `name` with the given dims (-1: any, then stored in *dims);
 * returns its values (NULL and SV_OK when absent and optional). */
static sv_rc need(src_t *s, const char *name, int ndim, int64_t *d0, int64_t *d1, int optional,
                  int with_weights, double **out)
{
    *out = NULL;
    int nd;
    int64_t sh[8];
    if (!src_shape(s, name, &nd, sh)) {
        if (optional) return SV_OK;
        return sv_fail(SV_EINPUT, "%s: tensor '%s': missing", s->path, name);
    }
    if (nd != ndim) return sv_fail(SV_EINPUT, "%s: tensor '%s': %d dimensions, expected %d", s->path, name, nd, ndim);
    int64_t *want[2] = {d0, d1};
    for (int i = 0; i < nd && i < 2; i++) {
        if (*want[i] < 0) *want[i] = sh[i];
        else if (sh[i] != *want[i])
            return sv_fail(SV_EINPUT, "%s: tensor '%s': dimension %d is %lld, expected %lld", s->path, name, i,
                           (long long)sh[i], (long long)*want[i]);
    }
    if (!with_weights) return SV_OK;
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)sh[i];
    double *v = sv_malloc(n * sizeof *v);
    if (!v) return SV_EINTERNAL;
    sv_rc rc = src_read(s, name, v);
    if (rc != SV_OK) { free(v); return rc; }
    const size_t bad = sv_first_nonfinite(v, n, 64);
    if (bad < n) {
        free(v);
        return sv_fail(SV_EINPUT, "%s: tensor '%s': value %zu is not finite", s->path, name, bad);
    }
    *out = v;
    return SV_OK;
}

/* [r][c] -> [c][r] into a new array (frees the input). */
static sv_rc transpose(double **a, int64_t r, int64_t c)
{
    if (!*a) return SV_OK;
    double *t = sv_malloc((size_t)r * (size_t)c * sizeof *t);
    if (!t) return SV_EINTERNAL;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++) t[(size_t)j * (size_t)r + (size_t)i] = (*a)[(size_t)i * (size_t)c + (size_t)j];
    free(*a);
    *a = t;
    return SV_OK;
}

static sv_rc broadcast(double **a, double v, int64_t n)
{
    *a = sv_malloc((size_t)n * sizeof **a);
    if (!*a) return SV_EINTERNAL;
    for (int64_t i = 0; i < n; i++) (*a)[i] = v;
    return SV_OK;
}

static sv_rc add_file(sv_native *s, const char *path)
{
    if (s->n_files >= 4) return sv_fail(SV_EINTERNAL, "too many files");
    if (!(s->files[s->n_files] = sv_strdup(path))) return SV_EINTERNAL;
    s->n_files++;
    return SV_OK;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = sv_malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has(const char *dir, const char *name)
{
    char *p = join(dir, name);
    int r = p && is_file(p);
    free(p);
    return r;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* A small JSON file (at most 16 MiB), parsed exactly; messages name it. */
static sv_rc read_json(const char *path, cJSON **out)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    long sz = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (sz < 0 || sz > (16L << 20) || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return sv_fail(SV_EINPUT, "%s: %s", path, sz > 0 ? "larger than 16 MiB" : "cannot size");
    }
    char *txt = sv_malloc((size_t)sz + 1);
    size_t n = txt ? fread(txt, 1, (size_t)sz, fp) : 0;
    fclose(fp);
    if (!txt) return SV_EINTERNAL;
    if (n != (size_t)sz) {
        free(txt);
        return sv_fail(SV_EINPUT, "%s: short read", path);
    }
    *out = sv_json_parse_exact(txt, n);
    free(txt);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return sv_fail(SV_EINPUT, "%s: not a JSON object", path);
    }
    return SV_OK;
}

static const cJSON *jget(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(j) ? NULL : j;
}

static sv_rc jnum(const cJSON *o, const char *key, const char *path, int required, double *out)
{
    const cJSON *j = jget(o, key);
    if (!j) return required ? sv_fail(SV_EINPUT, "%s: %s: missing (required)", path, key) : SV_OK;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return sv_fail(SV_EINPUT, "%s: %s: must be a number", path, key);
    *out = j->valuedouble;
    return SV_OK;
}

static sv_rc jint(const cJSON *o, const char *key, const char *path, int required, int64_t *out)
{
    double d = (double)*out;
    sv_rc rc = jnum(o, key, path, required, &d);
    if (rc != SV_OK) return rc;
    if (d < 0 || d >= 9007199254740992.0 || d != floor(d))
        return sv_fail(SV_EINPUT, "%s: %s: must be a non-negative integer", path, key);
    *out = (int64_t)d;
    return SV_OK;
}

static sv_rc jbool(const cJSON *o, const char *key, const char *path, int *out)
{
    const cJSON *j = jget(o, key);
    if (!j) return SV_OK;
    if (!cJSON_IsBool(j)) return sv_fail(SV_EINPUT, "%s: %s: must be true or false", path, key);
    *out = cJSON_IsTrue(j);
    return SV_OK;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *j = jget(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* ------------------------------------------------------------ gemma scope */

/* params.npz: W_enc [d_in, d_sae] (or w_enc), W_dec [d_sae, d_out], b_enc,
 * b_dec, threshold; JumpReLU, no b_dec subtraction. */
static sv_rc load_gemma(sv_native *s, const char *path, int w)
{
    char *file = is_dir(path) ? join(path, "params.npz") : sv_strdup(path);
    if (!file) return SV_EINTERNAL;
    src_t src = {.kind = 0, .path = file};
    sv_rc rc = sv_npz_open(&src.npz, file);
    if (rc != SV_OK) { free(file); return rc; }
    if ((rc = add_file(s, file)) != SV_OK) goto out;
    s->act = SV_NACT_JUMPRELU;
    s->apply_b_dec_to_input = 0;
    s->d_in = s->d_sae = s->d_out = -1;
    const char *enc = sv_npz_find(&src.npz, "W_enc") ? "W_enc" : "w_enc";
    const char *dec = sv_npz_find(&src.npz, "W_dec") ? "W_dec" : "w_dec";
    if ((rc = need(&src, enc, 2, &s->d_in, &s->d_sae, 0, w, &s->W_enc)) != SV_OK) goto out;
    if ((rc = need(&src, dec, 2, &s->d_sae, &s->d_out, 0, w, &s->W_dec)) != SV_OK) goto out;
    if ((rc = need(&src, "b_enc", 1, &s->d_sae, NULL, 0, w, &s->b_enc)) != SV_OK) goto out;
    if ((rc = need(&src, "b_dec", 1, &s->d_out, NULL, 0, w, &s->b_dec)) != SV_OK) goto out;
    if ((rc = need(&src, "threshold", 1, &s->d_sae, NULL, 0, w, &s->threshold)) != SV_OK) goto out;
    s->transcoder = s->d_out != s->d_in;
    /* scaling_factor: present in some files; only 1 has a meaning saeval knows. */
    const sv_npz_array *sf = sv_npz_find(&src.npz, "scaling_factor");
    if (sf) {
        double v[1];
        if (sf->h.numel != 1) { rc = sv_fail(SV_EINPUT, "%s: tensor 'scaling_factor': expected one value", file); goto out; }
        if ((rc = sv_npz_read_f64(&src.npz, sf, v)) != SV_OK) goto out;
        if (v[0] != 1.0) {
            rc = sv_fail(SV_EINPUT, "%s: tensor 'scaling_factor': %.17g; only 1 is supported", file, v[0]);
            goto out;
        }
    }
out:
    src_close(&src);
    free(file);
    return rc;
}

/* ------------------------------------------------------------ llama scope */

/* Language-Model-SAEs (lm_saes) as its from_pretrained loads a release:
 * dataset-wise normalization folded into the weights
 * (standardize_parameters_of_dataset_activation_scaling: c_in =
 * sqrt(d_model)/norm_in, c_out = sqrt(d_model)/norm_out; b_enc /= c_in,
 * b_dec /= c_out, W_dec *= c_in/c_out), then, with
 * sparsity_include_decoder_norm, unit decoder columns
 * (transform_to_unit_decoder_norm: W_enc, b_enc *= n_j, W_dec /= n_j), then
 * JumpReLU with the scalar jump_relu_threshold (a topk SAE with a positive
 * threshold is converted to JumpReLU by the same loader). */
static sv_rc load_llama(sv_native *s, const char *dir, int w)
{
    char *hp = join(dir, "hyperparams.json"), *file = join(dir, "checkpoints/final.safetensors");
    cJSON *cfg = NULL;
    src_t src = {.kind = 1, .path = file};
    int opened = 0;
    sv_rc rc = (!hp || !file) ? SV_EINTERNAL : read_json(hp, &cfg);
    if (rc != SV_OK) goto out;
    if ((rc = add_file(s, hp)) != SV_OK || (rc = add_file(s, file)) != SV_OK) goto out;
    int64_t d_model = 0, d_sae = 0;
    double thr = 0, n_in = 0, n_out = 0;
    int incl_dec = 0, pre_enc = 0, use_dec_bias = 1;
    if ((rc = jint(cfg, "d_model", hp, 1, &d_model)) != SV_OK || (rc = jint(cfg, "d_sae", hp, 1, &d_sae)) != SV_OK ||
        (rc = jnum(cfg, "jump_relu_threshold", hp, 0, &thr)) != SV_OK ||
        (rc = jbool(cfg, "sparsity_include_decoder_norm", hp, &incl_dec)) != SV_OK ||
        (rc = jbool(cfg, "apply_decoder_bias_to_pre_encoder", hp, &pre_enc)) != SV_OK ||
        (rc = jbool(cfg, "use_decoder_bias", hp, &use_dec_bias)) != SV_OK)
        goto out;
    const char *act = jstr(cfg, "act_fn"), *norm = jstr(cfg, "norm_activation");
    if (!act) act = "relu";
    if (strcmp(act, "jumprelu") == 0 || (strcmp(act, "topk") == 0 && thr > 0)) s->act = SV_NACT_JUMPRELU;
    else if (strcmp(act, "relu") == 0) s->act = SV_NACT_RELU;
    else if (strcmp(act, "topk") == 0) {
        /* top-k of ReLU(h) (times the decoder norms, which are 1 after the transform below) */
        s->act = SV_NACT_TOPK;
        if ((rc = jint(cfg, "top_k", hp, 1, &s->k)) != SV_OK) goto out;
        if (s->k < 1 || s->k > d_sae) { rc = sv_fail(SV_EINPUT, "%s: top_k: %lld outside 1..d_sae", hp, (long long)s->k); goto out; }
    } else { rc = sv_fail(SV_EINPUT, "%s: act_fn: '%s' is not supported (jumprelu, relu, topk)", hp, act); goto out; }
    snprintf(s->variant, sizeof s->variant, "%s", act);
    double c_in = 1, c_out = 1;
    if (norm && strcmp(norm, "dataset-wise") == 0) {
        const cJSON *avg = jget(cfg, "dataset_average_activation_norm");
        if (!cJSON_IsObject(avg)) { rc = sv_fail(SV_EINPUT, "%s: dataset_average_activation_norm: missing (dataset-wise)", hp); goto out; }
        if ((rc = jnum(avg, "in", hp, 1, &n_in)) != SV_OK || (rc = jnum(avg, "out", hp, 1, &n_out)) != SV_OK) goto out;
        if (!(n_in > 0) || !(n_out > 0)) { rc = sv_fail(SV_EINPUT, "%s: dataset_average_activation_norm: must be positive", hp); goto out; }
        c_in = sqrt((double)d_model) / n_in;
        c_out = sqrt((double)d_model) / n_out;
    } else if (norm && strcmp(norm, "inference") != 0 && strcmp(norm, "none") != 0) {
        rc = sv_fail(SV_EINPUT, "%s: norm_activation: '%s' is not supported (dataset-wise, inference)", hp, norm);
        goto out;
    }
    if ((rc = sv_st_open(&src.st, file)) != SV_OK) goto out;
    opened = 1;
    s->d_in = d_model; s->d_sae = d_sae; s->d_out = d_model;
    /* encoder = nn.Linear(d_model, d_sae): weight [d_sae, d_model]; decoder weight [d_model, d_sae] */
    if ((rc = need(&src, "encoder.weight", 2, &s->d_sae, &s->d_in, 0, w, &s->W_enc)) != SV_OK ||
        (rc = need(&src, "encoder.bias", 1, &s->d_sae, NULL, 0, w, &s->b_enc)) != SV_OK ||
        (rc = need(&src, "decoder.weight", 2, &s->d_out, &s->d_sae, 0, w, &s->W_dec)) != SV_OK ||
        (rc = need(&src, "decoder.bias", 1, &s->d_out, NULL, !use_dec_bias, w, &s->b_dec)) != SV_OK)
        goto out;
    if (pre_enc && use_dec_bias) { rc = sv_fail(SV_EINPUT, "%s: apply_decoder_bias_to_pre_encoder: true is not supported", hp); goto out; }
    s->apply_b_dec_to_input = 0;
    snprintf(s->note, sizeof s->note, "as lm_saes from_pretrained: dataset-wise norms (in %.6g, out %.6g)%s folded into the weights",
             n_in, n_out, incl_dec ? " and unit decoder norms" : "");
    if (!w) goto out;
    if ((rc = transpose(&s->W_enc, d_sae, d_model)) != SV_OK || (rc = transpose(&s->W_dec, d_model, d_sae)) != SV_OK) goto out;
    if (!s->b_dec && (rc = broadcast(&s->b_dec, 0, d_model)) != SV_OK) goto out;
    for (int64_t j = 0; j < d_sae; j++) s->b_enc[j] /= c_in;
    for (int64_t i = 0; i < d_model; i++) s->b_dec[i] /= c_out;
    for (size_t i = 0; i < (size_t)d_sae * (size_t)d_model; i++) s->W_dec[i] *= c_in / c_out;
    if (incl_dec)
        for (int64_t j = 0; j < d_sae; j++) {
            double n2 = 0;
            for (int64_t i = 0; i < d_model; i++) n2 += s->W_dec[j * d_model + i] * s->W_dec[j * d_model + i];
            double n = sqrt(n2);
            for (int64_t i = 0; i < d_model; i++) {
                s->W_dec[j * d_model + i] /= n;
                s->W_enc[i * d_sae + j] *= n;
            }
            s->b_enc[j] *= n;
        }
    if (s->act == SV_NACT_JUMPRELU && (rc = broadcast(&s->threshold, thr, d_sae)) != SV_OK) goto out;
out:
    if (opened) sv_st_close(&src.st);
    cJSON_Delete(cfg);
    free(hp);
    free(file);
    return rc;
}

/* --------------------------------------------------------------- sparsify */

/* SparseCoder: encoder.weight [d_sae, d_in], encoder.bias, W_dec [d_sae, d_in],
 * b_dec [d_in], W_skip [d_in, d_in]; encode ReLU(encoder(x - b_dec)) (no b_dec
 * for transcoders), then top-k / groupmax (older releases: `signed`, top-k by
 * |h| without ReLU); decode f.W_dec + b_dec (+ x.W_skip^T). */
static sv_rc load_sparsify(sv_native *s, const char *dir, int w)
{
    char *cf = join(dir, "cfg.json"), *file = join(dir, "sae.safetensors");
    cJSON *cfg = NULL;
    src_t src = {.kind = 1, .path = file};
    int opened = 0;
    sv_rc rc = (!cf || !file) ? SV_EINTERNAL : read_json(cf, &cfg);
    if (rc != SV_OK) goto out;
    if ((rc = add_file(s, cf)) != SV_OK || (rc = add_file(s, file)) != SV_OK) goto out;
    int64_t d_in = 0, k = 32, nl = 0, ef = 32;
    int sig = 0, skip = 0, tc = 0;
    if ((rc = jint(cfg, "d_in", cf, 1, &d_in)) != SV_OK || (rc = jint(cfg, "k", cf, 0, &k)) != SV_OK ||
        (rc = jint(cfg, "num_latents", cf, 0, &nl)) != SV_OK || (rc = jint(cfg, "expansion_factor", cf, 0, &ef)) != SV_OK ||
        (rc = jbool(cfg, "signed", cf, &sig)) != SV_OK || (rc = jbool(cfg, "skip_connection", cf, &skip)) != SV_OK ||
        (rc = jbool(cfg, "transcode", cf, &tc)) != SV_OK)
        goto out;
    const char *act = jstr(cfg, "activation");
    if (!act) act = "topk";
    int64_t d_sae = nl > 0 ? nl : d_in * ef;
    if (strcmp(act, "topk") == 0) s->act = sig ? SV_NACT_SIGNED_TOPK : SV_NACT_TOPK;
    else if (strcmp(act, "groupmax") == 0 && !sig) s->act = SV_NACT_GROUPMAX;
    else { rc = sv_fail(SV_EINPUT, "%s: activation: '%s'%s is not supported (topk, groupmax)", cf, act, sig ? " with signed" : ""); goto out; }
    if (k < 1 || k > d_sae) { rc = sv_fail(SV_EINPUT, "%s: k: %lld outside 1..%lld", cf, (long long)k, (long long)d_sae); goto out; }
    if (s->act == SV_NACT_GROUPMAX && d_sae % k) { rc = sv_fail(SV_EINPUT, "%s: k: %lld does not divide num_latents %lld (groupmax)", cf, (long long)k, (long long)d_sae); goto out; }
    snprintf(s->variant, sizeof s->variant, "%s%s", sig ? "signed " : "", act);
    s->k = k;
    s->transcoder = tc;
    s->skip = skip;
    s->apply_b_dec_to_input = !tc;
    if ((rc = sv_st_open(&src.st, file)) != SV_OK) goto out;
    opened = 1;
    s->d_in = d_in; s->d_sae = d_sae; s->d_out = -1;
    if ((rc = need(&src, "encoder.weight", 2, &s->d_sae, &s->d_in, 0, w, &s->W_enc)) != SV_OK ||
        (rc = need(&src, "encoder.bias", 1, &s->d_sae, NULL, 0, w, &s->b_enc)) != SV_OK ||
        (rc = need(&src, "W_dec", 2, &s->d_sae, &s->d_out, 0, w, &s->W_dec)) != SV_OK ||
        (rc = need(&src, "b_dec", 1, &s->d_out, NULL, 0, w, &s->b_dec)) != SV_OK ||
        (rc = need(&src, "W_skip", 2, &s->d_out, &s->d_in, !skip, w, &s->W_skip)) != SV_OK)
        goto out;
    if (!tc && s->d_out != s->d_in) { rc = sv_fail(SV_EINPUT, "%s: tensor 'W_dec': %lld columns but d_in %lld (not a transcoder)", file, (long long)s->d_out, (long long)d_in); goto out; }
    if (w) rc = transpose(&s->W_enc, d_sae, d_in);
out:
    if (opened) sv_st_close(&src.st);
    cJSON_Delete(cfg);
    free(cf);
    free(file);
    return rc;
}

/* ------------------------------------------------------------------ openai */

/* openai/sparse_autoencoder Autoencoder: encoder.weight [n_latents, d],
 * decoder.weight [d, n_latents], pre_bias [d], latent_bias [n_latents];
 * latents = act(encoder(x - pre_bias) + latent_bias), x^ = decoder(f) +
 * pre_bias; "activation" TopK (k, postact ReLU) implies the per-token
 * LayerNorm (from_state_dict: normalize = activation == "TopK"). */
static sv_rc load_openai(sv_native *s, const char *file, int w)
{
    src_t src = {.kind = 2, .path = file};
    sv_rc rc = sv_pt_open(&src.pt, file);
    if (rc != SV_OK) return rc;
    if ((rc = add_file(s, file)) != SV_OK) goto out;
    const sv_pt_item *a = sv_pt_item_find(&src.pt, "activation");
    const char *act = a && a->v->type == SV_PK_STR ? a->v->u.str.s : "ReLU";
    snprintf(s->variant, sizeof s->variant, "%s", act);
    if (strcmp(act, "TopK") == 0) {
        const sv_pt_item *k = sv_pt_item_find(&src.pt, "activation_state_dict.k");
        const sv_pt_item *pf = sv_pt_item_find(&src.pt, "activation_state_dict.postact_fn");
        if (!k || k->v->type != SV_PK_INT || k->v->u.i < 1) { rc = sv_fail(SV_EINPUT, "%s: activation_state_dict.k: missing or not a positive integer", file); goto out; }
        if (pf && (pf->v->type != SV_PK_STR || strcmp(pf->v->u.str.s, "ReLU") != 0)) { rc = sv_fail(SV_EINPUT, "%s: activation_state_dict.postact_fn: only ReLU is supported", file); goto out; }
        s->act = SV_NACT_TOPK;
        s->k = k->v->u.i;
        s->layer_norm = 1;
    } else if (strcmp(act, "ReLU") == 0) {
        s->act = SV_NACT_RELU;
    } else { rc = sv_fail(SV_EINPUT, "%s: activation: '%s' is not supported (ReLU, TopK)", file, act); goto out; }
    s->apply_b_dec_to_input = 1;
    s->d_in = s->d_sae = -1;
    if ((rc = need(&src, "encoder.weight", 2, &s->d_sae, &s->d_in, 0, w, &s->W_enc)) != SV_OK ||
        (rc = need(&src, "decoder.weight", 2, &s->d_in, &s->d_sae, 0, w, &s->W_dec)) != SV_OK ||
        (rc = need(&src, "pre_bias", 1, &s->d_in, NULL, 0, w, &s->b_dec)) != SV_OK ||
        (rc = need(&src, "latent_bias", 1, &s->d_sae, NULL, 0, w, &s->b_enc)) != SV_OK)
        goto out;
    s->d_out = s->d_in;
    if (s->k > s->d_sae) { rc = sv_fail(SV_EINPUT, "%s: activation_state_dict.k: %lld above n_latents %lld", file, (long long)s->k, (long long)s->d_sae); goto out; }
    if (w && ((rc = transpose(&s->W_enc, s->d_sae, s->d_in)) != SV_OK || (rc = transpose(&s->W_dec, s->d_in, s->d_sae)) != SV_OK)) goto out;
out:
    src_close(&src);
    return rc;
}

/* ----------------------------------------------------- dictionary_learning */

typedef struct {
    const char *cls;
    sv_nact act;
    int apply_b_dec, linear; /* linear: encoder.weight/decoder.weight (nn.Linear) rather than W_enc/W_dec */
    const char *b_dec, *b_enc; /* names */
    int scalar_threshold, has_k;
} dl_class;

static const dl_class dl_classes[] = {
    {"AutoEncoder", SV_NACT_RELU, 1, 1, "bias", "encoder.bias", 0, 0},
    {"GatedAutoEncoder", SV_NACT_GATED, 1, 1, "decoder_bias", NULL, 0, 0},
    {"JumpReluAutoEncoder", SV_NACT_JUMPRELU, 0, 0, "b_dec", "b_enc", 0, 0},
    {"AutoEncoderTopK", SV_NACT_TOPK, 1, 1, "b_dec", "encoder.bias", 0, 1},
    {"BatchTopKSAE", SV_NACT_JUMPRELU, 1, 1, "b_dec", "encoder.bias", 1, 1},
    {"MatryoshkaBatchTopKSAE", SV_NACT_JUMPRELU, 1, 0, "b_dec", "b_enc", 1, 1},
};

static sv_rc load_dl(sv_native *s, const char *dir, int w)
{
    char *cf = join(dir, "config.json"), *file = join(dir, "ae.pt");
    cJSON *cfg = NULL;
    src_t src = {.kind = 2, .path = file};
    int opened = 0;
    sv_rc rc = (!cf || !file) ? SV_EINTERNAL : read_json(cf, &cfg);
    if (rc != SV_OK) goto out;
    if ((rc = add_file(s, cf)) != SV_OK || (rc = add_file(s, file)) != SV_OK) goto out;
    const cJSON *tr = jget(cfg, "trainer");
    const char *cls = cJSON_IsObject(tr) ? jstr(tr, "dict_class") : NULL;
    if (!cls) { rc = sv_fail(SV_EINPUT, "%s: trainer.dict_class: missing", cf); goto out; }
    const dl_class *c = NULL;
    for (size_t i = 0; i < sizeof dl_classes / sizeof dl_classes[0]; i++)
        if (strcmp(dl_classes[i].cls, cls) == 0) c = &dl_classes[i];
    if (!c) { rc = sv_fail(SV_EINPUT, "%s: trainer.dict_class: '%s' is not supported", cf, cls); goto out; }
    snprintf(s->variant, sizeof s->variant, "%s", cls);
    s->act = c->act;
    s->apply_b_dec_to_input = c->apply_b_dec;
    if ((rc = sv_pt_open(&src.pt, file)) != SV_OK) goto out;
    opened = 1;
    s->d_in = s->d_sae = -1;
    if (c->linear) {
        if ((rc = need(&src, "encoder.weight", 2, &s->d_sae, &s->d_in, 0, w, &s->W_enc)) != SV_OK ||
            (rc = need(&src, "decoder.weight", 2, &s->d_in, &s->d_sae, 0, w, &s->W_dec)) != SV_OK)
            goto out;
    } else {
        if ((rc = need(&src, "W_enc", 2, &s->d_in, &s->d_sae, 0, w, &s->W_enc)) != SV_OK ||
            (rc = need(&src, "W_dec", 2, &s->d_sae, &s->d_in, 0, w, &s->W_dec)) != SV_OK)
            goto out;
    }
    s->d_out = s->d_in;
    if ((rc = need(&src, c->b_dec, 1, &s->d_in, NULL, 0, w, &s->b_dec)) != SV_OK) goto out;
    if (c->b_enc && (rc = need(&src, c->b_enc, 1, &s->d_sae, NULL, 0, w, &s->b_enc)) != SV_OK) goto out;
    if (c->act == SV_NACT_GATED &&
        ((rc = need(&src, "gate_bias", 1, &s->d_sae, NULL, 0, w, &s->b_gate)) != SV_OK ||
         (rc = need(&src, "r_mag", 1, &s->d_sae, NULL, 0, w, &s->r_mag)) != SV_OK ||
         (rc = need(&src, "mag_bias", 1, &s->d_sae, NULL, 0, w, &s->b_mag)) != SV_OK))
        goto out;
    if (c->act == SV_NACT_JUMPRELU && !c->scalar_threshold &&
        (rc = need(&src, "threshold", 1, &s->d_sae, NULL, 0, w, &s->threshold)) != SV_OK)
        goto out;
    if (c->has_k) {
        const sv_pt_tensor *kt = sv_pt_find(&src.pt, "k");
        int64_t k = 0;
        if (!kt || kt->numel != 1 || sv_pt_read_i64(&src.pt, kt, &k) != SV_OK || k < 1 || k > s->d_sae) {
            rc = sv_fail(SV_EINPUT, "%s: tensor 'k': missing or not an integer in 1..d_sae", file);
            goto out;
        }
        s->k = k;
    }
    if (c->scalar_threshold) {
        /* BatchTopK classes at inference: ReLU(h) > threshold, one global threshold. */
        const sv_pt_tensor *tt = sv_pt_find(&src.pt, "threshold");
        double thr = 0;
        if (!tt || tt->numel != 1 || sv_pt_read_f64(&src.pt, tt, &thr) != SV_OK || !isfinite(thr)) {
            rc = sv_fail(SV_EINPUT, "%s: tensor 'threshold': missing or not one finite number", file);
            goto out;
        }
        if (thr < 0) { rc = sv_fail(SV_EINPUT, "%s: tensor 'threshold': %.17g, never set (training did not finish)", file, thr); goto out; }
        if (w && (rc = broadcast(&s->threshold, thr, s->d_sae)) != SV_OK) goto out;
    }
    if (!w) goto out;
    if (c->linear && ((rc = transpose(&s->W_enc, s->d_sae, s->d_in)) != SV_OK ||
                      (rc = transpose(&s->W_dec, s->d_in, s->d_sae)) != SV_OK))
        goto out;
    if (strcmp(cls, "AutoEncoder") == 0) {
        /* AutoEncoder.from_pretrained(normalize_decoder=True): unless every
         * decoder column already has unit norm (torch.allclose: |n-1| <=
         * 1e-8 + 1e-5), decoder /= n_j, encoder weight and bias *= n_j. */
        int unit = 1;
        double *n = sv_malloc((size_t)s->d_sae * sizeof *n);
        if (!n) { rc = SV_EINTERNAL; goto out; }
        for (int64_t j = 0; j < s->d_sae; j++) {
            double n2 = 0;
            for (int64_t i = 0; i < s->d_in; i++) n2 += s->W_dec[j * s->d_in + i] * s->W_dec[j * s->d_in + i];
            n[j] = sqrt(n2);
            if (!(fabs(n[j] - 1) <= 1e-8 + 1e-5)) unit = 0;
        }
        if (!unit) {
            for (int64_t j = 0; j < s->d_sae; j++) {
                for (int64_t i = 0; i < s->d_in; i++) {
                    s->W_dec[j * s->d_in + i] /= n[j];
                    s->W_enc[i * s->d_sae + j] *= n[j];
                }
                s->b_enc[j] *= n[j];
            }
            snprintf(s->note, sizeof s->note, "decoder columns normalized as AutoEncoder.from_pretrained does");
        }
        free(n);
    }
out:
    if (opened) sv_pt_close(&src.pt);
    cJSON_Delete(cfg);
    free(cf);
    free(file);
    return rc;
}

/* ------------------------------------------------------------------ table */

typedef struct {
    const char *name;
    int (*probe)(const char *path);
    sv_rc (*load)(sv_native *s, const char *path, int with_weights);
} nfmt;

static int probe_gemma(const char *p) { return (is_dir(p) && has(p, "params.npz")) || (is_file(p) && ends_with(p, ".npz")); }
static int probe_llama(const char *p) { return is_dir(p) && has(p, "hyperparams.json") && has(p, "checkpoints/final.safetensors"); }
static int probe_sparsify(const char *p) { return is_dir(p) && has(p, "cfg.json") && has(p, "sae.safetensors"); }
static int probe_openai(const char *p) { return is_file(p) && ends_with(p, ".pt"); }
static int probe_dl(const char *p) { return is_dir(p) && has(p, "ae.pt") && has(p, "config.json"); }

static const nfmt formats[] = {
    {"gemma_scope", probe_gemma, load_gemma},
    {"llama_scope", probe_llama, load_llama},
    {"sparsify", probe_sparsify, load_sparsify},
    {"openai", probe_openai, load_openai},
    {"dictionary_learning", probe_dl, load_dl},
};

const char *sv_native_probe(const char *path)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].probe(path)) return formats[i].name;
    return NULL;
}

int sv_native_probe_as(const char *format, const char *path)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, format) == 0) return formats[i].probe(path);
    return 0;
}

void sv_native_free(sv_native *s)
{
    if (!s) return;
    double *a[] = {s->W_enc, s->b_enc, s->W_dec, s->b_dec, s->threshold, s->W_skip, s->b_gate, s->r_mag, s->b_mag};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
    for (int i = 0; i < s->n_files; i++) free(s->files[i]);
    memset(s, 0, sizeof *s);
}

sv_rc sv_native_load(sv_native *s, const char *path, int with_weights)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].probe(path)) {
            s->format = formats[i].name;
            sv_rc rc = formats[i].load(s, path, with_weights);
            if (rc != SV_OK) {
                sv_native_free(s);
                return rc;
            }
            if (s->d_out <= 0) s->d_out = s->d_in;
            return SV_OK;
        }
    return sv_fail(SV_EINPUT, "%s: not an SAE in a known format (SAELens, Gemma Scope, Llama Scope, sparsify, OpenAI .pt, dictionary_learning)", path);
}

/* ---------------------------------------------------------------- adapter */

/* Move a canonical array into the working precision: precision 64 takes
 * the array itself, 32 converts and frees it, so a load never holds a
 * double and a float copy of more than one tensor at a time. */
static sv_rc to_prec(double **src, size_t n, int precision, void **out)
{
    *out = NULL;
    if (!*src) return SV_OK;
    if (precision == 64) {
        *out = *src;
        *src = NULL;
        return SV_OK;
    }
    float *p = sv_malloc(n * sizeof(float));
    if (!p) return SV_EINTERNAL;
    for (size_t i = 0; i < n; i++) p[i] = (float)(*src)[i];
    free(*src);
    *src = NULL;
    *out = p;
    return SV_OK;
}

sv_rc sv_native_cfg(const sv_native *n, const char *path, sv_sae_cfg *c)
{
    memset(c, 0, sizeof *c);
    static const sv_arch arch[] = {[SV_NACT_RELU] = SV_ARCH_STANDARD, [SV_NACT_JUMPRELU] = SV_ARCH_JUMPRELU,
                                   [SV_NACT_TOPK] = SV_ARCH_TOPK, [SV_NACT_GATED] = SV_ARCH_GATED,
                                   [SV_NACT_SIGNED_TOPK] = SV_ARCH_SIGNED_TOPK, [SV_NACT_GROUPMAX] = SV_ARCH_GROUPMAX};
    if (!n->transcoder && n->d_out != n->d_in)
        return sv_fail(SV_EINPUT, "%s: %s: decoder width %lld differs from d_in %lld but the SAE is not a transcoder",
                       path, n->format, (long long)n->d_out, (long long)n->d_in);
    /* Skip connections read the raw input and transcoders' outputs are not
     * de-normalized: a normalization is refused rather than half-applied. */
    if ((n->transcoder || n->skip || n->W_skip) && n->layer_norm)
        return sv_fail(SV_EINPUT, "%s: %s: layer_norm with a skip connection or transcoder is not supported", path, n->format);
    c->arch = arch[n->act];
    c->d_in = n->d_in;
    c->d_sae = n->d_sae;
    c->k = n->act == SV_NACT_TOPK || n->act == SV_NACT_SIGNED_TOPK || n->act == SV_NACT_GROUPMAX ? n->k : 0;
    c->apply_b_dec_to_input = n->apply_b_dec_to_input;
    c->normalize = n->layer_norm ? SV_NORM_LAYER_NORM : SV_NORM_NONE;
    c->transcoder = n->transcoder;
    c->skip = n->skip || n->W_skip != NULL;
    c->d_out = n->d_out > 0 ? n->d_out : n->d_in;
    snprintf(c->dtype, sizeof c->dtype, "float32");
    return SV_OK;
}

sv_rc sv_native_fill_sae(sv_native *n, const char *path, sv_sae *s)
{
    int precision = s->precision;
    if (precision != 32 && precision != 64) return sv_fail(SV_EINTERNAL, "%s: precision must be 32 or 64", path);
    sv_rc rc = sv_native_cfg(n, path, &s->cfg);
    if (rc != SV_OK) return rc;
    if (!n->W_enc) return sv_fail(SV_EINTERNAL, "%s: weights were not loaded", path);
    s->scaling_factor = 1.0;
    size_t di = (size_t)n->d_in, ds = (size_t)n->d_sae, dout = (size_t)sv_cfg_d_out(&s->cfg);
    /* Arrays the architecture does not use stay with n (freed by sv_native_free). */
    double *none = NULL;
    if ((rc = to_prec(&n->W_enc, di * ds, precision, &s->W_enc)) != SV_OK ||
        (rc = to_prec(n->act == SV_NACT_GATED ? &none : &n->b_enc, ds, precision, &s->b_enc)) != SV_OK ||
        (rc = to_prec(&n->W_dec, ds * dout, precision, &s->W_dec)) != SV_OK ||
        (rc = to_prec(&n->b_dec, dout, precision, &s->b_dec)) != SV_OK ||
        (rc = to_prec(&n->W_skip, dout * di, precision, &s->W_skip)) != SV_OK ||
        (rc = to_prec(n->act == SV_NACT_JUMPRELU ? &n->threshold : &none, ds, precision, &s->threshold)) != SV_OK ||
        (rc = to_prec(&n->b_gate, ds, precision, &s->b_gate)) != SV_OK ||
        (rc = to_prec(&n->r_mag, ds, precision, &s->r_mag)) != SV_OK ||
        (rc = to_prec(&n->b_mag, ds, precision, &s->b_mag)) != SV_OK)
        return rc;
    if (n->act == SV_NACT_JUMPRELU && !s->threshold) return sv_fail(SV_EINPUT, "%s: jumprelu without threshold", path);
    if (n->act == SV_NACT_GATED && (!s->b_gate || !s->r_mag || !s->b_mag)) return sv_fail(SV_EINPUT, "%s: gated tensors missing", path);
    if (n->act != SV_NACT_GATED && !s->b_enc) return sv_fail(SV_EINPUT, "%s: encoder bias missing", path);
    /* Working-precision values must stay finite (float64 weights beyond float range). */
    if (precision == 32) {
        void *arrs[] = {s->W_enc, s->b_enc, s->W_dec, s->b_dec, s->threshold, s->b_gate, s->r_mag, s->b_mag, s->W_skip};
        size_t lens[] = {di * ds, ds, ds * dout, dout, ds, ds, ds, ds, dout * di};
        for (size_t a = 0; a < 9; a++) {
            const size_t bad = arrs[a] ? sv_first_nonfinite(arrs[a], lens[a], 32) : lens[a];
            if (bad < lens[a])
                return sv_fail(SV_EINPUT, "%s: a weight overflows float32 (array %zu, index %zu)", path, a, bad);
        }
    }
    return SV_OK;
}

sv_rc sv_native_to_sae(sv_native *n, const char *path, int precision, sv_sae *s)
{
    memset(s, 0, sizeof *s);
    s->precision = precision;
    sv_rc rc = SV_OK;
    if (!(s->dir = sv_strdup(path))) return SV_EINTERNAL;
    if ((rc = sv_native_fill_sae(n, path, s)) != SV_OK) goto out;
    /* Per latent, sums over i in order, as for SAELens SAEs. */
    rc = sv_sae_derive(s);
out:
    if (rc != SV_OK) sv_sae_free(s);
    return rc;
}

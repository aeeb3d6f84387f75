/* sae.c: cfg.json parsing (current and pre-6.0 flat configs), loading all
 * architectures at both precisions, derived norms, and input errors. */
#include "saeval/half.h"
#include "saeval/arch.h"
#include "saeval/fmt_saelens.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fails;
static char base[64];

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                           \
            fprintf(stderr, "\n");                                  \
            fails++;                                                \
        }                                                           \
    } while (0)

/* ------------------------------------------------------------ fixtures */

static unsigned rng = 1;
static double urand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (rng >> 8) / 16777216.0 * 2 - 1; /* [-1, 1) */
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "w");
    if (!fp) { perror(p); exit(2); }
    fputs(text, fp);
    fclose(fp);
}

/* The doubles written for one SAE, by tensor. */
typedef struct {
    int d_in, d_sae;
    double *W_enc, *b_enc, *W_dec, *b_dec, *threshold, *b_gate, *r_mag, *b_mag;
} weights;

static void free_weights(weights *w)
{
    free(w->W_enc); free(w->b_enc); free(w->W_dec); free(w->b_dec);
    free(w->threshold); free(w->b_gate); free(w->r_mag); free(w->b_mag);
    memset(w, 0, sizeof *w);
}

static double *rand_vec(int n)
{
    double *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = urand();
    return v;
}

/* Make DIR with cfg.json (text given) and sae_weights.safetensors holding
 * the tensors for arch in dtype. skip: a tensor name to leave out; bad: a
 * tensor name written with a transposed / wrong shape. */
static void make_sae(const char *dir, const char *cfg, sv_arch arch, int d_in, int d_sae,
                     sv_dtype dt, weights *w, const char *skip, const char *bad)
{
    mkdir(dir, 0755);
    write_text(dir, "cfg.json", cfg);
    memset(w, 0, sizeof *w);
    w->d_in = d_in;
    w->d_sae = d_sae;
    w->W_enc = rand_vec(d_in * d_sae);
    w->W_dec = rand_vec(d_sae * d_in);
    w->b_dec = rand_vec(d_in);
    /* Latent 1: zero decoder row; latent 2: zero encoder column -> cos 0. */
    if (d_sae > 2) {
        for (int i = 0; i < d_in; i++) w->W_dec[1 * d_in + i] = 0;
        for (int i = 0; i < d_in; i++) w->W_enc[i * d_sae + 2] = 0;
    }
    sv_st_wtensor t[8];
    int n = 0;
    t[n++] = (sv_st_wtensor){"W_enc", dt, 2, {d_in, d_sae}, w->W_enc};
    if (arch != SV_ARCH_GATED) {
        w->b_enc = rand_vec(d_sae);
        t[n++] = (sv_st_wtensor){"b_enc", dt, 1, {d_sae}, w->b_enc};
    }
    t[n++] = (sv_st_wtensor){"W_dec", dt, 2, {d_sae, d_in}, w->W_dec};
    t[n++] = (sv_st_wtensor){"b_dec", dt, 1, {d_in}, w->b_dec};
    if (arch == SV_ARCH_JUMPRELU) {
        w->threshold = rand_vec(d_sae);
        t[n++] = (sv_st_wtensor){"threshold", dt, 1, {d_sae}, w->threshold};
    }
    if (arch == SV_ARCH_GATED) {
        w->b_gate = rand_vec(d_sae);
        w->r_mag = rand_vec(d_sae);
        w->b_mag = rand_vec(d_sae);
        t[n++] = (sv_st_wtensor){"b_gate", dt, 1, {d_sae}, w->b_gate};
        t[n++] = (sv_st_wtensor){"r_mag", dt, 1, {d_sae}, w->r_mag};
        t[n++] = (sv_st_wtensor){"b_mag", dt, 1, {d_sae}, w->b_mag};
    }
    /* Drop or distort the requested tensor (data length stays valid). */
    for (int i = 0; i < n; i++) {
        if (skip && strcmp(t[i].name, skip) == 0) { t[i] = t[n - 1]; n--; i--; continue; }
        if (bad && strcmp(t[i].name, bad) == 0) {
            if (t[i].ndim == 2) {
                int64_t a = t[i].shape[0];
                t[i].shape[0] = t[i].shape[1];
                t[i].shape[1] = a;
            } else {
                t[i].shape[0]--;
            }
        }
    }
    char p[256];
    snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
    if (sv_st_write(p, t, n) != SV_OK) { fprintf(stderr, "write %s: %s\n", p, sv_errmsg()); exit(2); }
}

/* The value a double takes after storage in dt and loading at precision. */
static double expect(double x, sv_dtype dt, int precision)
{
    double v;
    switch (dt) {
    case SV_DT_F32: v = (float)x; break;
    case SV_DT_F16: v = sv_f16_to_f32(sv_f32_to_f16((float)x)); break;
    case SV_DT_BF16: v = sv_bf16_to_f32(sv_f32_to_bf16((float)x)); break;
    default: v = x; break;
    }
    return precision == 32 ? (double)(float)v : v;
}

static double at(const void *p, int precision, size_t i)
{
    return precision == 32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

static void check_array(const char *what, const void *got, const double *want, size_t n, sv_dtype dt,
                        int precision)
{
    CHECK((got != NULL) == (want != NULL), "%s: presence %d, want %d", what, got != NULL, want != NULL);
    if (!got || !want) return;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (at(got, precision, i) != expect(want[i], dt, precision) && bad++ < 3)
            fprintf(stderr, "FAIL %s[%zu] = %.17g, want %.17g\n", what, i, at(got, precision, i),
                    expect(want[i], dt, precision));
    fails += bad;
}

/* Norms from the loaded arrays with the obvious loops. */
static void check_norms(const sv_sae *s)
{
    int ni = (int)s->cfg.d_in, ns = (int)s->cfg.d_sae, pr = s->precision;
    for (int j = 0; j < ns; j++) {
        double ee = 0, dd = 0, ed = 0;
        for (int i = 0; i < ni; i++) {
            double e = at(s->W_enc, pr, (size_t)i * ns + j), d = at(s->W_dec, pr, (size_t)j * ni + i);
            ee += e * e;
            dd += d * d;
            ed += e * d;
        }
        double en = sqrt(ee), dn = sqrt(dd);
        double cs = (en > 0 && dn > 0) ? ed / (en * dn) : 0;
        CHECK(fabs(s->enc_norm[j] - en) <= 1e-13 * en, "enc_norm[%d] = %.17g want %.17g", j, s->enc_norm[j], en);
        CHECK(fabs(s->dec_norm[j] - dn) <= 1e-13 * dn, "dec_norm[%d] = %.17g want %.17g", j, s->dec_norm[j], dn);
        CHECK(fabs(s->enc_dec_cos[j] - cs) <= 1e-13, "enc_dec_cos[%d] = %.17g want %.17g", j, s->enc_dec_cos[j], cs);
    }
    if (ns > 2) {
        CHECK(s->dec_norm[1] == 0 && s->enc_dec_cos[1] == 0, "zero decoder row: norm %g cos %g",
              s->dec_norm[1], s->enc_dec_cos[1]);
        CHECK(s->enc_norm[2] == 0 && s->enc_dec_cos[2] == 0, "zero encoder column: norm %g cos %g",
              s->enc_norm[2], s->enc_dec_cos[2]);
        CHECK(s->enc_dec_cos[0] != 0 && fabs(s->enc_dec_cos[0]) <= 1, "cos[0] = %g", s->enc_dec_cos[0]);
    }
}

static void subdir(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", base, name);
}

/* ------------------------------------------------------------ loading */

static void load_all(void)
{
    static const char *cfgs[4] = {
        "{\"architecture\":\"standard\",\"d_in\":6,\"d_sae\":10,\"dtype\":\"float32\",\"hook_name\":\"x\"}",
        "{\"architecture\":\"topk\",\"d_in\":6,\"d_sae\":10,\"k\":3,\"rescale_acts_by_decoder_norm\":true,"
        "\"apply_b_dec_to_input\":false}",
        "{\"architecture\":\"jumprelu\",\"d_in\":6,\"d_sae\":10,\"normalize_activations\":\"layer_norm\","
        "\"dtype\":\"bfloat16\"}",
        "{\"architecture\":\"gated\",\"d_in\":6,\"d_sae\":10,\"normalize_activations\":null,"
        "\"metadata\":{\"a\":[1,2]}}",
    };
    static const sv_dtype dts[] = {SV_DT_F32, SV_DT_F64, SV_DT_F16, SV_DT_BF16};
    for (int a = 0; a < 4; a++)
        for (int di = 0; di < 4; di++) {
            char dir[128];
            char nm[32];
            snprintf(nm, sizeof nm, "arch%d_%s", a, sv_dtype_name(dts[di]));
            subdir(dir, sizeof dir, nm);
            weights w;
            make_sae(dir, cfgs[a], (sv_arch)a, 6, 10, dts[di], &w, NULL, NULL);
            for (int pr = 32; pr <= 64; pr += 32) {
                sv_sae s;
                sv_rc rc = sv_sae_load(&s, dir, pr, 0, 0);
                CHECK(rc == SV_OK, "%s p%d: %s", nm, pr, sv_errmsg());
                if (rc != SV_OK) continue;
                CHECK(s.cfg.arch == (sv_arch)a && s.cfg.d_in == 6 && s.cfg.d_sae == 10, "%s: cfg", nm);
                CHECK(s.precision == pr && s.scaling_factor == 1.0, "%s: precision/scale", nm);
                CHECK(s.dir && strcmp(s.dir, dir) == 0, "%s: dir", nm);
                check_array("W_enc", s.W_enc, w.W_enc, 60, dts[di], pr);
                check_array("b_enc", s.b_enc, w.b_enc, 10, dts[di], pr);
                check_array("W_dec", s.W_dec, w.W_dec, 60, dts[di], pr);
                check_array("b_dec", s.b_dec, w.b_dec, 6, dts[di], pr);
                check_array("threshold", s.threshold, w.threshold, 10, dts[di], pr);
                check_array("b_gate", s.b_gate, w.b_gate, 10, dts[di], pr);
                check_array("r_mag", s.r_mag, w.r_mag, 10, dts[di], pr);
                check_array("b_mag", s.b_mag, w.b_mag, 10, dts[di], pr);
                check_norms(&s);
                char p[256];
                struct stat st;
                snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
                CHECK(stat(p, &st) == 0 && s.weights_bytes == (uint64_t)st.st_size,
                      "%s: weights_bytes %llu", nm, (unsigned long long)s.weights_bytes);
                if (a == SV_ARCH_TOPK)
                    CHECK(s.cfg.k == 3 && s.cfg.rescale_acts_by_decoder_norm == 1 &&
                              s.cfg.apply_b_dec_to_input == 0, "topk cfg fields");
                if (a == SV_ARCH_JUMPRELU)
                    CHECK(s.cfg.normalize == SV_NORM_LAYER_NORM && !strcmp(s.cfg.dtype, "bfloat16"),
                          "jumprelu cfg fields");
                if (a == SV_ARCH_GATED)
                    CHECK(s.cfg.normalize == SV_NORM_NONE && s.cfg.k == 0, "gated cfg fields");
                sv_sae_free(&s);
                CHECK(s.W_enc == NULL && s.dec_norm == NULL && s.dir == NULL, "free did not clear");
                sv_sae_free(&s); /* twice is fine */
            }
            free_weights(&w);
        }
}

/* ------------------------------------------------------------ cfg.json */

static void cfg_ok(void)
{
    sv_sae_cfg c;
    const char *j = "{\"d_in\": 16, \"d_sae\": 64}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK, "minimal: %s", sv_errmsg());
    CHECK(c.arch == SV_ARCH_STANDARD && c.d_in == 16 && c.d_sae == 64 && c.k == 0 &&
              c.rescale_acts_by_decoder_norm == 0 && c.apply_b_dec_to_input == 1 &&
              c.normalize == SV_NORM_NONE && !strcmp(c.dtype, "float32"),
          "minimal: defaults wrong");

    /* Pre-6.0 flat topk config: k from activation_fn_kwargs. */
    j = "{\"d_in\": 16, \"d_sae\": 64, \"activation_fn_str\": \"topk\","
        " \"activation_fn_kwargs\": {\"k\": 8}, \"normalize_activations\": \"none\","
        " \"model_name\": \"gpt2\", \"hook_point_layer\": 5}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK, "flat topk: %s", sv_errmsg());
    CHECK(c.arch == SV_ARCH_TOPK && c.k == 8, "flat topk: arch %d k %lld", c.arch, (long long)c.k);
    j = "{\"d_in\": 16, \"d_sae\": 64, \"activation_fn\": \"topk\", \"activation_fn_kwargs\": {\"k\": 64}}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK && c.arch == SV_ARCH_TOPK && c.k == 64,
          "activation_fn topk: %s", sv_errmsg());
    /* Issue 11: "architecture": "standard" + activation_fn_str topk is top-k
     * when the cfg predates 6.0 (no version, or below 6), standard from 6.0. */
    static const struct { const char *ver; sv_arch want; } pre6[] = {
        {"", SV_ARCH_TOPK},
        {", \"sae_lens_version\": \"5.17.1\"", SV_ARCH_TOPK},
        {", \"metadata\": {\"sae_lens_version\": \"4.4.2\"}", SV_ARCH_TOPK},
        {", \"metadata\": {\"sae_lens_version\": \"6.5.0\"}", SV_ARCH_STANDARD},
        {", \"sae_lens_version\": \"6.0.0-rc.0\"", SV_ARCH_STANDARD},
    };
    for (size_t i = 0; i < sizeof pre6 / sizeof pre6[0]; i++) {
        char b[512];
        snprintf(b, sizeof b, "{\"architecture\": \"standard\", \"d_in\": 16, \"d_sae\": 64, \"activation_fn_str\": "
                              "\"topk\", \"activation_fn_kwargs\": {\"k\": 8}%s}", pre6[i].ver);
        CHECK(sv_sae_cfg_parse(&c, b, strlen(b), "c.json") == SV_OK, "pre6 %zu: %s", i, sv_errmsg());
        CHECK(c.arch == pre6[i].want && c.k == (pre6[i].want == SV_ARCH_TOPK ? 8 : 0), "pre6 %zu: arch %d k %lld", i,
              c.arch, (long long)c.k);
    }
    j = "{\"architecture\": \"standard\", \"d_in\": 16, \"d_sae\": 64, \"sae_lens_version\": 6}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_EINPUT && strstr(sv_errmsg(), "sae_lens_version"),
          "numeric version: %s", sv_errmsg());
    j = "{\"architecture\": \"signed_topk\", \"d_in\": 16, \"d_sae\": 64, \"k\": 4}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_EINPUT && strstr(sv_errmsg(), "not a SAELens architecture"),
          "signed_topk in a SAELens cfg: %s", sv_errmsg());
    j = "{\"d_in\": 16, \"d_sae\": 64, \"activation_fn_str\": \"relu\", \"activation_fn_kwargs\": {}}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK && c.arch == SV_ARCH_STANDARD && c.k == 0,
          "flat relu: %s", sv_errmsg());
    j = "{\"architecture\": \"topk\", \"d_in\": 16, \"d_sae\": 64, \"activation_fn_kwargs\": {\"k\": 5}}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK && c.k == 5, "topk k in kwargs: %s",
          sv_errmsg());
    j = "{\"architecture\": \"standard\", \"d_in\": 16, \"d_sae\": 64,"
        " \"normalize_activations\": \"expected_average_only_in\"}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK &&
              c.normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN, "expected_average_only_in: %s", sv_errmsg());
    j = "{\"d_in\": 16, \"d_sae\": 64, \"normalize_activations\": \"constant_norm_rescale\"}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK &&
              c.normalize == SV_NORM_CONSTANT_NORM_RESCALE, "constant_norm_rescale: %s", sv_errmsg());

    /* Pre-6.0 boolean normalize_activations. */
    j = "{\"d_in\": 16, \"d_sae\": 64, \"normalize_activations\": true}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK &&
              c.normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN, "bool true: %s", sv_errmsg());
    j = "{\"d_in\": 16, \"d_sae\": 64, \"normalize_activations\": false}";
    CHECK(sv_sae_cfg_parse(&c, j, strlen(j), "c.json") == SV_OK && c.normalize == SV_NORM_NONE,
          "bool false: %s", sv_errmsg());

    /* The text need not be NUL-terminated: parse only n bytes. */
    char buf[64];
    const char *t = "{\"d_in\": 2, \"d_sae\": 3}";
    size_t n = strlen(t);
    memcpy(buf, t, n);
    memset(buf + n, 'x', sizeof buf - n);
    CHECK(sv_sae_cfg_parse(&c, buf, n, "c.json") == SV_OK && c.d_sae == 3, "unterminated: %s", sv_errmsg());

    CHECK(!strcmp(sv_arch_name(SV_ARCH_STANDARD), "standard") && !strcmp(sv_arch_name(SV_ARCH_TOPK), "topk") &&
              !strcmp(sv_arch_name(SV_ARCH_JUMPRELU), "jumprelu") && !strcmp(sv_arch_name(SV_ARCH_GATED), "gated"),
          "sv_arch_name");
    CHECK(!strcmp(sv_norm_name(SV_NORM_NONE), "none") && !strcmp(sv_norm_name(SV_NORM_LAYER_NORM), "layer_norm") &&
              !strcmp(sv_norm_name(SV_NORM_CONSTANT_NORM_RESCALE), "constant_norm_rescale") &&
              !strcmp(sv_norm_name(SV_NORM_EXPECTED_AVERAGE_ONLY_IN), "expected_average_only_in"),
          "sv_norm_name");
}

static void cfg_fail(const char *json, const char *frag, int line)
{
    sv_sae_cfg c;
    sv_rc rc = sv_sae_cfg_parse(&c, json, strlen(json), "d/cfg.json");
    if (rc != SV_EINPUT || !strstr(sv_errmsg(), frag)) {
        fprintf(stderr, "FAIL line %d: cfg %s: rc=%d msg='%s', want SV_EINPUT and '%s'\n", line, json, (int)rc,
                sv_errmsg(), frag);
        fails++;
    }
}
#define CFG_FAIL(json, frag) cfg_fail(json, frag, __LINE__)

static void cfg_errors(void)
{
    CFG_FAIL("", "d/cfg.json: not valid JSON");
    CFG_FAIL("{\"d_in\": 4,", "d/cfg.json: not valid JSON");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8} }", "d/cfg.json: not valid JSON");
    CFG_FAIL("[4, 8]", "d/cfg.json: not a JSON object");
    CFG_FAIL("{\"d_sae\": 8}", "d/cfg.json: d_in: missing");
    CFG_FAIL("{\"d_in\": 4}", "d/cfg.json: d_sae: missing");
    CFG_FAIL("{\"d_in\": null, \"d_sae\": 8}", "d/cfg.json: d_in: missing");
    CFG_FAIL("{\"d_in\": \"4\", \"d_sae\": 8}", "d/cfg.json: d_in: must be a positive integer");
    CFG_FAIL("{\"d_in\": 4.5, \"d_sae\": 8}", "d/cfg.json: d_in: must be a positive integer");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 0}", "d/cfg.json: d_sae: must be a positive integer");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": -8}", "d/cfg.json: d_sae: must be a positive integer");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 1e300}", "d/cfg.json: d_sae: must be a positive integer");
    CFG_FAIL("{\"architecture\": \"matryoshka\", \"d_in\": 4, \"d_sae\": 8}", "architecture: unknown architecture 'matryoshka'");
    CFG_FAIL("{\"architecture\": 3, \"d_in\": 4, \"d_sae\": 8}", "d/cfg.json: architecture: must be a string");
    CFG_FAIL("{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8}", "d/cfg.json: k: missing");
    CFG_FAIL("{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8, \"k\": 0}", "d/cfg.json: k: must be");
    CFG_FAIL("{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8, \"k\": -1}", "d/cfg.json: k: must be");
    CFG_FAIL("{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8, \"k\": 9}", "d/cfg.json: k: must be");
    CFG_FAIL("{\"architecture\": \"topk\", \"d_in\": 4, \"d_sae\": 8, \"k\": 2.5}", "d/cfg.json: k: must be");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"activation_fn_str\": \"topk\"}", "d/cfg.json: k: missing");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"activation_fn_str\": \"topk\", \"activation_fn_kwargs\": {\"k\": 80}}",
             "d/cfg.json: k: must be");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"normalize_activations\": \"bogus\"}",
             "d/cfg.json: normalize_activations: unknown value 'bogus'");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"normalize_activations\": 1}", "d/cfg.json: normalize_activations:");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"apply_b_dec_to_input\": 1}", "d/cfg.json: apply_b_dec_to_input: must be");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"rescale_acts_by_decoder_norm\": \"yes\"}",
             "d/cfg.json: rescale_acts_by_decoder_norm: must be");
    CFG_FAIL("{\"d_in\": 4, \"d_sae\": 8, \"dtype\": 32}", "d/cfg.json: dtype: must be a string");
}

/* ------------------------------------------------------------ load errors */

static void load_fail(const char *dir, int has_scale, double scale, const char *frag1, const char *frag2, int line)
{
    sv_sae s;
    sv_rc rc = sv_sae_load(&s, dir, 32, has_scale, scale);
    if (rc != SV_EINPUT || !strstr(sv_errmsg(), frag1) || (frag2 && !strstr(sv_errmsg(), frag2))) {
        fprintf(stderr, "FAIL line %d: load %s: rc=%d msg='%s', want SV_EINPUT and '%s' '%s'\n", line, dir,
                (int)rc, sv_errmsg(), frag1, frag2 ? frag2 : "");
        fails++;
    }
    if (rc == SV_OK) sv_sae_free(&s);
    CHECK(s.W_enc == NULL && s.dir == NULL && s.dec_norm == NULL, "line %d: failed load left allocations", line);
    sv_sae_free(&s); /* safe after a failed load */
}
#define LOAD_FAIL(dir, frag1, frag2) load_fail(dir, 0, 0, frag1, frag2, __LINE__)

static void load_errors(void)
{
    char dir[128], msg[256];
    weights w;
    const char *std = "{\"architecture\":\"standard\",\"d_in\":4,\"d_sae\":5}";

    subdir(dir, sizeof dir, "nonexistent");
    snprintf(msg, sizeof msg, "%s/cfg.json: cannot open: ", dir);
    LOAD_FAIL(dir, msg, "No such file");
    sv_sae_cfg c;
    CHECK(sv_sae_load_cfg(dir, &c) == SV_EINPUT && strstr(sv_errmsg(), msg), "load_cfg missing: %s", sv_errmsg());

    /* cfg.json present, weights absent. */
    subdir(dir, sizeof dir, "noweights");
    mkdir(dir, 0755);
    write_text(dir, "cfg.json", std);
    CHECK(sv_sae_load_cfg(dir, &c) == SV_OK && c.d_in == 4 && c.d_sae == 5, "load_cfg: %s", sv_errmsg());
    snprintf(msg, sizeof msg, "%s/sae_weights.safetensors: cannot open: ", dir);
    LOAD_FAIL(dir, msg, NULL);

    /* Bad cfg.json reached through load names the file. */
    subdir(dir, sizeof dir, "badcfg");
    make_sae(dir, "{\"d_in\": 4, \"d_sae\": \"5\"}", SV_ARCH_STANDARD, 4, 5, SV_DT_F32, &w, NULL, NULL);
    snprintf(msg, sizeof msg, "%s/cfg.json: d_sae: must be a positive integer", dir);
    LOAD_FAIL(dir, msg, NULL);
    free_weights(&w);

    /* Missing tensors. */
    struct { sv_arch arch; const char *cfg; const char *skip; } miss[] = {
        {SV_ARCH_STANDARD, std, "W_dec"},
        {SV_ARCH_STANDARD, std, "b_enc"},
        {SV_ARCH_STANDARD, std, "b_dec"},
        {SV_ARCH_JUMPRELU, "{\"architecture\":\"jumprelu\",\"d_in\":4,\"d_sae\":5}", "threshold"},
        {SV_ARCH_GATED, "{\"architecture\":\"gated\",\"d_in\":4,\"d_sae\":5}", "b_mag"},
        {SV_ARCH_GATED, "{\"architecture\":\"gated\",\"d_in\":4,\"d_sae\":5}", "b_gate"},
        {SV_ARCH_GATED, "{\"architecture\":\"gated\",\"d_in\":4,\"d_sae\":5}", "r_mag"},
    };
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "miss_%zu", i);
        subdir(dir, sizeof dir, nm);
        make_sae(dir, miss[i].cfg, miss[i].arch, 4, 5, SV_DT_F32, &w, miss[i].skip, NULL);
        snprintf(msg, sizeof msg, "tensor %s: missing", miss[i].skip);
        LOAD_FAIL(dir, msg, "sae_weights.safetensors");
        free_weights(&w);
    }

    /* Shape mismatches: transposed matrices, short vectors. */
    subdir(dir, sizeof dir, "shape_wenc");
    make_sae(dir, std, SV_ARCH_STANDARD, 4, 5, SV_DT_F32, &w, NULL, "W_enc");
    LOAD_FAIL(dir, "tensor W_enc: shape [5, 4]", "expected [4, 5]");
    free_weights(&w);
    subdir(dir, sizeof dir, "shape_bdec");
    make_sae(dir, std, SV_ARCH_STANDARD, 4, 5, SV_DT_F32, &w, NULL, "b_dec");
    LOAD_FAIL(dir, "tensor b_dec: shape [3]", "expected [4]");
    free_weights(&w);
    /* cfg.json disagrees with correctly shaped weights. */
    subdir(dir, sizeof dir, "shape_cfg");
    make_sae(dir, "{\"d_in\":4,\"d_sae\":6}", SV_ARCH_STANDARD, 4, 5, SV_DT_F32, &w, NULL, NULL);
    LOAD_FAIL(dir, "tensor W_enc: shape [4, 5]", "expected [4, 6]");
    free_weights(&w);
}

static void scaling(void)
{
    char dir[128], msg[512];
    weights w;
    subdir(dir, sizeof dir, "expavg");
    make_sae(dir, "{\"d_in\":4,\"d_sae\":5,\"normalize_activations\":\"expected_average_only_in\"}",
             SV_ARCH_STANDARD, 4, 5, SV_DT_F32, &w, NULL, NULL);
    snprintf(msg, sizeof msg,
             "%s: normalize_activations=expected_average_only_in needs a scaling factor: set scaling_factor "
             "for this SAE in the config or provide activation_scaler.json", dir);
    LOAD_FAIL(dir, msg, NULL);

    sv_sae s;
    CHECK(sv_sae_load(&s, dir, 64, 1, 2.5) == SV_OK && s.scaling_factor == 2.5, "has_scale: %s", sv_errmsg());
    sv_sae_free(&s);
    load_fail(dir, 1, -1.0, "scaling_factor", NULL, __LINE__);

    write_text(dir, "activation_scaler.json", "{\"scaling_factor\": 0.125}\n");
    CHECK(sv_sae_load(&s, dir, 32, 0, 0) == SV_OK && s.scaling_factor == 0.125, "scaler file: %s (%g)",
          sv_errmsg(), s.scaling_factor);
    sv_sae_free(&s);
    /* The config's value wins over the file. */
    CHECK(sv_sae_load(&s, dir, 32, 1, 3.0) == SV_OK && s.scaling_factor == 3.0, "has_scale over file");
    sv_sae_free(&s);

    write_text(dir, "activation_scaler.json", "{\"scale\": 2}");
    LOAD_FAIL(dir, "activation_scaler.json: scaling_factor", NULL);
    write_text(dir, "activation_scaler.json", "{\"scaling_factor\": ");
    LOAD_FAIL(dir, "activation_scaler.json: not valid JSON", NULL);
    free_weights(&w);

    /* Other normalizations ignore the scale: factor stays 1. */
    subdir(dir, sizeof dir, "layernorm");
    make_sae(dir, "{\"d_in\":4,\"d_sae\":5,\"normalize_activations\":\"layer_norm\"}", SV_ARCH_STANDARD, 4, 5,
             SV_DT_F32, &w, NULL, NULL);
    CHECK(sv_sae_load(&s, dir, 32, 1, 7.0) == SV_OK && s.scaling_factor == 1.0, "layer_norm scale: %s",
          sv_errmsg());
    sv_sae_free(&s);
    free_weights(&w);
}

/* Pre-6.0 flat topk config loaded from disk, with a larger d_sae. */
static void flat_topk_load(void)
{
    char dir[128];
    weights w;
    subdir(dir, sizeof dir, "flat_topk");
    make_sae(dir,
             "{\"model_name\":\"gpt2-small\",\"hook_point\":\"blocks.8.hook_resid_pre\",\"d_in\":12,"
             "\"d_sae\":96,\"b_dec_init_method\":\"zeros\",\"activation_fn_str\":\"topk\","
             "\"activation_fn_kwargs\":{\"k\":16},\"apply_b_dec_to_input\":false,"
             "\"normalize_activations\":\"none\",\"dtype\":\"torch.float32\",\"device\":\"cpu\"}",
             SV_ARCH_TOPK, 12, 96, SV_DT_F32, &w, NULL, NULL);
    sv_sae s;
    sv_rc rc = sv_sae_load(&s, dir, 64, 0, 0);
    CHECK(rc == SV_OK, "flat topk load: %s", sv_errmsg());
    if (rc == SV_OK) {
        CHECK(s.cfg.arch == SV_ARCH_TOPK && s.cfg.k == 16 && s.cfg.apply_b_dec_to_input == 0 &&
                  !strcmp(s.cfg.dtype, "torch.float32"), "flat topk cfg");
        check_array("W_enc", s.W_enc, w.W_enc, 12 * 96, SV_DT_F32, 64);
        check_array("W_dec", s.W_dec, w.W_dec, 12 * 96, SV_DT_F32, 64);
        check_norms(&s);
        sv_sae_free(&s);
    }
    free_weights(&w);
}

/* sv_first_nonfinite against a plain scan that uses no isfinite: NaN is
 * the value unequal to itself, the infinities compare equal to INFINITY.
 * Sizes around its 65536-value blocks; finite extremes (the largest,
 * subnormals, -0) must pass, and NaN, +inf and -inf be found wherever they are. */
static size_t plain_first_bad(const void *p, size_t n, int precision)
{
    for (size_t i = 0; i < n; i++) {
        const double v = precision == 32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
        if (v != v || v == INFINITY || v == -INFINITY) return i;
    }
    return n;
}

static void first_nonfinite(void)
{
    const size_t sizes[] = {0, 1, 7, 65535, 65536, 65537, 200001};
    const double specials[] = {NAN, INFINITY, -INFINITY};
    const double extremes[] = {3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, -0.0, 1.7976931348623157e308};
    for (int prec = 32; prec <= 64; prec += 32) {
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            const size_t n = sizes[si], es = prec == 32 ? sizeof(float) : sizeof(double);
            void *p = malloc((n ? n : 1) * es);
            for (size_t i = 0; i < n; i++) {
                double v = urand() * 2 - 1;
                if (i % 977 == 0) v = extremes[(i / 977) % (prec == 32 ? 5 : 6)];
                if (prec == 32) ((float *)p)[i] = (float)v;
                else ((double *)p)[i] = v;
            }
            size_t got = sv_first_nonfinite(p, n, prec), want = plain_first_bad(p, n, prec);
            CHECK(got == n && want == n, "first_nonfinite p%d n %zu, all finite: %zu (plain scan %zu)", prec, n, got, want);
            for (int t = 0; n > 0 && t < 12; t++) {
                const size_t a = (size_t)(urand() * (double)n) % n, b = t % 3 == 0 ? a : (size_t)(urand() * (double)n) % n;
                const double sa = specials[t % 3], sb = specials[(t + 1) % 3];
                double ka, kb; /* the values they replace */
                if (prec == 32) { ka = ((float *)p)[a]; kb = ((float *)p)[b]; ((float *)p)[a] = (float)sa; ((float *)p)[b] = (float)sb; }
                else { ka = ((double *)p)[a]; kb = ((double *)p)[b]; ((double *)p)[a] = sa; ((double *)p)[b] = sb; }
                got = sv_first_nonfinite(p, n, prec);
                want = plain_first_bad(p, n, prec);
                CHECK(got == want && want == (a < b ? a : b), "first_nonfinite p%d n %zu, bad at %zu and %zu: %zu (plain scan %zu)",
                      prec, n, a, b, got, want);
                if (prec == 32) { ((float *)p)[b] = (float)kb; ((float *)p)[a] = (float)ka; }
                else { ((double *)p)[b] = kb; ((double *)p)[a] = ka; }
            }
            free(p);
        }
    }
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/sv_sae_XXXXXX");
    if (!mkdtemp(base)) { perror("mkdtemp"); return 2; }
    sv_sae zero;
    memset(&zero, 0, sizeof zero);
    sv_sae_free(&zero); /* safe on a zeroed struct */

    first_nonfinite();
    cfg_ok();
    cfg_errors();
    load_all();
    flat_topk_load();
    load_errors();
    scaling();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", base);
    if (fails) {
        fprintf(stderr, "test_sae: %d check(s) failed\n", fails);
        return 1;
    }
    printf("test_sae: ok\n");
    return 0;
}

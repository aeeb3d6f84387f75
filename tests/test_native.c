/* Native SAE formats (nativesae.c) against SAEs written by
 * tests/formats_write.py from known canonical weights (tests/native_gen.py):
 * names, transposes, shapes, activation and flags per format, and the
 * weight changes a project's own loader makes (Language-Model-SAEs folding
 * its normalization and decoder norms, dictionary_learning's AutoEncoder
 * decoder renormalization), recomputed here with plain loops.
 *
 * usage: test_native DIR */
#define TEST_NAME "test_native"
#include "testutil.h"
#include "saeval/arch.h"
#include "saeval/forward.h"
#include "saeval/nativesae.h"
#include "ref.h"

#include <math.h>
#include <string.h>

static const char *dir;

static double *load_f64(const char *cdir, const char *name, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/in/%s.f64", dir, cdir, name);
    FILE *fp = fopen(p, "rb");
    if (!fp) die("cannot open", p);
    double *v = xcalloc(n, sizeof *v);
    if (fread(v, sizeof *v, n, fp) != n) die("short", p);
    fclose(fp);
    return v;
}

static const char *opt(char **kv, int n, const char *key)
{
    size_t l = strlen(key);
    for (int i = 0; i < n; i++)
        if (strncmp(kv[i], key, l) == 0 && kv[i][l] == '=') return kv[i] + l + 1;
    return NULL;
}

/* got == want exactly (tol 0) or within tol relative to max(1, |want|). */
static void same(const char *c, const char *what, const double *got, const double *want, size_t n, double tol)
{
    CHECK(got, "%s: %s missing", c, what);
    for (size_t i = 0; i < n; i++) {
        double err = fabs(got[i] - want[i]), scale = fabs(want[i]) > 1 ? fabs(want[i]) : 1;
        CHECK(tol == 0 ? got[i] == want[i] : err <= tol * scale, "%s: %s[%zu] = %.17g, want %.17g", c, what, i, got[i], want[i]);
    }
}

static int n_cases, n_adapted, n_forward;

/* The evaluator's forward pass (forward.c) on the adapted SAE against the
 * double reference (tests/ref.c) on the canonical arrays: same active
 * latents, values and reconstruction up to summation order. */
static void check_forward(const char *c, const sv_native *n, const sv_sae *s)
{
    static const ref_arch map[] = {REF_STANDARD, REF_JUMPRELU, REF_TOPK, REF_SIGNED_TOPK, REF_GROUPMAX, REF_GATED};
    ref_sae r = {map[n->act], (int)n->d_in, (int)n->d_sae, (int)n->k, 0, n->apply_b_dec_to_input,
                 n->layer_norm ? REF_NORM_LAYER : REF_NORM_NONE, 1, n->W_enc, n->b_enc, n->W_dec, n->b_dec,
                 n->threshold, n->b_gate, n->r_mag, n->b_mag, (int)n->d_out, n->W_skip};
    enum { T = 9 };
    int64_t di = n->d_in, m = n->d_sae, dout = n->d_out;
    float *x = xcalloc((size_t)(T * di), sizeof *x);
    uint64_t st = 12345;
    for (int64_t i = 0; i < T * di; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
    sv_fwd w;
    sv_fwd_set_threads(1);
    CHECK(sv_fwd_init(&w, s, SV_GEMM_ROWS) == SV_OK, "%s: %s", c, sv_errmsg());
    CHECK(sv_fwd_run(&w, x, T) == SV_OK, "%s: %s", c, sv_errmsg());
    double *xd = xcalloc((size_t)di, sizeof *xd), *f = xcalloc((size_t)m, sizeof *f), *xh = xcalloc((size_t)dout, sizeof *xh);
    for (int t = 0; t < T; t++) {
        for (int64_t i = 0; i < di; i++) xd[i] = x[t * di + i];
        ref_forward(&r, xd, f, xh);
        int64_t nz = 0;
        for (int64_t j = 0; j < m; j++) nz += f[j] != 0;
        CHECK(w.rowptr[t + 1] - w.rowptr[t] == nz, "%s: token %d: %lld active, reference %lld", c, t,
              (long long)(w.rowptr[t + 1] - w.rowptr[t]), (long long)nz);
        for (int64_t q = w.rowptr[t]; q < w.rowptr[t + 1]; q++)
            CHECK(fabs(w.val[q] - f[w.idx[q]]) <= 1e-12 * (1 + fabs(f[w.idx[q]])), "%s: token %d latent %d: %.17g vs %.17g",
                  c, t, w.idx[q], w.val[q], f[w.idx[q]]);
        for (int64_t i = 0; i < dout; i++) /* d_out wide: a transcoder's output space */
            CHECK(fabs(w.xhat[t * dout + i] - xh[i]) <= 1e-11 * (1 + fabs(xh[i])), "%s: token %d xhat[%lld]: %.17g vs %.17g",
                  c, t, (long long)i, w.xhat[t * dout + i], xh[i]);
    }
    sv_fwd_free(&w);
    free(x); free(xd); free(f); free(xh);
    n_forward++;
}

/* sv_native_to_sae: cfg fields, weights rounded to the precision, and the
 * per-latent norms recomputed here from those rounded weights. */
static void check_adapter(const char *c, const sv_native *n, const char *path)
{
    for (int prec = 32; prec <= 64; prec += 32) {
        sv_sae s;
        sv_native moved; /* the adapter takes its arrays: a fresh copy each time */
        CHECK(sv_native_load(&moved, path, 1) == SV_OK, "%s: %s", c, sv_errmsg());
        sv_rc rc = sv_native_to_sae(&moved, path, prec, &s);
        CHECK(rc != SV_OK || moved.W_enc == NULL, "%s: W_enc not moved", c);
        sv_native_free(&moved);
        CHECK(rc == SV_OK, "%s: %s", c, sv_errmsg());
        CHECK(s.cfg.d_in == n->d_in && s.cfg.d_sae == n->d_sae && s.precision == prec, "%s: adapter dims", c);
        CHECK(s.cfg.apply_b_dec_to_input == n->apply_b_dec_to_input, "%s: adapter apply_b_dec", c);
        CHECK((s.cfg.normalize == SV_NORM_LAYER_NORM) == (n->layer_norm != 0), "%s: adapter layer_norm", c);
        CHECK(strcmp(sv_arch_name(s.cfg.arch), n->act == SV_NACT_RELU ? "standard" : sv_nact_name(n->act)) == 0,
              "%s: adapter arch %s", c, sv_arch_name(s.cfg.arch));
        CHECK(!sv_arch_has(s.cfg.arch, SV_AF_TOPK) || s.cfg.k == n->k, "%s: adapter k", c);
        CHECK(s.cfg.transcoder == n->transcoder && sv_cfg_d_out(&s.cfg) == n->d_out, "%s: adapter transcoder/d_out", c);
        CHECK((s.W_skip != NULL) == (n->W_skip != NULL) && s.cfg.skip == (n->W_skip != NULL), "%s: adapter W_skip", c);
        int64_t di = n->d_in, m = n->d_sae, dout = n->d_out;
        for (int64_t j = 0; j < m; j++) {
            double en = 0, dn = 0, dot = 0;
            for (int64_t i = 0; i < di; i++) {
                double e = prec == 32 ? (double)(float)n->W_enc[i * m + j] : n->W_enc[i * m + j];
                double ge = prec == 32 ? ((float *)s.W_enc)[i * m + j] : ((double *)s.W_enc)[i * m + j];
                CHECK(ge == e, "%s: adapter W_enc", c);
                en += e * e;
                if (dout == di) {
                    double d = prec == 32 ? (double)(float)n->W_dec[j * di + i] : n->W_dec[j * di + i];
                    dn += d * d;
                    dot += e * d;
                }
            }
            for (int64_t i = 0; dout != di && i < dout; i++) { /* a transcoder: decoder rows in another space */
                double d = prec == 32 ? (double)(float)n->W_dec[j * dout + i] : n->W_dec[j * dout + i];
                dn += d * d;
            }
            CHECK(s.enc_norm[j] == sqrt(en) && s.dec_norm[j] == sqrt(dn), "%s: adapter norms %lld", c, (long long)j);
            CHECK(s.enc_dec_cos[j] == (dout == di ? dot / (sqrt(en) * sqrt(dn)) : 0.0), "%s: adapter cos", c);
            if (s.threshold) {
                double t = prec == 32 ? (double)(float)n->threshold[j] : n->threshold[j];
                CHECK((prec == 32 ? ((float *)s.threshold)[j] : ((double *)s.threshold)[j]) == t, "%s: threshold", c);
            }
        }
        CHECK((s.b_enc == NULL) == (n->act == SV_NACT_GATED), "%s: b_enc presence", c);
        if (prec == 64) check_forward(c, n, &s);
        sv_sae_free(&s);
        n_adapted++;
    }
}

static void check_case(char *line)
{
    char *kv[32] = {0};
    int n = 0;
    for (char *t = strtok(line, " \n"); t && n < 32; t = strtok(NULL, " \n")) kv[n++] = t;
    const char *c = kv[0], *path = kv[1];
    int64_t di = atoll(opt(kv, n, "d_in")), m = atoll(opt(kv, n, "d_sae")), dout = atoll(opt(kv, n, "d_out"));
    sv_native s;
    CHECK(sv_native_load(&s, path, 0) == SV_OK, "%s: %s", c, sv_errmsg());
    CHECK(s.W_enc == NULL && s.d_in == di && s.d_sae == m, "%s: config-only load", c);
    sv_native_free(&s);
    CHECK(sv_native_load(&s, path, 1) == SV_OK, "%s: %s", c, sv_errmsg());
    CHECK(strcmp(sv_native_probe(path), opt(kv, n, "format")) == 0 && strcmp(s.format, opt(kv, n, "format")) == 0,
          "%s: format %s", c, s.format);
    CHECK(s.d_in == di && s.d_sae == m && s.d_out == dout, "%s: dims %lld %lld %lld", c, (long long)s.d_in,
          (long long)s.d_sae, (long long)s.d_out);
    CHECK(strcmp(sv_nact_name(s.act), opt(kv, n, "act")) == 0, "%s: act %s", c, sv_nact_name(s.act));
    const char *v;
    if ((v = opt(kv, n, "k"))) CHECK(s.k == atoll(v), "%s: k %lld", c, (long long)s.k);
    if ((v = opt(kv, n, "apply_b_dec"))) CHECK(s.apply_b_dec_to_input == atoi(v), "%s: apply_b_dec", c);
    if ((v = opt(kv, n, "layer_norm"))) CHECK(s.layer_norm == atoi(v), "%s: layer_norm", c);
    if ((v = opt(kv, n, "transcoder"))) CHECK(s.transcoder == atoi(v), "%s: transcoder", c);
    CHECK(s.n_files >= 1, "%s: files for input_hash", c);

    size_t ne = (size_t)(di * m), nd = (size_t)(m * dout);
    double *We = load_f64(c, "W_enc", ne), *be = load_f64(c, "b_enc", (size_t)m), *Wd = load_f64(c, "W_dec", nd);
    double *bd = load_f64(c, "b_dec", (size_t)dout), *th = load_f64(c, "threshold", (size_t)m);
    double *Ws = load_f64(c, "W_skip", (size_t)(dout * di)), *bg = load_f64(c, "b_gate", (size_t)m);
    double *rm = load_f64(c, "r_mag", (size_t)m), *bm = load_f64(c, "b_mag", (size_t)m);
    const char *map = opt(kv, n, "map");
    if (strcmp(map, "gemma") == 0 || strcmp(map, "plain") == 0 || strcmp(map, "scalar_thr") == 0 || strcmp(map, "gated") == 0) {
        same(c, "W_enc", s.W_enc, We, ne, 0);
        same(c, "W_dec", s.W_dec, Wd, nd, 0);
        same(c, "b_dec", s.b_dec, bd, (size_t)dout, 0);
        if (strcmp(map, "gated") == 0) {
            CHECK(s.b_enc == NULL, "%s: gated has no b_enc", c);
            same(c, "b_gate", s.b_gate, bg, (size_t)m, 0);
            same(c, "r_mag", s.r_mag, rm, (size_t)m, 0);
            same(c, "b_mag", s.b_mag, bm, (size_t)m, 0);
        } else {
            same(c, "b_enc", s.b_enc, be, (size_t)m, 0);
        }
        if (strcmp(map, "scalar_thr") == 0) {
            double t = strtod(opt(kv, n, "thr"), NULL);
            for (int64_t j = 0; j < m; j++) CHECK(s.threshold[j] == t, "%s: threshold[%lld]", c, (long long)j);
        } else if (s.act == SV_NACT_JUMPRELU) {
            same(c, "threshold", s.threshold, th, (size_t)m, 0);
        } else {
            CHECK(s.threshold == NULL, "%s: no threshold", c);
        }
        if ((v = opt(kv, n, "skip")) && atoi(v)) same(c, "W_skip", s.W_skip, Ws, (size_t)(dout * di), 0);
        else CHECK(s.W_skip == NULL, "%s: no W_skip", c);
    } else if (strcmp(map, "ae_norm") == 0) {
        /* decoder rows to unit norm, encoder columns and b_enc times the norm */
        for (int64_t j = 0; j < m; j++) {
            double nn = 0;
            for (int64_t i = 0; i < di; i++) nn += Wd[j * di + i] * Wd[j * di + i];
            nn = sqrt(nn);
            for (int64_t i = 0; i < di; i++) { Wd[j * di + i] /= nn; We[i * m + j] *= nn; }
            be[j] *= nn;
        }
        same(c, "W_enc", s.W_enc, We, ne, 1e-15);
        same(c, "W_dec", s.W_dec, Wd, nd, 1e-15);
        same(c, "b_enc", s.b_enc, be, (size_t)m, 1e-15);
        same(c, "b_dec", s.b_dec, bd, (size_t)dout, 0);
    } else if (strcmp(map, "llama") == 0) {
        double thr = strtod(opt(kv, n, "thr"), NULL);
        double cin = sqrt((double)di) / strtod(opt(kv, n, "norm_in"), NULL);
        double cout = sqrt((double)di) / strtod(opt(kv, n, "norm_out"), NULL);
        for (int64_t j = 0; j < m; j++) {
            double nn = 0;
            for (int64_t i = 0; i < di; i++) {
                double w = Wd[j * di + i] * cin / cout;
                nn += w * w;
            }
            nn = sqrt(nn);
            for (int64_t i = 0; i < di; i++) {
                Wd[j * di + i] = Wd[j * di + i] * cin / cout / nn;
                We[i * m + j] *= nn;
            }
            be[j] = be[j] / cin * nn;
        }
        for (int64_t i = 0; i < di; i++) bd[i] /= cout;
        same(c, "W_enc", s.W_enc, We, ne, 1e-14);
        same(c, "W_dec", s.W_dec, Wd, nd, 1e-14);
        same(c, "b_enc", s.b_enc, be, (size_t)m, 1e-14);
        same(c, "b_dec", s.b_dec, bd, (size_t)dout, 1e-14);
        if (s.act == SV_NACT_JUMPRELU)
            for (int64_t j = 0; j < m; j++) CHECK(s.threshold[j] == thr, "%s: threshold", c);
        else
            CHECK(s.threshold == NULL, "%s: no threshold", c);
        CHECK(strstr(s.note, "folded"), "%s: note '%s'", c, s.note);
    } else {
        CHECK(0, "%s: unknown map %s", c, map);
    }
    free(We); free(be); free(Wd); free(bd); free(th); free(Ws); free(bg); free(rm); free(bm);
    check_adapter(c, &s, path);
    sv_native_free(&s);
    n_cases++;
}

static void check_bad(char *line)
{
    char *path = strtok(line, "\t"), *expect = strtok(NULL, "\t\n");
    sv_native s;
    sv_clear_error();
    sv_rc rc = sv_native_load(&s, path, 1);
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), expect), "%s: rc %d '%s' lacks '%s'", path, (int)rc, sv_errmsg(), expect);
    CHECK(s.W_enc == NULL && s.n_files == 0, "%s: failed load left data", path);
    n_cases++;
}

static void each_line(const char *name, void (*fn)(char *))
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "r");
    if (!fp) die("cannot open", p);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) fn(line);
    free(line);
    fclose(fp);
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_native DIR", NULL);
    dir = argv[1];
    each_line("cases.txt", check_case);
    int good = n_cases;
    each_line("bad.txt", check_bad);
    CHECK(good >= 16 && n_cases - good >= 8, "%d good, %d bad", good, n_cases - good);
    CHECK(n_adapted >= 20 && n_forward >= 10, "only %d adapted, %d forward", n_adapted, n_forward);
    printf("test_native: %d SAEs in native formats read as written (%d handed to the evaluator; its forward pass matches the reference on %d), %d bad ones refused\n",
           good, n_adapted / 2, n_forward, n_cases - good);
    return 0;
}

/* Naive double references for the language-model tests (see ref_lm.h). */
#define TEST_NAME "ref_lm"
#include "ref_lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/safetensors.h"
#include "testutil.h"

#define PI_VAL 3.14159265358979323846
enum { D = 64, H = 4, HD = 16, F = 256, V = 512, NL = 3 };

struct ref_gpt2 {
    double *wte, *ln_f_w, *ln_f_b;
    double *l1w[NL], *l1b[NL], *caw[NL], *cab[NL], *cpw[NL], *cpb[NL], *l2w[NL], *l2b[NL], *fw[NL], *fb[NL], *pw[NL],
        *pb[NL];
};

static double *W(const sv_st_file *f, const char *fmt, long long l)
{
    char nm[128];
    snprintf(nm, sizeof nm, fmt, l);
    const sv_st_tensor *t = sv_st_find(f, nm);
    if (!t) die("no tensor", nm);
    double *v = xcalloc((size_t)sv_st_numel(t), sizeof(double));
    if (sv_st_read_f64(f, t, v) != SV_OK) die("read", sv_errmsg());
    return v;
}

ref_gpt2 *ref_gpt2_load(const char *dir)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    sv_st_file f;
    if (sv_st_open(&f, p) != SV_OK) die("open", sv_errmsg());
    ref_gpt2 *g = xcalloc(1, sizeof *g);
    g->wte = W(&f, "transformer.wte.weight", 0);
    g->ln_f_w = W(&f, "transformer.ln_f.weight", 0);
    g->ln_f_b = W(&f, "transformer.ln_f.bias", 0);
    for (long long l = 0; l < NL; l++) {
        g->l1w[l] = W(&f, "transformer.h.%lld.ln_1.weight", l);
        g->l1b[l] = W(&f, "transformer.h.%lld.ln_1.bias", l);
        g->caw[l] = W(&f, "transformer.h.%lld.attn.c_attn.weight", l);
        g->cab[l] = W(&f, "transformer.h.%lld.attn.c_attn.bias", l);
        g->cpw[l] = W(&f, "transformer.h.%lld.attn.c_proj.weight", l);
        g->cpb[l] = W(&f, "transformer.h.%lld.attn.c_proj.bias", l);
        g->l2w[l] = W(&f, "transformer.h.%lld.ln_2.weight", l);
        g->l2b[l] = W(&f, "transformer.h.%lld.ln_2.bias", l);
        g->fw[l] = W(&f, "transformer.h.%lld.mlp.c_fc.weight", l);
        g->fb[l] = W(&f, "transformer.h.%lld.mlp.c_fc.bias", l);
        g->pw[l] = W(&f, "transformer.h.%lld.mlp.c_proj.weight", l);
        g->pb[l] = W(&f, "transformer.h.%lld.mlp.c_proj.bias", l);
    }
    sv_st_close(&f);
    return g;
}

void ref_gpt2_free(ref_gpt2 *g)
{
    if (!g) return;
    free(g->wte);
    free(g->ln_f_w);
    free(g->ln_f_b);
    for (int l = 0; l < NL; l++) {
        double *all[] = {g->l1w[l], g->l1b[l], g->caw[l], g->cab[l], g->cpw[l], g->cpb[l],
                         g->l2w[l], g->l2b[l], g->fw[l],  g->fb[l],  g->pw[l],  g->pb[l]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
    free(g);
}

static void layer_norm(const double *x, double *y, const double *w, const double *b)
{
    double mu = 0, var = 0;
    for (int i = 0; i < D; i++) mu += x[i];
    mu /= D;
    for (int i = 0; i < D; i++) var += (x[i] - mu) * (x[i] - mu);
    var /= D;
    for (int i = 0; i < D; i++) y[i] = (x[i] - mu) / sqrt(var + 1e-5) * w[i] + b[i];
}

double *ref_gpt2_logits(const ref_gpt2 *g, const double *x0, int64_t T, int64_t L0)
{
    double *x = xcalloc((size_t)(T * D), sizeof(double)), *h = xcalloc((size_t)(T * D), sizeof(double));
    double *qkv = xcalloc((size_t)(T * 3 * D), sizeof(double)), *a = xcalloc((size_t)(T * D), sizeof(double));
    double *f = xcalloc((size_t)(T * F), sizeof(double)), *p = xcalloc((size_t)T, sizeof(double));
    memcpy(x, x0, (size_t)(T * D) * sizeof(double));
    for (int64_t l = L0; l < NL; l++) {
        for (int64_t t = 0; t < T; t++) layer_norm(x + t * D, h + t * D, g->l1w[l], g->l1b[l]);
        for (int64_t t = 0; t < T; t++) /* Conv1D: [in][out] */
            for (int64_t o = 0; o < 3 * D; o++) {
                double s = g->cab[l][o];
                for (int64_t i = 0; i < D; i++) s += h[t * D + i] * g->caw[l][i * 3 * D + o];
                qkv[t * 3 * D + o] = s;
            }
        for (int64_t hh = 0; hh < H; hh++)
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, z = 0;
                for (int64_t j = 0; j <= i; j++) {
                    double s = 0;
                    for (int64_t e = 0; e < HD; e++) s += qkv[i * 3 * D + hh * HD + e] * qkv[j * 3 * D + D + hh * HD + e];
                    p[j] = s / sqrt((double)HD);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j <= i; j++) z += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < HD; e++) {
                    double s = 0;
                    for (int64_t j = 0; j <= i; j++) s += p[j] / z * qkv[j * 3 * D + 2 * D + hh * HD + e];
                    a[i * D + hh * HD + e] = s;
                }
            }
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < D; o++) {
                double s = g->cpb[l][o];
                for (int64_t i = 0; i < D; i++) s += a[t * D + i] * g->cpw[l][i * D + o];
                x[t * D + o] += s;
            }
        for (int64_t t = 0; t < T; t++) layer_norm(x + t * D, h + t * D, g->l2w[l], g->l2b[l]);
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < F; o++) {
                double s = g->fb[l][o];
                for (int64_t i = 0; i < D; i++) s += h[t * D + i] * g->fw[l][i * F + o];
                f[t * F + o] = 0.5 * s * (1 + tanh(sqrt(2 / PI_VAL) * (s + 0.044715 * s * s * s))); /* gelu_new */
            }
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < D; o++) {
                double s = g->pb[l][o];
                for (int64_t i = 0; i < F; i++) s += f[t * F + i] * g->pw[l][i * D + o];
                x[t * D + o] += s;
            }
    }
    double *lg = xcalloc((size_t)(T * V), sizeof(double));
    for (int64_t t = 0; t < T; t++) {
        layer_norm(x + t * D, h + t * D, g->ln_f_w, g->ln_f_b);
        for (int64_t v = 0; v < V; v++) {
            double s = 0;
            for (int64_t i = 0; i < D; i++) s += h[t * D + i] * g->wte[v * D + i];
            lg[t * V + v] = s;
        }
    }
    free(x);
    free(h);
    free(qkv);
    free(a);
    free(f);
    free(p);
    return lg;
}

static double lse(const double *z, int64_t V)
{
    double m = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; v++) m = fmax(m, z[v]);
    for (int64_t v = 0; v < V; v++) s += exp(z[v] - m);
    return m + log(s);
}


/* logits: [2 + K][T][V]: clean, ablated, SAEs. */
ref_lm_sums ref_lm_sum(double *const *lg, int K, const int32_t *ids, const uint8_t *masked, int64_t T, int64_t V)
{
    ref_lm_sums r;
    memset(&r, 0, sizeof r);
    for (int64_t t = 0; t < T; t++) {
        if (masked && masked[t]) continue;
        const double lc = lse(lg[0] + t * V, V);
        for (int s = 1; s < 2 + K; s++) {
            const double ln = lse(lg[s] + t * V, V);
            double kl = 0;
            for (int64_t v = 0; v < V; v++)
                kl += exp(lg[0][t * V + v] - lc) * ((lg[0][t * V + v] - lc) - (lg[s][t * V + v] - ln));
            if (s == 1) r.kl_abl += kl;
            else r.kl[s - 2] += kl;
            if (t + 1 < T) {
                const double ce = ln - lg[s][t * V + ids[t + 1]];
                if (s == 1) r.ce_abl += ce;
                else r.ce[s - 2] += ce;
            }
        }
        r.nkl++;
        if (t + 1 < T) {
            r.ce_clean += lc - lg[0][t * V + ids[t + 1]];
            r.nce++;
        }
    }
    return r;
}


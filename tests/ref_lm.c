/* Naive double references for the language-model tests (see ref_lm.h). */
#define TEST_NAME "ref_lm"
#define TU_CHECK 1
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
    return ref_gpt2_logits_opt(g, x0, T, L0, 1, 0);
}

double *ref_gpt2_logits_opt(const ref_gpt2 *g, const double *x0, int64_t T, int64_t L0, int scale, int inv_layer)
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
                    p[j] = (scale ? s / sqrt((double)HD) : s) / (inv_layer ? (double)(l + 1) : 1.0);
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

/* ---- GPT-NeoX ---- */

struct ref_neox {
    double *emb_out, *lf_w, *lf_b;
    double *i_w[NL], *i_b[NL], *p_w[NL], *p_b[NL], *qkv_w[NL], *qkv_b[NL], *o_w[NL], *o_b[NL], *up_w[NL], *up_b[NL],
        *dn_w[NL], *dn_b[NL];
};

ref_neox *ref_neox_load(const char *dir)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    sv_st_file f;
    if (sv_st_open(&f, p) != SV_OK) die("open", sv_errmsg());
    ref_neox *g = xcalloc(1, sizeof *g);
    g->emb_out = W(&f, "embed_out.weight", 0);
    g->lf_w = W(&f, "gpt_neox.final_layer_norm.weight", 0);
    g->lf_b = W(&f, "gpt_neox.final_layer_norm.bias", 0);
    for (long long l = 0; l < NL; l++) {
        g->i_w[l] = W(&f, "gpt_neox.layers.%lld.input_layernorm.weight", l);
        g->i_b[l] = W(&f, "gpt_neox.layers.%lld.input_layernorm.bias", l);
        g->p_w[l] = W(&f, "gpt_neox.layers.%lld.post_attention_layernorm.weight", l);
        g->p_b[l] = W(&f, "gpt_neox.layers.%lld.post_attention_layernorm.bias", l);
        g->qkv_w[l] = W(&f, "gpt_neox.layers.%lld.attention.query_key_value.weight", l);
        g->qkv_b[l] = W(&f, "gpt_neox.layers.%lld.attention.query_key_value.bias", l);
        g->o_w[l] = W(&f, "gpt_neox.layers.%lld.attention.dense.weight", l);
        g->o_b[l] = W(&f, "gpt_neox.layers.%lld.attention.dense.bias", l);
        g->up_w[l] = W(&f, "gpt_neox.layers.%lld.mlp.dense_h_to_4h.weight", l);
        g->up_b[l] = W(&f, "gpt_neox.layers.%lld.mlp.dense_h_to_4h.bias", l);
        g->dn_w[l] = W(&f, "gpt_neox.layers.%lld.mlp.dense_4h_to_h.weight", l);
        g->dn_b[l] = W(&f, "gpt_neox.layers.%lld.mlp.dense_4h_to_h.bias", l);
    }
    sv_st_close(&f);
    return g;
}

void ref_neox_free(ref_neox *g)
{
    if (!g) return;
    free(g->emb_out);
    free(g->lf_w);
    free(g->lf_b);
    for (int l = 0; l < NL; l++) {
        double *all[] = {g->i_w[l],  g->i_b[l],  g->p_w[l],  g->p_b[l],  g->qkv_w[l], g->qkv_b[l],
                         g->o_w[l],  g->o_b[l],  g->up_w[l], g->up_b[l], g->dn_w[l], g->dn_b[l]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
    free(g);
}

/* nn.Linear: y = W x + b with W [out][in] */
static void lin(const double *W, const double *b, const double *x, double *y, int in, int out)
{
    for (int o = 0; o < out; o++) {
        double s = b[o];
        for (int i = 0; i < in; i++) s += W[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
}

/* rotate_half on the first rot dims of a head vector at position t */
static void rope(double *v, int rot, int64_t t)
{
    const int h = rot / 2;
    for (int i = 0; i < h; i++) {
        const double f = 1.0 / pow(10000.0, (double)(2 * i) / rot), c = cos(t * f), s = sin(t * f);
        const double x1 = v[i], x2 = v[i + h];
        v[i] = x1 * c - x2 * s;
        v[i + h] = x2 * c + x1 * s;
    }
}

double *ref_neox_logits(const ref_neox *g, const double *x0, int64_t T, int64_t L0, int parallel, int rot)
{
    double *x = xcalloc((size_t)(T * D), 8), *h = xcalloc((size_t)(T * D), 8), *qkv = xcalloc((size_t)(T * 3 * D), 8);
    double *a = xcalloc((size_t)(T * D), 8), *ao = xcalloc((size_t)(T * D), 8), *f = xcalloc(F, 8), *p = xcalloc((size_t)T, 8);
    memcpy(x, x0, (size_t)(T * D) * sizeof(double));
    for (int64_t l = L0; l < NL; l++) {
        for (int64_t t = 0; t < T; t++) {
            layer_norm(x + t * D, h + t * D, g->i_w[l], g->i_b[l]);
            lin(g->qkv_w[l], g->qkv_b[l], h + t * D, qkv + t * 3 * D, D, 3 * D);
            for (int hh = 0; hh < H; hh++) { /* per head [q k v], HD each */
                rope(qkv + t * 3 * D + hh * 3 * HD, rot, t);
                rope(qkv + t * 3 * D + hh * 3 * HD + HD, rot, t);
            }
        }
        for (int hh = 0; hh < H; hh++)
            for (int64_t i = 0; i < T; i++) {
                double mx = -INFINITY, z = 0;
                for (int64_t j = 0; j <= i; j++) {
                    double s = 0;
                    for (int e = 0; e < HD; e++) s += qkv[i * 3 * D + hh * 3 * HD + e] * qkv[j * 3 * D + hh * 3 * HD + HD + e];
                    p[j] = s / sqrt((double)HD);
                    mx = fmax(mx, p[j]);
                }
                for (int64_t j = 0; j <= i; j++) z += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < HD; e++) {
                    double s = 0;
                    for (int64_t j = 0; j <= i; j++) s += p[j] / z * qkv[j * 3 * D + hh * 3 * HD + 2 * HD + e];
                    a[i * D + hh * HD + e] = s;
                }
            }
        for (int64_t t = 0; t < T; t++) lin(g->o_w[l], g->o_b[l], a + t * D, ao + t * D, D, D);
        for (int64_t t = 0; t < T; t++) {
            double *xt = x + t * D, mo[D], hin[D];
            if (!parallel)
                for (int i = 0; i < D; i++) xt[i] += ao[t * D + i];
            layer_norm(xt, hin, g->p_w[l], g->p_b[l]);
            lin(g->up_w[l], g->up_b[l], hin, f, D, F);
            for (int o = 0; o < F; o++) f[o] = 0.5 * f[o] * (1 + erf(f[o] / sqrt(2.0)));
            lin(g->dn_w[l], g->dn_b[l], f, mo, F, D);
            for (int i = 0; i < D; i++) xt[i] += mo[i] + (parallel ? ao[t * D + i] : 0);
        }
    }
    double *lg = xcalloc((size_t)(T * V), sizeof(double));
    for (int64_t t = 0; t < T; t++) {
        layer_norm(x + t * D, h + t * D, g->lf_w, g->lf_b);
        for (int64_t v = 0; v < V; v++) {
            double s = 0;
            for (int64_t i = 0; i < D; i++) s += h[t * D + i] * g->emb_out[v * D + i];
            lg[t * V + v] = s;
        }
    }
    free(x);
    free(h);
    free(qkv);
    free(a);
    free(ao);
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


/* The native forward pass against transformers 4.48's own outputs
 * (tests/data/lm, a subset of ../shared/fixtures/lm; see its README):
 * usage: test_model DATA_DIR MODEL PRECISION [THREADS]
 * Checks every residual hook, attention / MLP outputs, the final norm,
 * logits (tile by tile), per-position NLL, both splices at layer 1, and
 * KL against a plain double reference computed here from the fixture
 * logits; the streaming accumulator is never compared with itself. */
#define TEST_NAME "test_model"
#define TU_CHECK 1
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/forward.h"
#include "saeval/model.h"
#include "saeval/safetensors.h"
#include "testutil.h"

typedef struct {
    float *v;
    int nd;
    hsize_t dims[4];
    size_t n;
} arr;

static arr rd(hid_t f, const char *name)
{
    arr a = {0};
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die("missing dataset", name);
    hid_t s = H5Dget_space(d);
    a.nd = H5Sget_simple_extent_ndims(s);
    H5Sget_simple_extent_dims(s, a.dims, NULL);
    a.n = 1;
    for (int i = 0; i < a.nd; i++) a.n *= a.dims[i];
    a.v = xcalloc(a.n, sizeof(float));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.v) < 0) die("cannot read", name);
    H5Sclose(s);
    H5Dclose(d);
    return a;
}

static int prec;
static size_t rsz(void) { return prec == 64 ? sizeof(double) : sizeof(float); }
static double at(const void *p, size_t i) { return prec == 64 ? ((const double *)p)[i] : ((const float *)p)[i]; }
static void *to_real(const float *x, size_t n)
{
    void *p = xcalloc(n, rsz());
    for (size_t i = 0; i < n; i++) {
        if (prec == 64) ((double *)p)[i] = x[i];
        else ((float *)p)[i] = x[i];
    }
    return p;
}

/* max |a - ref| relative to max(1, rms(ref)) */
static double rel_err(const void *a, const float *ref, size_t n)
{
    double ss = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        ss += (double)ref[i] * ref[i];
        double e = fabs(at(a, i) - ref[i]);
        if (!(e <= mx)) mx = e; /* NaN wins */
    }
    double sc = sqrt(ss / (double)n);
    return mx / (sc > 1 ? sc : 1);
}

/* Logits of stream 0 gathered from the tiles, to compare with the fixture. */
typedef struct {
    int64_t V;
    double *logits;
    int tiles;
} gather_ctx;
static int gather(void *vc, int64_t v0, int64_t vt, int64_t T, const void *const *tiles)
{
    gather_ctx *c = vc;
    c->tiles++;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < vt; j++) c->logits[t * c->V + v0 + j] = at(tiles[0], (size_t)(t * vt + j));
    return 0;
}

/* Reference: log-softmax statistics of fixture logits, plain double loops. */
static double ref_lse(const float *z, int64_t V)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; j++) m = z[j] > m ? z[j] : m;
    for (int64_t j = 0; j < V; j++) s += exp(z[j] - m);
    return m + log(s);
}
static double ref_kl(const float *p, const float *q, int64_t V)
{
    const double lp = ref_lse(p, V), lq = ref_lse(q, V);
    double kl = 0;
    for (int64_t j = 0; j < V; j++) kl += exp(p[j] - lp) * ((p[j] - lp) - (q[j] - lq));
    return kl;
}

/* Gemma-2 post-norm of module outputs y [T][d]: y rsqrt(mean y^2 + eps)
 * (1 + w), a plain double loop with w read directly from the file. */
static float *post_norm(const char *dir, const char *which, int64_t L, const float *y, int64_t T, int64_t d, double eps)
{
    char p[1200], nm[200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    snprintf(nm, sizeof nm, "model.layers.%lld.%s.weight", (long long)L, which);
    sv_st_file f;
    if (sv_st_open(&f, p) != SV_OK) die("open", sv_errmsg());
    const sv_st_tensor *t = sv_st_find(&f, nm);
    if (!t) die("no tensor", nm);
    double *w = xcalloc((size_t)d, sizeof(double));
    if (sv_st_read_f64(&f, t, w) != SV_OK) die("read", sv_errmsg());
    sv_st_close(&f);
    float *o = xcalloc((size_t)(T * d), sizeof(float));
    for (int64_t r = 0; r < T; r++) {
        double ms = 0;
        for (int64_t i = 0; i < d; i++) ms += (double)y[r * d + i] * y[r * d + i];
        const double s = 1 / sqrt(ms / (double)d + eps);
        for (int64_t i = 0; i < d; i++) o[r * d + i] = (float)(y[r * d + i] * s * (1 + w[i]));
    }
    free(w);
    return o;
}

typedef struct {
    sv_lm_acc a[3];
    int prec;
    const int32_t *tgt;
} sep_ctx;
static int sep_tile(void *vc, int64_t v0, int64_t vt, int64_t T, const void *const *tiles)
{
    (void)T;
    sep_ctx *c = vc;
    for (int s = 0; s < 3; s++) sv_lm_acc_tile(&c->a[s], c->prec, tiles[s], s ? tiles[0] : NULL, v0, vt, c->tgt, 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) die("usage: test_model DATA_DIR MODEL PRECISION [THREADS]", NULL);
    char dir[1024], h5[1100];
    snprintf(dir, sizeof dir, "%s/%s", argv[1], argv[2]);
    snprintf(h5, sizeof h5, "%s/fixtures.h5", dir);
    prec = atoi(argv[3]);
    sv_fwd_set_threads(argc > 4 ? atoi(argv[4]) : 1);
    const int gemma = strstr(argv[2], "gemma") != NULL;
    const double tol_logit = gemma ? 5e-4 : 1e-4, tol_h = 1e-4;

    sv_model m;
    if (sv_model_load(&m, dir, prec) != SV_OK) die("load", sv_errmsg());
    const sv_model_cfg *c = &m.cfg;
    const int64_t d = c->d_model, V = c->vocab, NL = c->n_layers;
    printf("%s: %s, %lld layers, d %lld, vocab %lld, %zu weight bytes\n", argv[2], c->model_type, (long long)NL,
           (long long)d, (long long)V, sv_model_weight_bytes(&m));

    CHECK(sv_model_cfg_weight_bytes(c, prec) == sv_model_weight_bytes(&m), "weight bytes from the config %zu, loaded %zu",
          sv_model_cfg_weight_bytes(c, prec), sv_model_weight_bytes(&m));
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", h5);
    if (c->rotary_dim && H5Lexists(f, "rope_inv_freq", H5P_DEFAULT) > 0) {
        arr inv = rd(f, "rope_inv_freq");
        CHECK((int64_t)inv.n == c->rotary_dim / 2, "rope_inv_freq has %zu entries", inv.n);
        for (size_t i = 0; i < inv.n && (int64_t)i < c->rotary_dim / 2; i++)
            CHECK(fabs(m.inv_freq[i] - inv.v[i]) <= 1e-6 * inv.v[i], "inv_freq[%zu] %.9g vs HF %.9g", i, m.inv_freq[i],
                  (double)inv.v[i]);
        free(inv.v);
    }
    arr tok = rd(f, "seq2/tokens"), hs = rd(f, "seq2/hidden_states"), fin = rd(f, "seq2/resid_final_pre_norm");
    arr ao = rd(f, "seq2/attn_out"), mo = rd(f, "seq2/mlp_out"), lg = rd(f, "seq2/logits"), nll = rd(f, "seq2/nll");
    const int64_t T = (int64_t)tok.n, TD = T * d;
    int32_t *ids = xcalloc((size_t)T, sizeof *ids), *tgt = xcalloc((size_t)T, sizeof *tgt);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)tok.v[t]; /* ids < 2^24: exact in float */
    for (int64_t t = 0; t < T; t++) tgt[t] = t + 1 < T ? ids[t + 1] : -1;

    sv_model_ws ws;
    if (sv_model_ws_init(&ws, &m, T, 3) != SV_OK) die("ws", sv_errmsg());
    /* Pass 0: the production tiles (one tile for these tiny models);
     * pass 1: small tiles, so that row tiles, column panels, query blocks
     * and the online merge over several vocabulary tiles all run. */
    for (int pass = 0; pass < 2; pass++) {
    if (pass) {
        ws.rows = 16;
        ws.cols = 48;
        ws.qblock = 16;
        ws.vtile = 100;
        printf("  small tiles:\n");
    }
        void *out = xcalloc((size_t)TD, rsz()), *out2 = xcalloc((size_t)TD, rsz());

        /* Prefix at every hook. */
        double worst = 0;
        for (int64_t L = 0; L < NL; L++) {
            sv_hook h = {SV_HOOK_RESID_PRE, L};
            if (sv_model_prefix(&ws, ids, T, h, out) != SV_OK) die("prefix", sv_errmsg());
            double e = rel_err(out, hs.v + L * TD, (size_t)TD);
            worst = e > worst ? e : worst;
            CHECK(e <= tol_h, "hook_resid_pre %lld: rel err %.3g", (long long)L, e);
            h.kind = SV_HOOK_ATTN_OUT;
            if (sv_model_prefix(&ws, ids, T, h, out) != SV_OK) die("prefix", sv_errmsg());
            h.kind = SV_HOOK_MLP_OUT;
            if (sv_model_prefix(&ws, ids, T, h, out2) != SV_OK) die("prefix", sv_errmsg());
            if (c->post_norms) {
                /* Gemma-2 hooks sit after the post-norms, which the fixture's
                 * module outputs do not: their sum is the residual increment. */
                float *inc = xcalloc((size_t)TD, sizeof(float));
                void *sum = xcalloc((size_t)TD, rsz());
                const float *next = L + 1 < NL ? hs.v + (L + 1) * TD : fin.v;
                for (int64_t i = 0; i < TD; i++) {
                    inc[i] = next[i] - hs.v[L * TD + i];
                    if (prec == 64) ((double *)sum)[i] = at(out, (size_t)i) + at(out2, (size_t)i);
                    else ((float *)sum)[i] = (float)(at(out, (size_t)i) + at(out2, (size_t)i));
                }
                e = rel_err(sum, inc, (size_t)TD);
                CHECK(e <= 2 * tol_h, "layer %lld attn_out + mlp_out vs residual increment: rel err %.3g", (long long)L, e);
                /* And each hook alone: the fixture's module output through
                 * the post-norm, weights read straight from the file. */
                for (int k = 0; k < 2; k++) {
                    float *pn = post_norm(dir, k ? "post_feedforward_layernorm" : "post_attention_layernorm", L,
                                          (k ? mo.v : ao.v) + L * TD, T, d, c->norm_eps);
                    double e2 = rel_err(k ? out2 : out, pn, (size_t)TD);
                    CHECK(e2 <= tol_h, "layer %lld %s after the post-norm: rel err %.3g", (long long)L,
                          k ? "hook_mlp_out" : "hook_attn_out", e2);
                    worst = e2 > worst ? e2 : worst;
                    free(pn);
                }
                free(inc);
                free(sum);
            } else {
                e = rel_err(out, ao.v + L * TD, (size_t)TD);
                CHECK(e <= tol_h, "hook_attn_out %lld: rel err %.3g", (long long)L, e);
                e = rel_err(out2, mo.v + L * TD, (size_t)TD);
                CHECK(e <= tol_h, "hook_mlp_out %lld: rel err %.3g", (long long)L, e);
            }
            worst = e > worst ? e : worst;
        }
        sv_hook last = {SV_HOOK_RESID_POST, NL - 1};
        if (sv_model_prefix(&ws, ids, T, last, out) != SV_OK) die("prefix", sv_errmsg());
        double e = rel_err(out, fin.v, (size_t)TD);
        CHECK(e <= tol_h, "hook_resid_post %lld: rel err %.3g", (long long)NL - 1, e);

        /* Suffix from the stored hidden state 0 = a whole forward; final norm
         * against hidden_states[n_layers]; logits gathered from the tiles. */
        void *x0 = to_real(hs.v, (size_t)TD);
        sv_hook h0 = {SV_HOOK_RESID_PRE, 0};
        if (sv_model_suffix(&ws, h0, x0, T, out) != SV_OK) die("suffix", sv_errmsg());
        e = rel_err(out, hs.v + NL * TD, (size_t)TD);
        CHECK(e <= tol_h, "final norm: rel err %.3g", e);
        gather_ctx g = {V, xcalloc((size_t)(T * V), sizeof(double)), 0};
        const void *streams[1] = {out};
        if (sv_model_logit_tiles(&ws, 1, streams, T, gather, &g) != SV_OK) die("tiles", sv_errmsg());
        double el = 0;
        for (int64_t i = 0; i < T * V; i++) el = fmax(el, fabs(g.logits[i] - lg.v[i]));
        CHECK(el <= tol_logit, "logits: max err %.3g", el);
        CHECK(g.tiles == (int)((V + ws.vtile - 1) / ws.vtile), "%d tiles", g.tiles);
        printf("  hidden rel err %.3g, logits max err %.3g\n", worst, el);

        /* Splices at layer 1: clean (hidden_states[1]) + zero + perturbed, as
         * hook_resid_pre 1 and, equivalently, hook_resid_post 0. */
        const char *sp[2] = {"seq2/splice_L1_zero", "seq2/splice_L1_perturbed"};
        arr rp[2], slg[2], snll[2], sfn[2];
        char name[128];
        for (int s = 0; s < 2; s++) {
            snprintf(name, sizeof name, "%s/resid_pre", sp[s]);
            rp[s] = rd(f, name);
            snprintf(name, sizeof name, "%s/logits", sp[s]);
            slg[s] = rd(f, name);
            snprintf(name, sizeof name, "%s/nll", sp[s]);
            snll[s] = rd(f, name);
            snprintf(name, sizeof name, "%s/final_norm", sp[s]);
            sfn[s] = rd(f, name);
            void *r = to_real(rp[s].v, (size_t)TD);
            sv_hook h1 = {SV_HOOK_RESID_PRE, 1};
            if (sv_model_suffix(&ws, h1, r, T, out) != SV_OK) die("suffix", sv_errmsg());
            e = rel_err(out, sfn[s].v, (size_t)TD);
            CHECK(e <= tol_h, "%s final norm: rel err %.3g", sp[s], e);
            free(r);
        }
        void *res[3] = {to_real(hs.v + TD, (size_t)TD), to_real(rp[0].v, (size_t)TD), to_real(rp[1].v, (size_t)TD)};
        double *nl = xcalloc((size_t)(3 * T), sizeof(double)), *kl = xcalloc((size_t)(2 * T), sizeof(double));
        for (int hk = 0; hk < 2; hk++) {
            sv_hook h = hk ? (sv_hook){SV_HOOK_RESID_POST, 0} : (sv_hook){SV_HOOK_RESID_PRE, 1};
            if (sv_model_ce_kl(&ws, h, T, tgt, 2, (const void *const *)res, nl, kl) != SV_OK) die("ce_kl", sv_errmsg());
            double en = 0, ek = 0, kmax = 0;
            for (int s = 0; s < 3; s++)
                for (int64_t t = 0; t < T; t++) {
                    const float *ref = s == 0 ? nll.v : snll[s - 1].v;
                    if (t + 1 < T) en = fmax(en, fabs(nl[s * T + t] - ref[t]));
                    else CHECK(isnan(nl[s * T + t]), "nll at the last position is %g, not NaN", nl[s * T + t]);
                    if (!s) continue;
                    const double r = ref_kl(lg.v + t * V, slg[s - 1].v + t * V, V);
                    ek = fmax(ek, fabs(kl[(s - 1) * T + t] - r) / fmax(1.0, r));
                    kmax = fmax(kmax, r);
                }
            CHECK(en <= tol_logit, "nll (hook %d): max err %.3g", hk, en);
            CHECK(ek <= 2 * tol_logit, "kl (hook %d): max rel err %.3g", hk, ek);
            CHECK(kmax > 0.01, "kl reference is trivially small (%g)", kmax);
            printf("  splice: nll max err %.3g, kl max rel err %.3g (largest kl %.3g)\n", en, ek, kmax);
        }
        /* The shared-exp accumulation of sv_model_ce_kl = each stream
         * accumulated alone with sv_lm_acc_tile, bit for bit. */
        {
            sv_hook h = {SV_HOOK_RESID_PRE, 1};
            if (sv_model_ce_kl(&ws, h, T, tgt, 2, (const void *const *)res, nl, kl) != SV_OK) die("ce_kl", sv_errmsg());
            sep_ctx sc;
            sc.prec = prec;
            sc.tgt = tgt;
            for (int s = 0; s < 3; s++)
                if (sv_lm_acc_init(&sc.a[s], T, s > 0) != SV_OK) die("acc", NULL);
            const void *nrm[3];
            for (int s = 0; s < 3; s++) {
                nrm[s] = (char *)xcalloc((size_t)TD, rsz());
                if (sv_model_suffix(&ws, h, res[s], T, (void *)nrm[s]) != SV_OK) die("suffix", sv_errmsg());
            }
            if (sv_model_logit_tiles(&ws, 3, nrm, T, sep_tile, &sc) != SV_OK) die("tiles", sv_errmsg());
            double *n1 = xcalloc((size_t)T, sizeof(double)), *k1 = xcalloc((size_t)T, sizeof(double));
            for (int s = 0; s < 3; s++) {
                sv_lm_acc_result(&sc.a[s], NULL, n1, k1);
                CHECK(!memcmp(n1, nl + s * T, (size_t)T * sizeof(double)), "stream %d nll: shared != separate", s);
                CHECK(!s || !memcmp(k1, kl + (s - 1) * T, (size_t)T * sizeof(double)), "stream %d kl: shared != separate", s);
                sv_lm_acc_free(&sc.a[s]);
                free((void *)nrm[s]);
            }
            free(n1);
            free(k1);
        }
        /* Clean stream vs itself: KL exactly 0 (same tiles). */
        {
            void *same[2] = {res[0], res[0]};
            sv_hook h = {SV_HOOK_RESID_PRE, 1};
            if (sv_model_ce_kl(&ws, h, T, tgt, 1, (const void *const *)same, nl, kl) != SV_OK) die("ce_kl", sv_errmsg());
            for (int64_t t = 0; t < T; t++) CHECK(kl[t] == 0, "KL of a stream with itself at %lld: %g", (long long)t, kl[t]);
        }

        for (int s = 0; s < 2; s++) {
            free(rp[s].v);
            free(slg[s].v);
            free(snll[s].v);
            free(sfn[s].v);
        }
        for (int s = 0; s < 3; s++) free(res[s]);
        free(nl);
        free(kl);
        free(g.logits);
        free(x0);
        free(out);
        free(out2);
    }

    /* Thread invariance: 1 and 3 threads, small tiles so that several
     * tasks exist, byte-identical hooks, nll and kl. */
    {
        double *r[2][2];
        void *hk[2];
        for (int k = 0; k < 2; k++) {
            sv_model_ws w;
            sv_fwd_set_threads(k ? 3 : 1);
            if (sv_model_ws_init(&w, &m, T, 2) != SV_OK) die("ws", sv_errmsg());
            w.rows = 16;
            w.cols = 48;
            w.qblock = 16;
            w.vtile = 100;
            hk[k] = xcalloc((size_t)TD, rsz());
            if (sv_model_prefix(&w, ids, T, (sv_hook){SV_HOOK_RESID_POST, NL - 1}, hk[k]) != SV_OK) die("prefix", sv_errmsg());
            void *x1 = to_real(hs.v + TD, (size_t)TD), *x2 = to_real(hs.v + 2 * TD, (size_t)TD);
            const void *rr[2] = {x1, x2};
            r[k][0] = xcalloc((size_t)(2 * T), sizeof(double));
            r[k][1] = xcalloc((size_t)T, sizeof(double));
            if (sv_model_ce_kl(&w, (sv_hook){SV_HOOK_RESID_PRE, 1}, T, tgt, 1, rr, r[k][0], r[k][1]) != SV_OK)
                die("ce_kl", sv_errmsg());
            free(x1);
            free(x2);
            sv_model_ws_free(&w);
        }
        CHECK(!memcmp(hk[0], hk[1], (size_t)TD * rsz()), "hook values differ between 1 and 3 threads");
        CHECK(!memcmp(r[0][0], r[1][0], (size_t)(2 * T) * sizeof(double)), "nll differs between 1 and 3 threads");
        CHECK(!memcmp(r[0][1], r[1][1], (size_t)T * sizeof(double)), "kl differs between 1 and 3 threads");
        for (int k = 0; k < 2; k++) {
            free(hk[k]);
            free(r[k][0]);
            free(r[k][1]);
        }
    }

    /* Several hooks in one pass = each hook alone, byte for byte. */
    {
        const int nh = (int)(3 * NL + 1);
        sv_hook *hks = xcalloc((size_t)nh, sizeof *hks);
        void **o = xcalloc((size_t)nh, sizeof *o);
        for (int64_t L = 0; L < NL; L++) {
            hks[3 * L] = (sv_hook){SV_HOOK_MLP_OUT, NL - 1 - L}; /* any order */
            hks[3 * L + 1] = (sv_hook){SV_HOOK_RESID_PRE, L};
            hks[3 * L + 2] = (sv_hook){SV_HOOK_ATTN_OUT, L};
        }
        hks[nh - 1] = (sv_hook){SV_HOOK_RESID_POST, NL - 1};
        for (int i = 0; i < nh; i++) o[i] = xcalloc((size_t)TD, rsz());
        sv_model_ws w;
        if (sv_model_ws_init(&w, &m, T, 2) != SV_OK) die("ws", sv_errmsg());
        if (sv_model_prefix_multi(&w, ids, T, nh, hks, o) != SV_OK) die("prefix_multi", sv_errmsg());
        void *one = xcalloc((size_t)TD, rsz());
        for (int i = 0; i < nh; i++) {
            if (sv_model_prefix(&w, ids, T, hks[i], one) != SV_OK) die("prefix", sv_errmsg());
            CHECK(!memcmp(one, o[i], (size_t)TD * rsz()), "hook %d (kind %d layer %lld) differs in a multi-hook pass", i,
                  (int)hks[i].kind, (long long)hks[i].layer);
            free(o[i]);
        }
        /* The clean pass starts from stored activations; how far is a full
         * forward from the tokens? (README: the measurement.) */
        void *h1 = xcalloc((size_t)TD, rsz()), *hs1 = to_real(hs.v + TD, (size_t)TD);
        if (sv_model_prefix(&w, ids, T, (sv_hook){SV_HOOK_RESID_PRE, 1}, h1) != SV_OK) die("prefix", sv_errmsg());
        double *n2 = xcalloc((size_t)(2 * T), sizeof(double)), *k2 = xcalloc((size_t)T, sizeof(double));
        const void *rr[2] = {hs1, h1};
        if (sv_model_ce_kl(&w, (sv_hook){SV_HOOK_RESID_PRE, 1}, T, tgt, 1, rr, n2, k2) != SV_OK) die("ce_kl", sv_errmsg());
        double dn = 0, dk = 0;
        for (int64_t t = 0; t + 1 < T; t++) dn = fmax(dn, fabs(n2[t] - n2[T + t]));
        for (int64_t t = 0; t < T; t++) dk = fmax(dk, fabs(k2[t]));
        printf("  stored hidden_states[1] vs own forward from tokens: max |dNLL| %.3g, max |KL| %.3g\n", dn, dk);
        CHECK(dn <= tol_logit, "own forward vs stored activations: dNLL %g", dn);
        free(h1);
        free(hs1);
        free(n2);
        free(k2);
        free(one);
        free(o);
        free(hks);
        sv_model_ws_free(&w);
    }
    free(ids);
    free(tgt);
    free(tok.v);
    free(hs.v);
    free(fin.v);
    free(ao.v);
    free(mo.v);
    free(lg.v);
    free(nll.v);
    H5Fclose(f);
    sv_model_ws_free(&ws);
    sv_model_free(&m);
    if (tu_failures()) {
        fprintf(stderr, "%d failures\n", tu_failures());
        return 1;
    }
    printf("ok\n");
    return 0;
}

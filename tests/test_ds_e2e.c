/* The seven downstream metrics end to end at the library level: a fixture
 * sequence (GPT-2's hidden_states[1] and its tokens, as a store would hold
 * them), a standard and a top-k SAE in the SAELens format, a mask, through
 * sv_ds_sequence_saes (SAE forward + model suffix + streaming CE/KL), against
 * an independent double reference: tests/ref.c for the SAEs and
 * tests/ref_lm.c for GPT-2 and the CE/KL sums.
 * usage: test_ds_e2e DATA_DIR TMP_DIR */
#define TEST_NAME "test_ds_e2e"
#define TU_CHECK 1
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/downstream.h"
#include "saeval/forward.h"
#include "saeval/model.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/safetensors.h"
#include "ref.h"
#include "ref_lm.h"
#include "testutil.h"

enum { D = 64, V = 512 };

static float *rd(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die("missing dataset", name);
    hid_t s = H5Dget_space(d);
    *n = (size_t)H5Sget_simple_extent_npoints(s);
    float *v = xcalloc(*n, sizeof(float));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die("cannot read", name);
    H5Sclose(s);
    H5Dclose(d);
    return v;
}

static uint64_t rs = 99;
static double urand(void) /* in (-1, 1) */
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return 2.0 * ((double)(rs >> 11) * 0x1.0p-53) - 1.0;
}

typedef struct {
    double *W_enc, *b_enc, *W_dec, *b_dec;
    int m, k;
} sae_w;

static sae_w make_sae(const char *dir, int m, int k)
{
    sae_w w = {xcalloc((size_t)D * m, 8), xcalloc((size_t)m, 8), xcalloc((size_t)m * D, 8), xcalloc(D, 8), m, k};
    /* Stored as F32: the reference must see exactly the float values. */
    for (int i = 0; i < D * m; i++) w.W_enc[i] = (float)(0.2 * urand());
    for (int i = 0; i < m; i++) w.b_enc[i] = (float)(0.05 * urand());
    for (int i = 0; i < m * D; i++) w.W_dec[i] = (float)(0.15 * urand());
    for (int i = 0; i < D; i++) w.b_dec[i] = (float)(0.1 * urand());
    mkdirs(dir);
    char p[1200], cfg[400];
    snprintf(cfg, sizeof cfg,
             "{\"architecture\": \"%s\", \"d_in\": %d, \"d_sae\": %d, \"dtype\": \"float32\", "
             "\"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\"%s}",
             k ? "topk" : "standard", D, m, k ? ", \"k\": 8" : "");
    snprintf(p, sizeof p, "%s/cfg.json", dir);
    if (sv_write_atomic(p, cfg, strlen(cfg)) != SV_OK) die("write", sv_errmsg());
    sv_st_wtensor t[4] = {{"W_enc", SV_DT_F32, 2, {D, m}, w.W_enc},
                          {"b_enc", SV_DT_F32, 1, {m}, w.b_enc},
                          {"W_dec", SV_DT_F32, 2, {m, D}, w.W_dec},
                          {"b_dec", SV_DT_F32, 1, {D}, w.b_dec}};
    snprintf(p, sizeof p, "%s/sae_weights.safetensors", dir);
    if (sv_st_write(p, t, 4) != SV_OK) die("write", sv_errmsg());
    return w;
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

static ref_sae ref_of(const sae_w *w)
{
    ref_sae r;
    memset(&r, 0, sizeof r);
    r.arch = w->k ? REF_TOPK : REF_STANDARD;
    r.d_in = D;
    r.d_sae = w->m;
    r.k = w->k;
    r.apply_b_dec = 1;
    r.norm = REF_NORM_NONE;
    r.scale = 1;
    r.W_enc = w->W_enc;
    r.b_enc = w->b_enc;
    r.W_dec = w->W_dec;
    r.b_dec = w->b_dec;
    return r;
}

/* --check: the evaluator's result file (saeval run with "model") against the
 * double reference over the first nseq sequences of the store, its
 * special_token_ids masked. */
static void check_run(const char *model_dir, const sae_w *w, int k, const char *result, const char *store, int64_t nseq)
{
    hid_t f = H5Fopen(store, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", store);
    size_t n, no;
    float *x = rd(f, "activations", &n), *tk = rd(f, "token_ids", &n);
    hid_t od = H5Dopen2(f, "sequence_offsets", H5P_DEFAULT);
    hid_t os = H5Dget_space(od);
    no = (size_t)H5Sget_simple_extent_npoints(os);
    int64_t *off = xcalloc(no, sizeof(int64_t)), special = -1;
    H5Dread(od, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off);
    H5Sclose(os);
    H5Dclose(od);
    hid_t a = H5Aopen(f, "special_token_ids", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT64, &special);
    H5Aclose(a);
    H5Fclose(f);
    ref_gpt2 *g = ref_gpt2_load(model_dir);
    ref_sae rs = ref_of(w);
    double fbuf[128];
    ref_lm_sums tot;
    memset(&tot, 0, sizeof tot);
    for (int64_t q = 0; q < nseq && q + 1 < (int64_t)no; q++) {
        const int64_t a0 = off[q], T = off[q + 1] - off[q];
        int32_t *ids = xcalloc((size_t)T, sizeof *ids);
        uint8_t *mask = xcalloc((size_t)T, 1);
        double *in = xcalloc((size_t)(T * D), sizeof(double)), *L[3];
        for (int64_t t = 0; t < T; t++) {
            ids[t] = (int32_t)tk[a0 + t];
            mask[t] = ids[t] == special;
        }
        for (int64_t j = 0; j < T * D; j++) in[j] = x[a0 * D + j];
        L[0] = ref_gpt2_logits(g, in, T, 1);
        for (int64_t t = 0; t < T; t++)
            if (!mask[t]) {
                double xt[D];
                memcpy(xt, in + t * D, sizeof xt);
                ref_forward(&rs, xt, fbuf, in + t * D);
            }
        L[2] = ref_gpt2_logits(g, in, T, 1);
        memset(in, 0, (size_t)(T * D) * sizeof(double));
        L[1] = ref_gpt2_logits(g, in, T, 1);
        ref_lm_sums r = ref_lm_sum(L, 1, ids, mask, T, V);
        tot.ce_clean += r.ce_clean;
        tot.ce_abl += r.ce_abl;
        tot.kl_abl += r.kl_abl;
        tot.ce[0] += r.ce[0];
        tot.kl[0] += r.kl[0];
        tot.nce += r.nce;
        tot.nkl += r.nkl;
        for (int i = 0; i < 3; i++) free(L[i]);
        free(in);
        free(ids);
        free(mask);
    }
    char *text;
    size_t len;
    if (sv_read_file(result, &text, &len) != SV_OK) die("read", sv_errmsg());
    cJSON *j = sv_json_parse_exact(text, len);
    free(text);
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "metrics"),
                                                       "model_behavior_preservation");
    if (!mb) die("no model_behavior_preservation group in", result);
    const double cc = tot.ce_clean / tot.nce, cs = tot.ce[0] / tot.nce, ca = tot.ce_abl / tot.nce;
    const double ks = tot.kl[0] / tot.nkl, ka = tot.kl_abl / tot.nkl;
    const char *keys[7] = {"ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation", "ce_loss_score",
                           "kl_div_with_sae", "kl_div_with_ablation", "kl_div_score"};
    const double want[7] = {cc, cs, ca, (ca - cs) / (ca - cc), ks, ka, (ka - ks) / ka};
    for (int i = 0; i < 7; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(mb, keys[i]);
        CHECK(cJSON_IsNumber(v) && close_to(v->valuedouble, want[i], i == 3 || i == 6 ? 2e-3 : 1e-4),
              "%s %s: %.10g vs reference %.10g", result, keys[i], cJSON_IsNumber(v) ? v->valuedouble : NAN, want[i]);
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(mb, "ce_tokens"), *kt = cJSON_GetObjectItemCaseSensitive(mb, "kl_tokens");
    CHECK(cJSON_IsNumber(ct) && ct->valuedouble == (double)tot.nce && cJSON_IsNumber(kt) &&
              kt->valuedouble == (double)tot.nkl, "token counts");
    printf("  %s (SAE %d): ce %.6f/%.6f/%.6f kl %.6f/%.6f vs the double reference: ok within tolerance\n", result, k, cc,
           cs, ca, ks, ka);
    cJSON_Delete(j);
    ref_gpt2_free(g);
    free(x);
    free(tk);
    free(off);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 3) die("usage: test_ds_e2e DATA_DIR TMP_DIR", NULL);
    sv_fwd_set_threads(2);
    char dir[1024], p[1100], sd[2][1100];
    snprintf(dir, sizeof dir, "%s/gpt2", argv[1]);
    snprintf(p, sizeof p, "%s/fixtures.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", p);
    size_t n;
    float *tok = rd(f, "seq2/tokens", &n);
    const int64_t T = (int64_t)n, TD = T * D;
    float *hs = rd(f, "seq2/hidden_states", &n);
    H5Fclose(f);
    const float *x = hs + TD;
    int32_t *ids = xcalloc((size_t)T, sizeof *ids);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)tok[t];
    uint8_t mask[64] = {0};
    mask[0] = mask[10] = mask[30] = 1;

    snprintf(sd[0], sizeof sd[0], "%s/standard", argv[2]);
    snprintf(sd[1], sizeof sd[1], "%s/topk", argv[2]);
    sae_w w[2] = {make_sae(sd[0], 96, 0), make_sae(sd[1], 128, 8)};
    if (argc >= 7 && !strcmp(argv[3], "--check")) { /* the same SAEs (same seed) against a run's results */
        char res[1200];
        for (int k = 0; k < 2; k++) {
            snprintf(res, sizeof res, "%s/%s__gpt2_l1.json", argv[4], k ? "topk" : "standard");
            check_run(dir, &w[k], k, res, argv[5], atoll(argv[6]));
        }
        for (int k = 0; k < 2; k++) {
            free(w[k].W_enc);
            free(w[k].b_enc);
            free(w[k].W_dec);
            free(w[k].b_dec);
        }
        free(ids);
        free(tok);
        free(hs);
        MPI_Finalize();
        if (tu_failures()) {
            fprintf(stderr, "%d failures\n", tu_failures());
            return 1;
        }
        printf("ok\n");
        return 0;
    }

    /* Reference: SAEs by tests/ref.c, the model by tests/ref_lm.c. */
    ref_gpt2 *g = ref_gpt2_load(dir);
    double *in = xcalloc((size_t)TD, sizeof(double)), *fbuf = xcalloc(128, sizeof(double)), *L[4];
    for (int64_t j = 0; j < TD; j++) in[j] = x[j];
    L[0] = ref_gpt2_logits(g, in, T, 1);
    memset(in, 0, (size_t)TD * sizeof(double));
    L[1] = ref_gpt2_logits(g, in, T, 1);
    for (int k = 0; k < 2; k++) {
        ref_sae rsae;
        memset(&rsae, 0, sizeof rsae);
        rsae.arch = k ? REF_TOPK : REF_STANDARD;
        rsae.d_in = D;
        rsae.d_sae = w[k].m;
        rsae.k = w[k].k;
        rsae.apply_b_dec = 1;
        rsae.norm = REF_NORM_NONE;
        rsae.scale = 1;
        rsae.W_enc = w[k].W_enc;
        rsae.b_enc = w[k].b_enc;
        rsae.W_dec = w[k].W_dec;
        rsae.b_dec = w[k].b_dec;
        for (int64_t t = 0; t < T; t++) {
            double xt[D];
            for (int i = 0; i < D; i++) xt[i] = x[t * D + i];
            if (mask[t]) memcpy(in + t * D, xt, sizeof xt);
            else ref_forward(&rsae, xt, fbuf, in + t * D);
        }
        L[2 + k] = ref_gpt2_logits(g, in, T, 1);
    }
    ref_lm_sums r = ref_lm_sum(L, 2, ids, mask, T, V);
    double want[2][7];
    for (int k = 0; k < 2; k++) {
        const double cc = r.ce_clean / r.nce, cs = r.ce[k] / r.nce, ca = r.ce_abl / r.nce;
        const double ks = r.kl[k] / r.nkl, ka = r.kl_abl / r.nkl;
        const double v[7] = {cc, cs, ca, (ca - cs) / (ca - cc), ks, ka, (ka - ks) / ka};
        memcpy(want[k], v, sizeof v);
    }

    for (int prec = 32; prec <= 64; prec += 32) {
        sv_model m;
        if (sv_model_load(&m, dir, prec) != SV_OK) die("load", sv_errmsg());
        sv_model_ws ws;
        if (sv_model_ws_init(&ws, &m, T, 4) != SV_OK) die("ws", sv_errmsg());
        sv_sae s[2];
        sv_fwd fw[2];
        sv_fwd *fp[2] = {&fw[0], &fw[1]};
        for (int k = 0; k < 2; k++) {
            if (sv_sae_load(&s[k], sd[k], prec, 0, 1.0) != SV_OK) die("sae", sv_errmsg());
            if (sv_fwd_init(&fw[k], &s[k], SV_GEMM_ROWS) != SV_OK) die("fwd", sv_errmsg());
        }
        sv_ds_sums sums;
        if (sv_ds_sums_init(&sums, 2) != SV_OK) die("sums", NULL);
        if (sv_ds_sequence_saes(&ws, (sv_hook){SV_HOOK_RESID_PRE, 1}, T, ids, mask, x, 2, fp, &sums) != SV_OK)
            die("sequence", sv_errmsg());
        const double tol = prec == 64 ? 1e-9 : 1e-4, tol_score = prec == 64 ? 1e-8 : 2e-3;
        static const char *names[7] = {"ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation",
                                       "ce_loss_score", "kl_div_with_sae", "kl_div_with_ablation", "kl_div_score"};
        for (int k = 0; k < 2; k++) {
            sv_ds_metrics mm;
            sv_ds_finish(&sums, k, &mm);
            const double got[7] = {mm.ce_loss_without_sae, mm.ce_loss_with_sae, mm.ce_loss_with_ablation,
                                   mm.ce_loss_score,       mm.kl_div_with_sae, mm.kl_div_with_ablation,
                                   mm.kl_div_score};
            for (int i = 0; i < 7; i++)
                CHECK(close_to(got[i], want[k][i], i == 3 || i == 6 ? tol_score : tol), "f%d %s %s: %.12g vs %.12g",
                      prec, k ? "topk" : "standard", names[i], got[i], want[k][i]);
            CHECK(mm.ce_tokens == r.nce && mm.kl_tokens == r.nkl, "token counts");
            printf("  f%d %-8s ce %.6f/%.6f/%.6f score %.6f | kl %.6f/%.6f score %.6f\n", prec, k ? "topk" : "standard",
                   got[0], got[1], got[2], got[3], got[4], got[5], got[6]);
        }
        sv_ds_sums_free(&sums);
        for (int k = 0; k < 2; k++) {
            sv_fwd_free(&fw[k]);
            sv_sae_free(&s[k]);
        }
        sv_model_ws_free(&ws);
        sv_model_free(&m);
    }
    for (int i = 0; i < 4; i++) free(L[i]);
    for (int k = 0; k < 2; k++) {
        free(w[k].W_enc);
        free(w[k].b_enc);
        free(w[k].W_dec);
        free(w[k].b_dec);
    }
    free(in);
    free(fbuf);
    ref_gpt2_free(g);
    free(ids);
    free(tok);
    free(hs);
    MPI_Finalize();
    if (tu_failures()) {
        fprintf(stderr, "%d failures\n", tu_failures());
        return 1;
    }
    printf("ok\n");
    return 0;
}

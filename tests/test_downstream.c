/* Downstream CE / KL sums of one sequence (src/downstream.c) against
 *  (a) the transformers 4.48 fixture logits (no mask: clean, zero splice,
 *      perturbed splice at layer 1), and
 *  (b) a plain double-precision GPT-2 written here, separately from the
 *      optimized path, for a masked splice (masked positions keep the
 *      stored activation; SAELens's CE / KL masks);
 * plus the sharing rule: K SAEs together, alone, or in walks of one give
 * byte-identical sums.
 * usage: test_downstream DATA_DIR */
#define TEST_NAME "test_downstream"
#define TU_CHECK 1
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/downstream.h"
#include "saeval/forward.h"
#include "saeval/model.h"
#include "saeval/safetensors.h"
#include "saeval/store.h"
#include <mpi.h>
#include "testutil.h"
#include "ref_lm.h"

static float *rd(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die("missing dataset", name);
    hid_t s = H5Dget_space(d);
    hsize_t dims[4];
    int nd = H5Sget_simple_extent_dims(s, dims, NULL);
    *n = 1;
    for (int i = 0; i < nd; i++) *n *= dims[i];
    float *v = xcalloc(*n, sizeof(float));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die("cannot read", name);
    H5Sclose(s);
    H5Dclose(d);
    return v;
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

static void compare(const char *what, const sv_ds_sums *s, const ref_lm_sums *r, int K, double tol)
{
    CHECK(s->ce_tokens == r->nce && s->kl_tokens == r->nkl, "%s: tokens %lld/%lld vs %lld/%lld", what,
          (long long)s->ce_tokens, (long long)s->kl_tokens, (long long)r->nce, (long long)r->nkl);
    CHECK(close_to(s->ce_clean, r->ce_clean, tol), "%s: ce_clean %.10g vs %.10g", what, s->ce_clean, r->ce_clean);
    CHECK(close_to(s->ce_ablation, r->ce_abl, tol), "%s: ce_ablation %.10g vs %.10g", what, s->ce_ablation, r->ce_abl);
    CHECK(close_to(s->kl_ablation, r->kl_abl, tol), "%s: kl_ablation %.10g vs %.10g", what, s->kl_ablation, r->kl_abl);
    for (int k = 0; k < K; k++) {
        CHECK(close_to(s->ce_sae[k], r->ce[k], tol), "%s: ce_sae[%d] %.10g vs %.10g", what, k, s->ce_sae[k], r->ce[k]);
        CHECK(close_to(s->kl_sae[k], r->kl[k], tol), "%s: kl_sae[%d] %.10g vs %.10g", what, k, s->kl_sae[k], r->kl[k]);
    }
    printf("  %s: ce clean %.6f abl %.6f sae0 %.6f, kl abl %.6f sae0 %.6f (%lld / %lld tokens)\n", what,
           s->ce_clean / s->ce_tokens, s->ce_ablation / s->ce_tokens, s->ce_sae[0] / s->ce_tokens,
           s->kl_ablation / s->kl_tokens, s->kl_sae[0] / s->kl_tokens, (long long)s->ce_tokens,
           (long long)s->kl_tokens);
}

/* Store checks against the model: a store per defect, written here. */
static void store_case(const sv_model *m, const char *dir, const char *name, const char *hook, int64_t d,
                       int with_ids, int64_t seqlen, const char *frag)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.h5", dir, name);
    const int64_t n = seqlen * 2;
    float *x = xcalloc((size_t)(n * d), sizeof(float));
    int64_t *ids = xcalloc((size_t)n, sizeof(int64_t));
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.context_size = seqlen;
    o.token_ids = with_ids ? ids : NULL;
    o.hook_name = hook;
    if (sv_store_write(path, x, n, d, &o) != SV_OK) die("write store", sv_errmsg());
    sv_store s;
    if (sv_store_open(&s, path, MPI_COMM_SELF) != SV_OK) die("open store", sv_errmsg());
    sv_hook h;
    sv_rc rc = sv_ds_check_store(&s, m, &h);
    if (!frag) {
        CHECK(rc == SV_OK && h.kind == SV_HOOK_RESID_PRE && h.layer == 1, "%s: %s", name, sv_errmsg());
    } else {
        CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), frag) && strstr(sv_errmsg(), path), "%s: rc %d, message: %s", name,
              (int)rc, sv_errmsg());
        printf("  refused as expected: %s\n", sv_errmsg());
    }
    sv_store_close(&s);
    free(x);
    free(ids);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 3) die("usage: test_downstream DATA_DIR TMP_DIR", NULL);
    char dir[1024], p[1100];
    snprintf(dir, sizeof dir, "%s/gpt2", argv[1]);
    sv_fwd_set_threads(1);
    snprintf(p, sizeof p, "%s/fixtures.h5", dir);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", p);
    size_t n;
    float *tok = rd(f, "seq2/tokens", &n);
    const int64_t T = (int64_t)n, d = 64, V = 512, TD = T * d;
    float *hs = rd(f, "seq2/hidden_states", &n), *lg = rd(f, "seq2/logits", &n);
    float *pr = rd(f, "seq2/splice_L1_perturbed/resid_pre", &n), *plg = rd(f, "seq2/splice_L1_perturbed/logits", &n);
    float *zlg = rd(f, "seq2/splice_L1_zero/logits", &n);
    H5Fclose(f);
    int32_t *ids = xcalloc((size_t)T, sizeof *ids);
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)tok[t];
    const float *x = hs + TD; /* the store: hidden_states[1] = blocks.1.hook_resid_pre */
    /* Two "SAE reconstructions": the fixture's perturbed input, and the
     * clean input plus a quarter of that perturbation. */
    double *xh[2] = {xcalloc((size_t)TD, sizeof(double)), xcalloc((size_t)TD, sizeof(double))};
    for (int64_t j = 0; j < TD; j++) {
        xh[0][j] = pr[j];
        xh[1][j] = x[j] + 0.25 * ((double)pr[j] - x[j]);
    }
    const sv_hook hook = {SV_HOOK_RESID_PRE, 1};

    for (int prec = 32; prec <= 64; prec += 32) {
        sv_model m;
        if (sv_model_load(&m, dir, prec) != SV_OK) die("load", sv_errmsg());
        const double tol = 2e-5;
        /* (a) no mask, SAE 0 = the perturbed splice: fixture logits. */
        {
            double *L[3] = {xcalloc((size_t)(T * V), 8), xcalloc((size_t)(T * V), 8), xcalloc((size_t)(T * V), 8)};
            for (int64_t i = 0; i < T * V; i++) {
                L[0][i] = lg[i];
                L[1][i] = zlg[i];
                L[2][i] = plg[i];
            }
            ref_lm_sums r = ref_lm_sum(L, 1, ids, NULL, T, V);
            sv_model_ws ws;
            if (sv_model_ws_init(&ws, &m, T, 3) != SV_OK) die("ws", sv_errmsg());
            sv_ds_sums s;
            if (sv_ds_sums_init(&s, 1) != SV_OK) die("sums", NULL);
            if (sv_ds_sequence(&ws, hook, T, ids, NULL, x, 1, (const double *const *)xh, &s) != SV_OK)
                die("sequence", sv_errmsg());
            compare(prec == 64 ? "fixture, f64" : "fixture, f32", &s, &r, 1, 1e-4);
            sv_ds_metrics mm;
            sv_ds_finish(&s, 0, &mm);
            const double want = ((r.ce_abl - r.ce[0]) / r.nce) / ((r.ce_abl - r.ce_clean) / r.nce);
            CHECK(close_to(mm.ce_loss_score, want, 1e-4), "ce_loss_score %.10g vs %.10g", mm.ce_loss_score, want);
            CHECK(close_to(mm.kl_div_score, (r.kl_abl - r.kl[0]) / r.kl_abl, 1e-4), "kl_div_score %.10g",
                  mm.kl_div_score);
            sv_ds_sums_free(&s);
            sv_model_ws_free(&ws);
            for (int i = 0; i < 3; i++) free(L[i]);
        }
        /* (b) a mask (BOS and two more positions) against the plain double
         * GPT-2; first the reference itself against the fixture. */
        {
            ref_gpt2 *g = ref_gpt2_load(dir);
            uint8_t mask[64] = {0};
            mask[0] = mask[7] = mask[T - 1] = 1;
            double *in = xcalloc((size_t)TD, sizeof(double));
            for (int64_t j = 0; j < TD; j++) in[j] = x[j];
            double *L[4];
            L[0] = ref_gpt2_logits(g, in, T, 1);
            double em = 0;
            for (int64_t i = 0; i < T * V; i++) em = fmax(em, fabs(L[0][i] - lg[i]));
            CHECK(em < 1e-4, "the double reference GPT-2 is off the fixture by %g", em);
            for (int64_t j = 0; j < TD; j++) in[j] = 0;
            L[1] = ref_gpt2_logits(g, in, T, 1);
            for (int k = 0; k < 2; k++) {
                for (int64_t t = 0; t < T; t++)
                    for (int64_t i = 0; i < d; i++) in[t * d + i] = mask[t] ? x[t * d + i] : xh[k][t * d + i];
                L[2 + k] = ref_gpt2_logits(g, in, T, 1);
            }
            ref_lm_sums r = ref_lm_sum(L, 2, ids, mask, T, V);
            sv_model_ws ws;
            if (sv_model_ws_init(&ws, &m, T, 4) != SV_OK) die("ws", sv_errmsg());
            sv_ds_sums s;
            if (sv_ds_sums_init(&s, 2) != SV_OK) die("sums", NULL);
            if (sv_ds_sequence(&ws, hook, T, ids, mask, x, 2, (const double *const *)xh, &s) != SV_OK)
                die("sequence", sv_errmsg());
            compare(prec == 64 ? "masked vs double GPT-2, f64" : "masked vs double GPT-2, f32", &s, &r, 2,
                    prec == 64 ? 1e-10 : tol);
            sv_ds_sums_free(&s);
            sv_model_ws_free(&ws);
            for (int i = 0; i < 4; i++) free(L[i]);
            free(in);
            ref_gpt2_free(g);
        }
        /* Sharing: 3 SAEs in one walk, in walks of one, and each alone. */
        {
            double *x3[3] = {xh[0], xh[1], xh[0]};
            uint8_t mask[64] = {0};
            mask[0] = 1;
            sv_ds_sums all, one, alone;
            sv_model_ws w5, w3;
            if (sv_model_ws_init(&w5, &m, T, 5) != SV_OK || sv_model_ws_init(&w3, &m, T, 3) != SV_OK) die("ws", NULL);
            if (sv_ds_sums_init(&all, 3) || sv_ds_sums_init(&one, 3) || sv_ds_sums_init(&alone, 1)) die("sums", NULL);
            if (sv_ds_sequence(&w5, hook, T, ids, mask, x, 3, (const double *const *)x3, &all) != SV_OK ||
                sv_ds_sequence(&w3, hook, T, ids, mask, x, 3, (const double *const *)x3, &one) != SV_OK)
                die("sequence", sv_errmsg());
            for (int k = 0; k < 3; k++) {
                sv_ds_sums_zero(&alone);
                if (sv_ds_sequence(&w5, hook, T, ids, mask, x, 1, (const double *const *)&x3[k], &alone) != SV_OK)
                    die("sequence", sv_errmsg());
                CHECK(!memcmp(&all.ce_sae[k], &alone.ce_sae[0], 8) && !memcmp(&all.kl_sae[k], &alone.kl_sae[0], 8) &&
                          !memcmp(&one.ce_sae[k], &alone.ce_sae[0], 8) && !memcmp(&one.kl_sae[k], &alone.kl_sae[0], 8),
                      "SAE %d: sums differ between shared and single runs", k);
                CHECK(!memcmp(&all.ce_clean, &alone.ce_clean, 8) && !memcmp(&all.kl_ablation, &alone.kl_ablation, 8) &&
                          !memcmp(&one.ce_ablation, &alone.ce_ablation, 8), "shared clean / ablation sums differ");
            }
            CHECK(!memcmp(&all.ce_sae[0], &all.ce_sae[2], 8), "the same reconstruction twice gives two sums");
            sv_ds_sums_free(&all);
            sv_ds_sums_free(&one);
            sv_ds_sums_free(&alone);
            sv_model_ws_free(&w5);
            sv_model_ws_free(&w3);
        }
        if (prec == 32) {
            mkdirs(argv[2]);
            store_case(&m, argv[2], "good", "blocks.1.hook_resid_pre", 64, 1, 128, NULL);
            store_case(&m, argv[2], "no_hook", NULL, 64, 1, 16, "hook_name");
            store_case(&m, argv[2], "mlp_hook", "blocks.0.hook_mlp_out", 64, 1, 16, "hook_resid_pre");
            store_case(&m, argv[2], "deep_hook", "blocks.3.hook_resid_pre", 64, 1, 16, "beyond");
            store_case(&m, argv[2], "odd_hook", "blocks.1.ln2.hook_normalized", 64, 1, 16, "not supported");
            store_case(&m, argv[2], "d_in", "blocks.1.hook_resid_pre", 32, 1, 16, "d_in = 32");
            store_case(&m, argv[2], "no_ids", "blocks.1.hook_resid_pre", 64, 0, 16, "/token_ids");
            store_case(&m, argv[2], "long", "blocks.1.hook_resid_pre", 64, 1, 130, "positions");
            /* ids >= vocab: refused when the sequence runs */
            sv_model_ws ws;
            if (sv_model_ws_init(&ws, &m, T, 3) != SV_OK) die("ws", sv_errmsg());
            sv_ds_sums s;
            if (sv_ds_sums_init(&s, 1) != SV_OK) die("sums", NULL);
            ids[5] = 512;
            CHECK(sv_ds_sequence(&ws, hook, T, ids, NULL, x, 1, (const double *const *)xh, &s) == SV_EINPUT &&
                      strstr(sv_errmsg(), "vocabulary"), "id >= vocab: %s", sv_errmsg());
            ids[5] = (int32_t)tok[5];
            sv_ds_sums_free(&s);
            sv_model_ws_free(&ws);
        }
        sv_model_free(&m);
    }
    free(xh[0]);
    free(xh[1]);
    free(ids);
    free(tok);
    free(hs);
    free(lg);
    free(pr);
    free(plg);
    free(zlg);
    MPI_Finalize();
    if (tu_failures()) {
        fprintf(stderr, "%d failures\n", tu_failures());
        return 1;
    }
    printf("ok\n");
    return 0;
}

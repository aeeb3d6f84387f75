/* Config variants the transformers fixtures do not exercise, in float64
 * against the plain double references of tests/ref_lm.c (themselves checked
 * against the fixture logits first): GPT-2 scale_attn_weights false and
 * scale_attn_by_inverse_layer_idx true; GPT-NeoX sequential residual
 * (use_parallel_residual false) and another rotary_pct.
 * usage: test_model_variants DATA_DIR TMP_DIR */
#define TEST_NAME "test_model_variants"
#define TU_CHECK 1
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/forward.h"
#include "saeval/model.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "ref_lm.h"
#include "testutil.h"

enum { D = 64, V = 512 };
static const char *data, *tmp;

/* tmp/name: the model's weights and its config.json with key = val (JSON). */
static char *variant(const char *model, const char *name, const char *key, const char *val)
{
    char *dir = xcalloc(1100, 1), p[1200];
    snprintf(dir, 1100, "%s/%s", tmp, name);
    mkdirs(dir);
    char *text;
    size_t len;
    snprintf(p, sizeof p, "%s/%s/model.safetensors", data, model);
    if (sv_read_file(p, &text, &len) != SV_OK) die("read", sv_errmsg());
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (sv_write_atomic(p, text, len) != SV_OK) die("write", sv_errmsg());
    free(text);
    snprintf(p, sizeof p, "%s/%s/config.json", data, model);
    if (sv_read_file(p, &text, &len) != SV_OK) die("read", sv_errmsg());
    cJSON *j = sv_json_parse_exact(text, len);
    free(text);
    if (key) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, key);
        cJSON_AddItemToObject(j, key, cJSON_Parse(val));
    }
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (sv_write_atomic(p, out, strlen(out)) != SV_OK) die("write", sv_errmsg());
    free(out);
    return dir;
}

typedef struct {
    double *lg;
} gat_ctx;
static int gat(void *c_, int64_t v0, int64_t vt, int64_t T, const void *const *tiles)
{
    gat_ctx *c = c_;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < vt; j++) c->lg[t * V + v0 + j] = ((const double *)tiles[0])[t * vt + j];
    return 0;
}

/* Our float64 logits of the suffix from block 1 on x [T][64]. */
static double *ours(const char *dir, const double *x, int64_t T)
{
    sv_model m;
    if (sv_model_load(&m, dir, 64) != SV_OK) die("load", sv_errmsg());
    sv_model_ws ws;
    if (sv_model_ws_init(&ws, &m, T, 1) != SV_OK) die("ws", sv_errmsg());
    ws.rows = 16; /* several row tiles and query blocks */
    ws.qblock = 16;
    double *nrm = xcalloc((size_t)(T * D), sizeof(double));
    if (sv_model_suffix(&ws, (sv_hook){SV_HOOK_RESID_PRE, 1}, x, T, nrm) != SV_OK) die("suffix", sv_errmsg());
    gat_ctx c = {xcalloc((size_t)(T * V), sizeof(double))};
    const void *s[1] = {nrm};
    if (sv_model_logit_tiles(&ws, 1, s, T, gat, &c) != SV_OK) die("tiles", sv_errmsg());
    free(nrm);
    sv_model_ws_free(&ws);
    sv_model_free(&m);
    return c.lg;
}

static double maxdiff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static double *fixture(const char *model, const char *name, size_t *n)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/%s/fixtures.h5", data, model);
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", p);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die("missing", name);
    hid_t s = H5Dget_space(d);
    *n = (size_t)H5Sget_simple_extent_npoints(s);
    double *v = xcalloc(*n, sizeof(double));
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die("read", name);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage: test_model_variants DATA_DIR TMP_DIR", NULL);
    data = argv[1];
    tmp = argv[2];
    sv_fwd_set_threads(2);
    mkdirs(tmp);
    size_t n, nl;
    char dir[1100];

    /* GPT-2 */
    double *hs = fixture("gpt2", "seq2/hidden_states", &n), *lg = fixture("gpt2", "seq2/logits", &nl);
    const int64_t T = (int64_t)(nl / V);
    const double *x1 = hs + T * D;
    snprintf(dir, sizeof dir, "%s/gpt2", data);
    ref_gpt2 *g = ref_gpt2_load(dir);
    double *r = ref_gpt2_logits_opt(g, x1, T, 1, 1, 0), *o;
    CHECK(maxdiff(r, lg, nl) < 1e-4, "GPT-2 reference vs fixture: %g", maxdiff(r, lg, nl));
    free(r);
    static const struct { const char *key, *val; int scale, inv; } gv[] = {
        {"scale_attn_by_inverse_layer_idx", "true", 1, 1},
        {"scale_attn_weights", "false", 0, 0},
    };
    for (size_t i = 0; i < sizeof gv / sizeof gv[0]; i++) {
        char *vd = variant("gpt2", gv[i].key, gv[i].key, gv[i].val);
        r = ref_gpt2_logits_opt(g, x1, T, 1, gv[i].scale, gv[i].inv);
        o = ours(vd, x1, T);
        const double e = maxdiff(o, r, nl), moved = maxdiff(r, lg, nl);
        CHECK(e < 1e-9 && moved > 1e-3, "gpt2 %s: ours vs reference %g (variant moves logits by %g)", gv[i].key, e, moved);
        printf("  gpt2 %s=%s: |ours - ref| %.3g (moves logits by %.3g)\n", gv[i].key, gv[i].val, e, moved);
        free(r);
        free(o);
        free(vd);
    }
    ref_gpt2_free(g);
    free(hs);
    free(lg);

    /* GPT-NeoX */
    hs = fixture("pythia", "seq2/hidden_states", &n);
    lg = fixture("pythia", "seq2/logits", &nl);
    x1 = hs + T * D;
    snprintf(dir, sizeof dir, "%s/pythia", data);
    ref_neox *nx = ref_neox_load(dir);
    r = ref_neox_logits(nx, x1, T, 1, 1, 4);
    CHECK(maxdiff(r, lg, nl) < 1e-4, "NeoX reference vs fixture: %g", maxdiff(r, lg, nl));
    o = ours(dir, x1, T);
    CHECK(maxdiff(o, r, nl) < 1e-9, "pythia: ours vs reference %g", maxdiff(o, r, nl));
    free(r);
    free(o);
    static const struct { const char *name, *key, *val; int parallel, rot; } nv[] = {
        {"neox_sequential", "use_parallel_residual", "false", 0, 4},
        {"neox_rot8", "rotary_pct", "0.5", 1, 8},
    };
    for (size_t i = 0; i < sizeof nv / sizeof nv[0]; i++) {
        char *vd = variant("pythia", nv[i].name, nv[i].key, nv[i].val);
        r = ref_neox_logits(nx, x1, T, 1, nv[i].parallel, nv[i].rot);
        o = ours(vd, x1, T);
        const double e = maxdiff(o, r, nl), moved = maxdiff(r, lg, nl);
        CHECK(e < 1e-9 && moved > 1e-3, "%s: ours vs reference %g (variant moves logits by %g)", nv[i].name, e, moved);
        printf("  %s: |ours - ref| %.3g (moves logits by %.3g)\n", nv[i].name, e, moved);
        free(r);
        free(o);
        free(vd);
    }
    ref_neox_free(nx);
    free(hs);
    free(lg);
    if (tu_failures()) {
        fprintf(stderr, "%d failures\n", tu_failures());
        return 1;
    }
    printf("ok\n");
    return 0;
}

/* Feature files and the Neuronpedia export: what is read back equals what
 * the accumulator holds; two accumulators fed in different orders give
 * byte-identical files; the batch JSON parses and carries every field
 * Neuronpedia's importer reads (SAEDashboard's NeuronpediaDashboardBatch /
 * Feature / Activation), with the right types and parallel arrays.
 * usage: test_featfile WORK_DIR TOKENIZER_FIXTURE_DIR */
#define TEST_NAME "test_featfile"
#include "saeval/export.h"
#include "saeval/featfile.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>

#define T 700
#define D 9
static float A[T * D];
static int64_t seqoff[T + 1], nseq, tokid[T];

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static void make_data(void)
{
    for (int64_t p = 0; p < T;) {
        seqoff[nseq++] = p;
        p += 1 + (int64_t)(rnd() % 30);
        if (p > T) p = T;
    }
    seqoff[nseq] = T;
    for (int t = 0; t < T; t++) tokid[t] = (int64_t)(rnd() % 19); /* ids of the byte-level fixture */
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++) {
            uint64_t r = rnd() % 100;
            A[t * D + j] = (j == 0) ? 0 : (r < (uint64_t)(30 + 5 * j)) ? 0.25f * (float)(1 + rnd() % 12) : 0;
        }
}

static sv_feat *build(const sv_feat_params *p, int reverse)
{
    sv_feat *f = NULL, *g = NULL;
    CHECK(sv_feat_new(&f, p) == SV_OK && sv_feat_new(&g, p) == SV_OK);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++) {
            int tt = reverse ? T - 1 - t : t;
            sv_feat_observe(tt < T / 3 ? g : f, j, tt, A[tt * D + j]);
        }
    sv_feat_add_tokens(f, T - T / 3);
    sv_feat_add_tokens(g, T / 3);
    CHECK(sv_feat_merge(f, g) == SV_OK);
    sv_feat_free(g);
    return f;
}

static void fill(sv_feat_windows *w)
{
    float *blk = xcalloc((size_t)T * (size_t)(w->j1 - w->j0), sizeof *blk);
    for (int t = 0; t < T; t++)
        for (int64_t j = w->j0; j < w->j1; j++) blk[t * (w->j1 - w->j0) + (j - w->j0)] = A[t * D + j];
    sv_feat_windows_fill(w, 0, T, blk, (size_t)(w->j1 - w->j0), tokid);
    free(blk);
}

static void write_file(const char *path, const sv_feat *f, int split)
{
    sv_featfile_meta m = {"sae/a", "ds", nseq, 0};
    sv_feat_windows w;
    CHECK(sv_feat_windows_new(&w, f, 0, 1, seqoff, nseq) == SV_OK);
    m.window_width = w.width;
    sv_feat_windows_free(&w);
    sv_featfile_writer *fw = NULL;
    CHECK(sv_featfile_create(&fw, path, f, &m) == SV_OK);
    int64_t cuts[3] = {0, split ? 4 : D, D};
    for (int k = 0; k < (split ? 2 : 1); k++) {
        CHECK(sv_feat_windows_new(&w, f, cuts[k], cuts[k + 1], seqoff, nseq) == SV_OK);
        fill(&w);
        CHECK(sv_featfile_put(fw, f, &w) == SV_OK);
        sv_feat_windows_free(&w);
    }
    CHECK(sv_featfile_commit(fw) == SV_OK);
}

static char *slurp(const char *path, size_t *n)
{
    char *b = NULL;
    CHECK(sv_read_file(path, &b, n) == SV_OK);
    return b;
}

static void same_example(const sv_featfile_ex *x, const sv_feat_ex *e, const sv_featfile *ff)
{
    const sv_feat_params *p = sv_featfile_params(ff);
    CHECK(x->token == e->token && x->value == e->value);
    int64_t s = 0;
    while (seqoff[s + 1] <= x->token) s++;
    int64_t st = seqoff[s], en = seqoff[s + 1];
    if (p->ctx_before >= 0) {
        if (x->token - p->ctx_before > st) st = x->token - p->ctx_before;
        if (x->token + p->ctx_after + 1 < en) en = x->token + p->ctx_after + 1;
    }
    CHECK(x->start == st && x->len == en - st);
}

static void check_read(const char *path, const sv_feat *f)
{
    sv_featfile *ff = NULL;
    CHECK(sv_featfile_open(&ff, path) == SV_OK);
    CHECK(strcmp(sv_featfile_sae_id(ff), "sae/a") == 0 && strcmp(sv_featfile_dataset(ff), "ds") == 0);
    CHECK(sv_featfile_tokens(ff) == T && sv_featfile_sequences(ff) == nseq);
    const sv_feat_params *p = sv_featfile_params(ff);
    sv_feat_ex ex[64];
    for (int64_t j = 0; j < D; j++) {
        sv_featfile_latent l;
        CHECK(sv_featfile_read(ff, j, &l) == SV_OK);
        CHECK(l.nonzero == sv_feat_nonzero(f, j) && l.max == sv_feat_max(f, j));
        CHECK(l.frac_nonzero == (double)l.nonzero / T);
        double w;
        int64_t cnt[4096];
        (void)sv_feat_hist(f, j, &w, cnt);
        CHECK(l.hist_width == w);
        for (int b = 0; b < p->grid_bins; b++) CHECK(l.hist[b] == (l.nonzero ? cnt[b] : 0));
        int m = sv_feat_top(f, j, ex);
        CHECK(l.n_top == m);
        for (int k = 0; k < m; k++) {
            same_example(&l.top[k], &ex[k], ff);
            for (int c = 0; c < sv_featfile_width(ff); c++) {
                int in = c < l.top[k].len;
                int64_t t = l.top[k].start + c;
                CHECK(l.top[k].ids[c] == (in ? tokid[t] : -1));
                CHECK(l.top[k].values[c] == (in ? A[t * D + j] : 0));
            }
        }
        for (int g = 0; g < p->n_intervals; g++) {
            double lo, hi;
            int64_t count;
            m = sv_feat_interval(f, j, g, &lo, &hi, &count, ex);
            CHECK(l.iv[g].lo == lo && l.iv[g].hi == hi && l.iv[g].count == count && l.iv[g].n == m);
            for (int k = 0; k < m; k++) same_example(&l.iv[g].ex[k], &ex[k], ff);
        }
        sv_featfile_latent_free(&l);
    }
    sv_featfile_latent l;
    CHECK(sv_featfile_read(ff, D, &l) == SV_EINPUT && strstr(sv_errmsg(), "latent 9 out of range"));
    sv_featfile_close(ff);
}

static const cJSON *need(const cJSON *o, const char *key, int (*is)(const cJSON *))
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || !is(v)) { fprintf(stderr, "field %s missing or of the wrong type\n", key); CHECK(!"importer field"); }
    return v;
}
static int is_arr(const cJSON *v) { return cJSON_IsArray(v); }
static int is_num(const cJSON *v) { return cJSON_IsNumber(v); }
static int is_str(const cJSON *v) { return cJSON_IsString(v); }

static void check_export(const char *feat, const char *dir, const char *tokdir, const sv_feat *f)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/bytelevel.json", tokdir);
    sv_tokenizer *tok = NULL;
    CHECK(sv_tokenizer_load(&tok, path) == SV_OK);
    char out[4096];
    snprintf(out, sizeof out, "%s/np", dir);
    sv_np_opts o = {"gpt2-small", 8, "res-test", 4, path};
    int64_t nb = 0;
    CHECK(sv_export_neuronpedia(feat, tok, &o, out, &nb) == SV_OK);
    int live = 0;
    for (int j = 0; j < D; j++) live += sv_feat_nonzero(f, j) > 0;
    CHECK(nb == (live + 3) / 4);
    int seen = 0;
    static const char *arrays[] = {"neuron_alignment_indices", "neuron_alignment_values", "neuron_alignment_l1",
                                   "correlated_neurons_indices", "correlated_neurons_l1", "correlated_neurons_pearson",
                                   "correlated_features_indices", "correlated_features_l1", "correlated_features_pearson",
                                   "neg_str", "neg_values", "pos_str", "pos_values", "freq_hist_data_bar_heights",
                                   "freq_hist_data_bar_values", "logits_hist_data_bar_heights",
                                   "logits_hist_data_bar_values", "decoder_weights_dist", "activations"};
    for (int64_t b = 0; b < nb; b++) {
        snprintf(path, sizeof path, "%s/batch-%lld.json", out, (long long)b);
        size_t n;
        char *text = slurp(path, &n);
        cJSON *root = cJSON_Parse(text);
        CHECK(root != NULL);
        CHECK(strcmp(need(root, "model_id", is_str)->valuestring, "gpt2-small") == 0);
        CHECK(need(root, "layer", is_num)->valueint == 8);
        CHECK(strcmp(need(root, "sae_set", is_str)->valuestring, "res-test") == 0);
        const cJSON *feat_;
        cJSON_ArrayForEach(feat_, need(root, "features", is_arr)) {
            seen++;
            int j = need(feat_, "feature_index", is_num)->valueint;
            CHECK(j > 0 && j < D && sv_feat_nonzero(f, j) > 0);
            for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++) need(feat_, arrays[k], is_arr);
            CHECK(need(feat_, "frac_nonzero", is_num)->valuedouble == (double)sv_feat_nonzero(f, j) / T);
            CHECK(need(feat_, "n_prompts_total", is_num)->valueint == nseq);
            need(feat_, "n_tokens_in_prompt", is_num);
            CHECK(strcmp(need(feat_, "dataset", is_str)->valuestring, "ds") == 0);
            const cJSON *hv = need(feat_, "freq_hist_data_bar_values", is_arr), *hh = need(feat_, "freq_hist_data_bar_heights", is_arr);
            CHECK(cJSON_GetArraySize(hv) == cJSON_GetArraySize(hh) && cJSON_GetArraySize(hh) > 0);
            double sum = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, hh) sum += x->valuedouble;
            CHECK(sum == (double)sv_feat_nonzero(f, j));
            int nact = 0, ntop = 0;
            cJSON_ArrayForEach(x, need(feat_, "activations", is_arr)) {
                const cJSON *tk = need(x, "tokens", is_arr), *vs = need(x, "values", is_arr);
                int len = cJSON_GetArraySize(tk);
                CHECK(len > 0 && len == cJSON_GetArraySize(vs));
                double bmin = need(x, "bin_min", is_num)->valuedouble, bmax = need(x, "bin_max", is_num)->valuedouble;
                double bc = need(x, "bin_contains", is_num)->valuedouble;
                int q = need(x, "qualifying_token_index", is_num)->valueint;
                CHECK(q >= 0 && q < len);
                float vq = (float)cJSON_GetArrayItem(vs, q)->valuedouble;
                if (bmin == -1) { CHECK(bc == -1 && bmax == sv_feat_max(f, j)); ntop++; }
                else CHECK(bc >= 0 && bc <= 1 && vq >= bmin && vq < bmax);
                const cJSON *s;
                cJSON_ArrayForEach(s, tk) CHECK(cJSON_IsString(s));
                nact++;
            }
            sv_feat_ex ex[64];
            CHECK(ntop == sv_feat_top(f, j, ex));
            CHECK(nact >= ntop);
        }
        cJSON_Delete(root);
        free(text);
    }
    CHECK(seen == live);
    snprintf(path, sizeof path, "%s/skipped_indexes.json", out);
    size_t n;
    char *text = slurp(path, &n);
    cJSON *root = cJSON_Parse(text);
    CHECK(root && cJSON_GetArraySize(need(root, "skipped_indexes", is_arr)) == D - live);
    CHECK(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "skipped_indexes"), 0)->valueint == 0);
    cJSON_Delete(root);
    free(text);
    sv_tokenizer_free(tok);
}

static void bad_files(const char *dir)
{
    char path[4096];
    sv_featfile *ff = NULL;
    snprintf(path, sizeof path, "%s/not_h5.features.h5", dir);
    FILE *fp = fopen(path, "w");
    CHECK(fp);
    fputs("hello\n", fp);
    fclose(fp);
    CHECK(sv_featfile_open(&ff, path) == SV_EINPUT && ff == NULL && strstr(sv_errmsg(), "not_h5.features.h5"));
    snprintf(path, sizeof path, "%s/missing.features.h5", dir);
    CHECK(sv_featfile_open(&ff, path) == SV_EINPUT && strstr(sv_errmsg(), "missing.features.h5"));
    /* an HDF5 file that is not a feature file */
    snprintf(path, sizeof path, "%s/other.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(h >= 0);
    H5Fclose(h);
    CHECK(sv_featfile_open(&ff, path) == SV_EINPUT && strstr(sv_errmsg(), "format"));
}

int main(int argc, char **argv)
{
    if (argc != 3) die("usage: test_featfile WORK_DIR TOKENIZER_FIXTURE_DIR", NULL);
    const char *dir = argv[1];
    mkdirs(dir);
    make_data();
    for (int whole = 0; whole < 2; whole++) {
        sv_feat_params p;
        sv_feat_params_default(&p, D);
        p.top_n = 6; p.n_intervals = 3; p.interval_k = 2; p.grid_bins = 8; p.seed = 7;
        if (whole) p.ctx_before = p.ctx_after = -1;
        sv_feat *a = build(&p, 0), *b = build(&p, 1);
        char pa[4096], pb[4096], pc[4096];
        snprintf(pa, sizeof pa, "%s/a%d.features.h5", dir, whole);
        snprintf(pb, sizeof pb, "%s/b%d.features.h5", dir, whole);
        snprintf(pc, sizeof pc, "%s/c%d.features.h5", dir, whole);
        write_file(pa, a, 0);
        write_file(pb, b, 0);
        write_file(pc, a, 1);
        size_t na, nb;
        char *ba = slurp(pa, &na), *bb = slurp(pb, &nb);
        CHECK(na == nb && memcmp(ba, bb, na) == 0); /* byte-identical whatever the order */
        free(ba);
        free(bb);
        check_read(pa, a);
        check_read(pc, a); /* written in two latent ranges */
        if (!whole) check_export(pa, dir, argv[2], a);
        sv_feat_free(a);
        sv_feat_free(b);
    }
    char *fp = sv_featfile_path("out", "x/y", "ds");
    CHECK(strcmp(fp, "out/x-y__ds.features.h5") == 0);
    free(fp);
    bad_files(dir);
    printf("featfile: all checks passed\n");
    return 0;
}

/* `saeval explain` on the demo: the latents it lists per token against a
 * plain double loop over the SAE's weights (standard: ReLU(x'W + b),
 * jumprelu: h where h > threshold), then bad inputs, --ids search, and the
 * per-latent summaries read from a feature file made here from the store.
 * usage: test_explain DEMO_CONFIG WORK_DIR */
#define TEST_NAME "test_explain"
#include "saeval/config.h"
#include "saeval/explain.h"
#include "saeval/featfile.h"
#include "saeval/forward.h"
#include "saeval/arch.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/store.h"
#include "testutil.h"

#include <math.h>
#include <mpi.h>
#include <string.h>

static char *run_explain(const sv_explain_opts *o, sv_rc *rc)
{
    FILE *fp = tmpfile();
    CHECK(fp);
    *rc = sv_explain(o, fp);
    long n = ftell(fp);
    rewind(fp);
    char *s = xcalloc((size_t)n + 1, 1);
    CHECK(fread(s, 1, (size_t)n, fp) == (size_t)n);
    fclose(fp);
    return s;
}

typedef struct { int j; double v; } lv;
static int cmp_lv(const void *a, const void *b)
{
    const lv *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* The reference latents of one token, largest first. */
static int ref_latents(const sv_sae *s, const float *x, lv *out)
{
    const float *We = s->W_enc, *be = s->b_enc, *bd = s->b_dec, *th = s->threshold;
    int d = (int)s->cfg.d_in, m = (int)s->cfg.d_sae, n = 0;
    for (int j = 0; j < m; j++) {
        double h = be[j];
        for (int i = 0; i < d; i++) h += ((double)x[i] - bd[i]) * We[(size_t)i * m + j];
        double f = s->cfg.arch == SV_ARCH_JUMPRELU ? (h > th[j] && h > 0 ? h : 0) : (h > 0 ? h : 0);
        if (f != 0) { out[n].j = j; out[n].v = f; n++; }
    }
    qsort(out, (size_t)n, sizeof *out, cmp_lv);
    return n;
}

/* Check the token lines of SAE `name` in the report. */
static void check_section(const char *report, const char *name, const sv_config *cfg, sv_store *st, int64_t seq,
                          int64_t p0, int64_t p1, int top)
{
    char hdr[256];
    snprintf(hdr, sizeof hdr, "== SAE %s (", name);
    const char *sec = strstr(report, hdr);
    CHECK(sec);
    int idx = -1;
    for (int i = 0; i < cfg->n_saes; i++)
        if (strstr(cfg->saes[i].path, name) && strlen(strstr(cfg->saes[i].path, name)) == strlen(name)) idx = i;
    CHECK(idx >= 0);
    sv_sae s;
    CHECK(sv_sae_load(&s, cfg->saes[idx].path, 32, 0, 1.0) == SV_OK);
    CHECK(s.cfg.normalize == SV_NORM_NONE && s.cfg.apply_b_dec_to_input);
    float *x = xcalloc((size_t)st->d_in, sizeof *x);
    lv *ref = xcalloc((size_t)s.cfg.d_sae, sizeof *ref);
    const char *line = strchr(sec, '\n') + 1;
    for (int64_t p = p0; p < p1; p++) {
        CHECK(sv_store_read_rows(st, st->seq_offsets[seq] + p, 1, x) == SV_OK);
        int n = ref_latents(&s, x, ref);
        long long pos;
        CHECK(sscanf(line, " %lld", &pos) == 1 && pos == p);
        const char *q = line;
        for (int k = 0; k < n && k < top; k++) {
            /* next " j:v" item */
            const char *c = strchr(q, ':');
            CHECK(c && c < strchr(line, '\n'));
            const char *b = c;
            while (b > line && b[-1] != ' ') b--;
            int j;
            double v;
            CHECK(sscanf(b, "%d:%lf", &j, &v) == 2);
            if (j != ref[k].j || fabs(v - ref[k].v) > 1e-3 * fmax(1.0, fabs(ref[k].v))) {
                fprintf(stderr, "%s position %lld rank %d: got %d:%g, reference %d:%g\n", name, pos, k, j, v, ref[k].j, ref[k].v);
                CHECK(!"latent differs from the reference");
            }
            q = c + 1;
        }
        if (n > top) { char more[32]; snprintf(more, sizeof more, "(+%d more)", n - top); CHECK(strstr(line, more) && strstr(line, more) < strchr(line, '\n')); }
        line = strchr(line, '\n') + 1;
    }
    free(x);
    free(ref);
    sv_sae_free(&s);
}

/* A feature file for (SAE idx, in_sample) computed over the whole store. */
static void make_features(const sv_config *cfg, int idx, const char *id, sv_store *st, const char *dir, sv_feat **fout)
{
    sv_sae s;
    CHECK(sv_sae_load(&s, cfg->saes[idx].path, 32, 0, 1.0) == SV_OK);
    sv_feat_params p;
    sv_feat_params_default(&p, s.cfg.d_sae);
    sv_feat *f = NULL;
    CHECK(sv_feat_new(&f, &p) == SV_OK);
    sv_fwd w;
    CHECK(sv_fwd_init(&w, &s, SV_GEMM_ROWS) == SV_OK);
    float *x = xcalloc((size_t)SV_GEMM_ROWS * (size_t)st->d_in, sizeof *x);
    int64_t *ids = xcalloc(SV_GEMM_ROWS, sizeof *ids);
    for (int pass = 0; pass < 2; pass++) {
        sv_feat_windows win;
        int64_t *rg = NULL, nr = 0;
        if (pass == 1) {
            CHECK(sv_feat_windows_new(&win, f, 0, p.d_sae, st->seq_offsets, st->n_seq) == SV_OK);
            CHECK(sv_feat_windows_ranges(&win, &rg, &nr) == SV_OK);
            free(rg);
        }
        for (int64_t t = 0; t < st->n_tokens; t += SV_GEMM_ROWS) {
            int64_t n = st->n_tokens - t < SV_GEMM_ROWS ? st->n_tokens - t : SV_GEMM_ROWS;
            CHECK(sv_store_read_rows(st, t, n, x) == SV_OK && sv_store_read_token_ids(st, t, n, ids) == SV_OK);
            CHECK(sv_fwd_run(&w, x, n) == SV_OK);
            if (pass == 0) { /* masked tokens (the store's special ids) are not evaluated */
                unsigned char skip[SV_GEMM_ROWS];
                int64_t ev = 0;
                for (int64_t r = 0; r < n; r++) {
                    skip[r] = 0;
                    for (int k = 0; k < st->n_special; k++) if (ids[r] == st->special_ids[k]) skip[r] = 1;
                    ev += !skip[r];
                }
                sv_feat_observe_csr(f, t, n, w.rowptr, w.idx, w.val, skip);
                sv_feat_add_tokens(f, ev);
            }
            else sv_feat_windows_fill_csr(&win, t, n, w.rowptr, w.idx, w.val, ids);
        }
        if (pass == 1) {
            char *path = sv_featfile_path(dir, id, "in_sample");
            sv_featfile_meta m = {id, "in_sample", st->n_seq, win.width};
            sv_featfile_writer *fw = NULL;
            CHECK(sv_featfile_create(&fw, path, f, &m) == SV_OK);
            CHECK(sv_featfile_put(fw, f, &win) == SV_OK);
            CHECK(sv_featfile_commit(fw) == SV_OK);
            free(path);
            sv_feat_windows_free(&win);
        }
    }
    free(x);
    free(ids);
    sv_fwd_free(&w);
    sv_sae_free(&s);
    *fout = f;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc != 3) die("usage: test_explain DEMO_CONFIG WORK_DIR", NULL);
    sv_fwd_set_threads(1);
    mkdirs(argv[2]);
    sv_config cfg;
    CHECK(sv_config_load(&cfg, argv[1]) == SV_OK);
    sv_store st;
    CHECK(sv_store_open(&st, cfg.datasets[0].path, MPI_COMM_SELF) == SV_OK);

    sv_explain_opts o;
    memset(&o, 0, sizeof o);
    o.config_path = argv[1];
    o.dataset = "in_sample";
    o.sequence = 2;
    o.pos0 = 1;
    o.pos1 = 7;
    o.top_latents = 3;
    o.output_dir = argv[2];
    sv_rc rc;
    char *rep = run_explain(&o, &rc);
    CHECK(rc == SV_OK);
    check_section(rep, "std_w512", &cfg, &st, 2, 1, 7, 3);
    check_section(rep, "jumprelu_w512", &cfg, &st, 2, 1, 7, 3);
    CHECK(strstr(rep, "no feature file"));
    free(rep);

    /* --ids: the first occurrence of the ids at sequence 2, positions 1..3 */
    int64_t ids[3], found_ids[3];
    CHECK(sv_store_read_token_ids(&st, st.seq_offsets[2] + 1, 3, ids) == SV_OK);
    sv_explain_opts oi = o;
    oi.sequence = -1;
    oi.ids = ids;
    oi.n_ids = 3;
    rep = run_explain(&oi, &rc);
    CHECK(rc == SV_OK);
    long long seq, a, b;
    const char *h = strstr(rep, "sequence ");
    CHECK(h && sscanf(h, "sequence %lld, positions %lld:%lld", &seq, &a, &b) == 3 && b == a + 3 && seq <= 2);
    CHECK(sv_store_read_token_ids(&st, st.seq_offsets[seq] + a, 3, found_ids) == SV_OK);
    CHECK(memcmp(ids, found_ids, sizeof ids) == 0);
    free(rep);

    /* bad inputs name the file and the field */
    sv_explain_opts bad = o;
    bad.dataset = "nope";
    free(run_explain(&bad, &rc));
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), "no dataset named 'nope'") && strstr(sv_errmsg(), "config.json"));
    bad = o;
    bad.sequence = st.n_seq;
    free(run_explain(&bad, &rc));
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), "--sequence") && strstr(sv_errmsg(), "in_sample.h5"));
    bad = o;
    bad.pos1 = 100000;
    free(run_explain(&bad, &rc));
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), "--positions"));
    int64_t absent[2] = {-5, -6};
    bad = oi;
    bad.ids = absent;
    bad.n_ids = 2;
    free(run_explain(&bad, &rc));
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), "do not occur"));

    /* with a feature file: one summary line per latent shown, its max from the file */
    sv_feat *f = NULL;
    int idx = 0;
    while (!strstr(cfg.saes[idx].path, "std_w512")) idx++;
    make_features(&cfg, idx, "std_w512", &st, argv[2], &f);
    rep = run_explain(&o, &rc);
    CHECK(rc == SV_OK);
    const char *sec = strstr(rep, "== SAE std_w512");
    CHECK(sec && strstr(sec, "examples from"));
    const char *lat = strstr(sec, "    latent ");
    CHECK(lat);
    int j;
    double mx;
    CHECK(sscanf(lat, "    latent %d: max %lf", &j, &mx) == 2);
    CHECK(fabs(mx - sv_feat_max(f, j)) <= 1e-3 * fabs(sv_feat_max(f, j)) && strstr(lat, "top: \"") && strstr(lat, "«"));
    printf("%.*s\n", (int)(strstr(sec + 1, "== SAE") - sec), sec); /* the README example */
    free(rep);
    sv_feat_free(f);

    sv_store_close(&st);
    sv_config_free(&cfg);
    MPI_Finalize();
    printf("explain: all checks passed\n");
    return 0;
}

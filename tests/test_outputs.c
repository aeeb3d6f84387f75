/* Checks a finished run's output directory against rules recomputed here,
 * independently of src/: every JSON file parses; all_eval_results.csv
 * agrees with the JSON values; SAEBench misc metrics from the firing counts;
 * generalization drops and shift flags; health points and labels from the
 * README's rules; and the synthetic demo's promised ranges.
 *   test_outputs OUTDIR N_SAES N_DATASETS [--demo] */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    b[n] = 0;
    fclose(f);
    return b;
}

static cJSON *load(const char *path)
{
    char *t = slurp(path);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

static const cJSON *at(const cJSON *o, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, ".")) o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}

static double num(const cJSON *o, const char *dotted)
{
    const cJSON *n = at(o, dotted);
    return cJSON_IsNumber(n) ? n->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *dotted)
{
    const cJSON *n = at(o, dotted);
    return cJSON_IsString(n) ? n->valuestring : "";
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(1.0, fabs(b)); }

/* Quality-score points, written from the README table. */
static double pts_hi(double v, double fair, double good, double exc)
{
    return v > exc ? 2 : v > good ? 1.5 : v > fair ? 1 : 0;
}
static double pts_lo(double v, double exc, double good, double fair)
{
    return v < exc ? 2 : v < good ? 1.5 : v < fair ? 1 : 0;
}

static void check_pair(const cJSON *o, int demo)
{
    const char *id = str(o, "sae_id"), *ds = str(o, "dataset");
    const cJSON *fc = at(o, "feature_metrics.firing_counts");
    int m = cJSON_GetArraySize(fc);
    double N = num(o, "metrics.token_stats.tokens_evaluated");
    CHECK(m == (int)num(o, "sae_cfg.d_sae"), "%s/%s: firing_counts length", id, ds);
    /* misc, from the counts */
    int alive = 0, o1 = 0, o10 = 0, dead = 0;
    double sum = 0, s1 = 0, s10 = 0;
    for (const cJSON *c = fc->child; c; c = c->next) {
        double dns = c->valuedouble / N;
        sum += dns;
        if (dns > 0) alive++; else dead++;
        if (dns > 0.01) { o1++; s1 += dns; }
        if (dns > 0.1) { o10++; s10 += dns; }
    }
    CHECK(near(num(o, "metrics.misc.frac_alive"), (double)alive / m, 1e-15), "%s/%s frac_alive", id, ds);
    CHECK(near(num(o, "metrics.misc.freq_over_1_percent"), (double)o1 / m, 1e-15), "%s/%s freq>1%%", id, ds);
    CHECK(near(num(o, "metrics.misc.freq_over_10_percent"), (double)o10 / m, 1e-15), "%s/%s freq>10%%", id, ds);
    CHECK(near(num(o, "metrics.misc.normalized_freq_over_1_percent"), sum > 0 ? s1 / sum : 0, 1e-12), "%s/%s nfreq1", id, ds);
    CHECK(near(num(o, "metrics.misc.normalized_freq_over_10_percent"), sum > 0 ? s10 / sum : 0, 1e-12), "%s/%s nfreq10", id, ds);
    CHECK((int)num(o, "metrics.sparsity.dead_features") == dead, "%s/%s dead_features", id, ds);
    /* l0 from the histogram */
    const cJSON *h = at(o, "metrics.sparsity.l0_histogram");
    double hs = 0, hn = 0;
    int v = 0;
    for (const cJSON *c = h->child; c; c = c->next, v++) { hs += v * c->valuedouble; hn += c->valuedouble; }
    CHECK(hn == N && near(num(o, "metrics.sparsity.l0"), hs / N, 1e-12), "%s/%s l0 vs histogram", id, ds);

    /* health, quality score */
    double ev = num(o, "metrics.reconstruction_quality.explained_variance");
    double mse_el = num(o, "metrics.reconstruction_quality.mse") / num(o, "sae_cfg.d_in");
    double cs = num(o, "metrics.reconstruction_quality.cossim"), l0 = num(o, "metrics.sparsity.l0");
    double deadp = 100 * num(o, "metrics.sparsity.dead_fraction");
    double recon = (pts_lo(mse_el, 0.01, 0.05, 0.10) + pts_hi(cs, 0.85, 0.90, 0.95) + pts_hi(100 * ev, 70, 80, 90)) / 3;
    double pl0;
    if (strcmp(str(o, "sae_cfg.architecture"), "topk") == 0) {
        double r = l0 / num(o, "sae_cfg.k");
        pl0 = r >= 0.9 ? 2 : r >= 0.75 ? 1.5 : r >= 0.5 ? 1 : 0;
    } else {
        double s = 1.0; /* model size unknown in the demo: medium row */
        pl0 = (l0 >= 40 * s && l0 <= 120 * s) ? 2 : (l0 >= 20 * s && l0 <= 300 * s) ? 1 : 0;
    }
    double sp = (pl0 + pts_lo(deadp, 30, 50, 70)) / 2, s4 = recon + sp, s5 = s4 * 1.25;
    const char *rating = s5 >= 4.5 ? "excellent" : s5 >= 3.5 ? "good" : s5 >= 2.5 ? "fair" : "poor";
    CHECK(near(num(o, "metrics.health.quality_score.score_out_of_4"), s4, 1e-12), "%s/%s score %g vs %g", id, ds,
          num(o, "metrics.health.quality_score.score_out_of_4"), s4);
    CHECK(strcmp(str(o, "metrics.health.quality_score.rating"), rating) == 0, "%s/%s rating", id, ds);
    CHECK(strcmp(str(o, "metrics.health.ranges.dead_features.label"),
                 deadp < 5 ? "excellent" : deadp < 15 ? "good" : deadp < 25 ? "acceptable" : "problematic") == 0,
          "%s/%s dead label", id, ds);
    double ab = num(o, "metrics.geometry.decoder_mean_abs_cos");
    CHECK(strcmp(str(o, "metrics.health.ranges.absorption.label"),
                 ab < 0.15 ? "excellent" : ab < 0.25 ? "good" : ab < 0.35 ? "acceptable" : "problematic") == 0,
          "%s/%s absorption label", id, ds);
    CHECK(cJSON_IsTrue(at(o, "metrics.health.ranges.model_size.assumed")), "%s/%s model size must say assumed", id, ds);

    if (demo && strcmp(ds, "in_sample") == 0) { /* what `saeval synth` promises */
        CHECK(ev >= 0.6 && ev <= 0.95, "%s: demo in-sample EV %g outside 0.6-0.95", id, ev);
        CHECK(l0 >= 10 && l0 <= 150, "%s: demo L0 %g outside 10-150", id, l0);
        CHECK(dead > 0 && dead < m / 10, "%s: demo should have a few dead latents, has %d", id, dead);
        CHECK(num(o, "metrics.token_stats.tokens_masked") == num(o, "metrics.token_stats.sequences"),
              "%s: one BOS masked per sequence", id);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: test_outputs OUTDIR N_SAES N_DATASETS [--demo]\n"); return 2; }
    const char *dir = argv[1];
    int ns = atoi(argv[2]), nd = atoi(argv[3]), demo = argc > 4 && strcmp(argv[4], "--demo") == 0;
    char path[4096];

    /* every JSON file parses */
    DIR *dh = opendir(dir);
    int n_json = 0;
    for (struct dirent *e; dh && (e = readdir(dh));) {
        size_t L = strlen(e->d_name);
        if (L < 5 || strcmp(e->d_name + L - 5, ".json")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cJSON *j = load(path);
        CHECK(j != NULL, "%s does not parse", path);
        cJSON_Delete(j);
        n_json++;
    }
    if (dh) closedir(dh);
    CHECK(n_json == ns * nd + 2, "expected %d JSON files, found %d", ns * nd + 2, n_json);

    snprintf(path, sizeof path, "%s/all_eval_results.json", dir);
    cJSON *all = load(path);
    CHECK(cJSON_IsArray(all) && cJSON_GetArraySize(all) == ns * nd, "all_eval_results.json size");
    for (const cJSON *o = all ? all->child : NULL; o; o = o->next) {
        CHECK(strcmp(str(o, "status"), "ok") == 0, "status of %s/%s", str(o, "sae_id"), str(o, "dataset"));
        /* The summary holds the scalars only; the per-pair file holds the
         * same object plus its per-latent arrays. */
        CHECK(!cJSON_GetObjectItemCaseSensitive(o, "feature_metrics"), "%s/%s: feature_metrics in all_eval_results.json",
              str(o, "sae_id"), str(o, "dataset"));
        char pp[4096];
        snprintf(pp, sizeof pp, "%s/%s__%s.json", dir, str(o, "sae_id"), str(o, "dataset"));
        cJSON *full = load(pp);
        CHECK(full != NULL, "%s does not parse", pp);
        if (!full) continue;
        check_pair(full, demo);
        cJSON_DeleteItemFromObjectCaseSensitive(full, "feature_metrics");
        CHECK(cJSON_Compare(full, o, 1), "%s: differs from its all_eval_results.json record (besides feature_metrics)", pp);
        cJSON_Delete(full);
    }

    /* CSV: same columns on every row, values equal to the JSON ones */
    snprintf(path, sizeof path, "%s/all_eval_results.csv", dir);
    char *csv = slurp(path);
    CHECK(csv != NULL, "no CSV");
    char *save = NULL, *line = csv ? strtok_r(csv, "\n", &save) : NULL;
    char *cols[64];
    int nc = 0;
    char *hdr = line ? strdup(line) : NULL;
    for (char *t = hdr ? strtok(hdr, ",") : NULL; t && nc < 64; t = strtok(NULL, ",")) cols[nc++] = t;
    const cJSON *o = all ? all->child : NULL;
    int rows = 0;
    while ((line = strtok_r(NULL, "\n", &save)) && o) {
        int c = 0;
        char *p = line;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = 0;
            if (c >= 3 && c < nc) {
                double jv = num(o, cols[c]);
                if (*p) CHECK(strtod(p, NULL) == jv, "CSV %s row %d: %s vs JSON %.17g", cols[c], rows, p, jv);
                else CHECK(isnan(jv), "CSV %s row %d empty but JSON has a value", cols[c], rows);
            }
            c++;
            if (!comma) break;
            p = comma + 1;
        }
        CHECK(c == nc, "CSV row %d has %d cells, header %d", rows, c, nc);
        rows++;
        o = o->next;
    }
    CHECK(rows == ns * nd, "CSV rows %d", rows);
    free(hdr);
    free(csv);

    /* generalization */
    snprintf(path, sizeof path, "%s/generalization.json", dir);
    cJSON *g = load(path);
    const cJSON *rws = at(g, "rows");
    CHECK(cJSON_IsArray(rws), "generalization rows");
    const char *ref = str(g, "reference_in_sample");
    int ngr = 0;
    for (const cJSON *r = rws ? rws->child : NULL; r; r = r->next, ngr++) {
        const char *keys[] = {"explained_variance", "mse", "cossim", "l0", "dead_fraction"};
        const cJSON *in = NULL, *oos = NULL;
        for (const cJSON *p = all->child; p; p = p->next) {
            if (strcmp(str(p, "sae_id"), str(r, "sae_id"))) continue;
            if (!strcmp(str(p, "dataset"), ref)) in = p;
            if (!strcmp(str(p, "dataset"), str(r, "dataset"))) oos = p;
        }
        CHECK(in && oos, "generalization row without pairs");
        if (!in || !oos) continue;
        for (int k = 0; k < 5; k++) {
            const char *grp = k == 3 || k == 4 ? "sparsity" : "reconstruction_quality";
            char pth[128], q[128];
            snprintf(pth, sizeof pth, "metrics.%s.%s", grp, keys[k]);
            double a = num(in, pth), b = num(oos, pth);
            snprintf(q, sizeof q, "metrics.%s.drop_percent", keys[k]);
            double want = a != 0 ? 100 * (a - b) / fabs(a) : NAN;
            CHECK((isnan(want) && isnan(num(r, q))) || near(num(r, q), want, 1e-12), "drop %s of %s/%s", keys[k],
                  str(r, "sae_id"), str(r, "dataset"));
            if (k == 0) {
                const char *sh = str(r, "shift");
                double lo = !strcmp(sh, "domain") ? 20 : !strcmp(sh, "task") ? 0 : 10;
                double hi = !strcmp(sh, "domain") ? 40 : !strcmp(sh, "task") ? 60 : 30;
                const char *flag = !*sh ? "no_shift_declared" : want > hi ? "above" : want < lo ? "below" : "inside";
                CHECK(!strcmp(str(r, "ev_drop_vs_expected"), flag), "flag of %s/%s", str(r, "sae_id"), str(r, "dataset"));
            }
        }
    }
    if (demo) CHECK(ngr == ns * (nd - 1), "generalization rows %d", ngr);
    cJSON_Delete(g);
    cJSON_Delete(all);
    printf("%s: outputs of %s (%d pairs)\n", fails ? "FAIL" : "ok", dir, ns * nd);
    return fails != 0;
}

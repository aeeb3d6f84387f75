/* Pair page data: histograms over every latent, per-latent scatters
 * sampled to at most SV_REPORT_MAX_POINTS latents, health rubrics. All from
 * one per-pair result object; nothing is recomputed from activations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"
#include "saeval/report.h"

#define DENSITY_BIN 0.1   /* log10 density bins */
#define DENSITY_FLOOR -12 /* densities below 1e-12 land in the first bin */
#define ENCDEC_BINS 50    /* over [-1, 1] */
#define L0_MAX_BARS 1000  /* longer L0 histograms are summed into wider bins */

/* Array of numbers as doubles (NaN for anything else); NULL + n = 0 when
 * a is not an array. Walks the list once (cJSON_GetArrayItem is O(i)). */
static double *to_doubles(const cJSON *a, int *n)
{
    *n = 0;
    if (!cJSON_IsArray(a)) return NULL;
    int len = cJSON_GetArraySize(a);
    if (len <= 0) return NULL;
    double *v = malloc((size_t)len * sizeof *v);
    if (!v) return NULL;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (i < len) v[i++] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    *n = i;
    return v;
}

static const cJSON *feature(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "feature_metrics"), key);
}

/* Latent j of the i-th sample: evenly spaced in index order. */
/* Histogram bin of position x (in bins) among nb: clamped as a double first,
 * since values from a result file can be anything (a cast of a double out of
 * int's range is undefined). */
static int bin_of(double x, int nb)
{
    double f = floor(x);
    if (!(f >= 0)) return 0;
    if (f >= nb - 1) return nb - 1;
    return (int)f;
}

static int sample_index(int i, int n, int m) { return m >= n ? i : (int)((long long)i * n / m); }

static void note(sv_jw *w, const char *what) { sv_jw_str(w, NULL, what); }

/* Histogram as bars: only non-empty bins, x = bin centre. */
static void bars(sv_jw *w, const char *key, const double *count, int nb, double lo, double width)
{
    sv_jw_obj(w, key);
    sv_jw_num(w, "width", width);
    sv_jw_arr(w, "x");
    for (int b = 0; b < nb; b++)
        if (count[b] > 0) sv_jw_num(w, NULL, lo + (b + 0.5) * width);
    sv_jw_end(w);
    sv_jw_arr(w, "y");
    for (int b = 0; b < nb; b++)
        if (count[b] > 0) sv_jw_num(w, NULL, count[b]);
    sv_jw_end(w);
    sv_jw_end(w);
}

static void scalars(sv_jw *w, const cJSON *metrics)
{
    sv_jw_arr_block(w, "scalars");
    const cJSON *g;
    cJSON_ArrayForEach(g, metrics) {
        if (!cJSON_IsObject(g) || !g->string || strcmp(g->string, "health") == 0) continue;
        const cJSON *m;
        cJSON_ArrayForEach(m, g) {
            if (!cJSON_IsNumber(m) || !m->string) continue;
            sv_jw_arr(w, NULL);
            sv_jw_str(w, NULL, g->string);
            sv_jw_str(w, NULL, m->string);
            sv_jw_num(w, NULL, m->valuedouble);
            sv_jw_end(w);
        }
    }
    sv_jw_end(w);
}

/* A pre-formatted JSON value under key: sv_jw_null writes the separator,
 * the key and "null", which the value then replaces. */
static void raw_value(sv_jw *w, const char *key, const char *s, size_t n)
{
    sv_jw_null(w, key);
    if (w->oom || w->len < 4) return;
    w->len -= 4;
    sv_jw_raw(w, s, n);
}

/* A JSON subtree re-serialized (numbers round-trip: cJSON falls back to
 * %.17g); the page writer escapes '<'. */
static void subtree(sv_jw *w, const char *key, const cJSON *t)
{
    char *s = t ? cJSON_PrintUnformatted(t) : NULL;
    if (!s) { sv_jw_null(w, key); return; }
    raw_value(w, key, s, strlen(s));
    cJSON_free(s);
}

static void density_parts(sv_jw *w, const cJSON *o, sv_jw *notes)
{
    int n, nc;
    double *dens = to_doubles(feature(o, "feature_density"), &n);
    double *cah = to_doubles(feature(o, "consistent_activation_heuristic"), &nc);
    if (!dens) {
        note(notes, "feature_metrics.feature_density is missing: no density charts");
        free(cah);
        return;
    }
    int nb = (int)(-DENSITY_FLOOR / DENSITY_BIN + 0.5) + 1, dead = 0;
    double *count = calloc((size_t)nb, sizeof *count);
    if (!count) { free(dens); free(cah); return; }
    for (int j = 0; j < n; j++) {
        if (!(dens[j] > 0) || !isfinite(dens[j])) { dead++; continue; }
        count[bin_of((log10(dens[j]) - DENSITY_FLOOR) / DENSITY_BIN, nb)]++;
    }
    sv_jw_obj(w, "density");
    sv_jw_int(w, "latents", n);
    sv_jw_int(w, "dead", dead);
    sv_jw_end(w);
    bars(w, "density_hist", count, nb, DENSITY_FLOOR, DENSITY_BIN);
    free(count);
    if (cah && nc == n) {
        int m = n < SV_REPORT_MAX_POINTS ? n : SV_REPORT_MAX_POINTS;
        sv_jw_obj(w, "cah");
        sv_jw_int(w, "sampled", m);
        sv_jw_arr(w, "ids");
        for (int i = 0; i < m; i++) {
            int j = sample_index(i, n, m);
            if (dens[j] > 0 && isfinite(dens[j]) && cah[j] >= 0) sv_jw_int(w, NULL, j);
        }
        sv_jw_end(w);
        sv_jw_arr(w, "x");
        for (int i = 0; i < m; i++) {
            int j = sample_index(i, n, m);
            if (dens[j] > 0 && isfinite(dens[j]) && cah[j] >= 0) sv_jw_num(w, NULL, log10(dens[j]));
        }
        sv_jw_end(w);
        sv_jw_arr(w, "y");
        for (int i = 0; i < m; i++) {
            int j = sample_index(i, n, m);
            if (dens[j] > 0 && isfinite(dens[j]) && cah[j] >= 0) sv_jw_num(w, NULL, cah[j]);
        }
        sv_jw_end(w);
        sv_jw_end(w);
    } else {
        note(notes, "feature_metrics.consistent_activation_heuristic is missing or of another length than feature_density");
    }
    free(dens);
    free(cah);
}

static void encoder_parts(sv_jw *w, const cJSON *o, sv_jw *notes)
{
    int n1, n2, n3;
    double *cs = to_doubles(feature(o, "encoder_decoder_cosine_sim"), &n1);
    double *nm = to_doubles(feature(o, "encoder_norm"), &n2);
    double *bs = to_doubles(feature(o, "encoder_bias"), &n3);
    if (cs) {
        double count[ENCDEC_BINS] = {0};
        for (int j = 0; j < n1; j++) {
            if (!isfinite(cs[j])) continue;
            count[bin_of((cs[j] + 1.0) * (ENCDEC_BINS / 2.0), ENCDEC_BINS)]++;
        }
        bars(w, "encdec_hist", count, ENCDEC_BINS, -1.0, 2.0 / ENCDEC_BINS);
    } else {
        note(notes, "feature_metrics.encoder_decoder_cosine_sim is missing: no cosine histogram");
    }
    if (cs && nm && bs && n1 == n2 && n2 == n3) {
        int n = n1, m = n < SV_REPORT_MAX_POINTS ? n : SV_REPORT_MAX_POINTS;
        const double *cols[3] = {nm, bs, cs};
        const char *keys[3] = {"norm", "bias", "cos"};
        sv_jw_obj(w, "encoder");
        sv_jw_arr(w, "ids");
        for (int i = 0; i < m; i++) sv_jw_int(w, NULL, sample_index(i, n, m));
        sv_jw_end(w);
        for (int k = 0; k < 3; k++) {
            sv_jw_arr(w, keys[k]);
            for (int i = 0; i < m; i++) sv_jw_num(w, NULL, cols[k][sample_index(i, n, m)]);
            sv_jw_end(w);
        }
        sv_jw_end(w);
    } else {
        note(notes, "encoder_norm, encoder_bias and encoder_decoder_cosine_sim are not all present with one length: no scatter matrix");
    }
    free(cs);
    free(nm);
    free(bs);
}

static void l0_part(sv_jw *w, const cJSON *o, sv_jw *notes)
{
    int n;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metrics"), "sparsity");
    double *h = to_doubles(cJSON_GetObjectItemCaseSensitive(sp, "l0_histogram"), &n);
    if (!h) { note(notes, "metrics.sparsity.l0_histogram is missing: no L0 histogram"); return; }
    int width = (n + L0_MAX_BARS - 1) / L0_MAX_BARS, nb = (n + width - 1) / width;
    double *count = calloc((size_t)nb, sizeof *count);
    if (count) {
        for (int i = 0; i < n; i++)
            if (isfinite(h[i]) && h[i] > 0) count[i / width] += h[i];
        /* bars() centres bin b at lo + (b + 0.5) * width: lo = -0.5 puts the
         * centre of a one-value bin on the value itself. */
        bars(w, "l0_hist", count, nb, -0.5, width);
        free(count);
    }
    free(h);
}

static void decoder_part(sv_jw *w, const cJSON *o, sv_jw *notes)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metrics"), "geometry");
    int n;
    double *h = to_doubles(cJSON_GetObjectItemCaseSensitive(g, "decoder_cos_histogram"), &n);
    if (h && n > 0) {
        for (int i = 0; i < n; i++) if (!isfinite(h[i]) || h[i] < 0) h[i] = 0;
        bars(w, "dec_cos_hist", h, n, -1.0, 2.0 / n);
    } else {
        note(notes, "metrics.geometry.decoder_cos_histogram is missing: no decoder cosine histogram");
    }
    free(h);
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(g, "top_decoder_pairs");
    sv_jw_arr_block(w, "top_pairs");
    const cJSON *p;
    if (cJSON_IsArray(top)) cJSON_ArrayForEach(p, top) {
        int k;
        double *t = to_doubles(p, &k);
        if (t && k == 3) {
            sv_jw_arr(w, NULL);
            for (int i = 0; i < 3; i++) sv_jw_num(w, NULL, t[i]);
            sv_jw_end(w);
        }
        free(t);
    }
    sv_jw_end(w);
}

void sv_rep_pair_data(sv_jw *w, const cJSON *o, const char *src_name, const sv_rep_latent_link *lat)
{
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(o, "metrics");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "sae_cfg");
    sv_jw notes;
    sv_jw_init(&notes);
    sv_jw_arr_block(&notes, NULL);
    sv_jw_obj(w, NULL);
    sv_jw_str(w, "kind", "pair");
    sv_jw_str(w, "sae_id", sv_rep_str(o, "sae_id"));
    sv_jw_str(w, "dataset", sv_rep_str(o, "dataset"));
    const char *arch = sv_rep_str(cfg, "architecture");
    sv_jw_str(w, "architecture", arch ? arch : "?");
    sv_jw_num(w, "d_in", sv_rep_num(cfg, "d_in"));
    sv_jw_num(w, "d_sae", sv_rep_num(cfg, "d_sae"));
    sv_jw_str(w, "source", src_name);
    sv_jw_int(w, "max_points", SV_REPORT_MAX_POINTS);
    scalars(w, metrics);
    subtree(w, "health", cJSON_GetObjectItemCaseSensitive(metrics, "health"));
    density_parts(w, o, &notes);
    encoder_parts(w, o, &notes);
    l0_part(w, o, &notes);
    decoder_part(w, o, &notes);
    /* Latent pages (report_latent.c) when the pair has a readable feature file. */
    if (lat && lat->features) {
        sv_jw_obj(w, "latent_pages");
        sv_jw_str(w, "features_file", lat->features);
        if (lat->page) sv_jw_str(w, "page", lat->page);
        else sv_jw_str(w, "why_not", lat->why_not ? lat->why_not : "not written");
        sv_jw_end(w);
    } else {
        sv_jw_null(w, "latent_pages");
    }
    sv_jw_end(&notes);
    if (notes.oom || !notes.buf) w->oom = 1;
    else raw_value(w, "notes", notes.buf, notes.len);
    sv_jw_free(&notes);
    sv_jw_end(w);
}

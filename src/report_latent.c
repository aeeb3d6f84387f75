/* Latent pages of the report: for a pair with a feature file
 * (<sae>__<dataset>.features.h5), one page report/pairs/<base>_latents.html
 * with a latent selector, and the per-latent data in chunk files
 * report/latents/<base>/cNNNNN.js of SV_REPORT_LATENT_CHUNK latents each,
 * loaded with <script src> when a latent is shown (browsers refuse fetch()
 * from file://). A wide SAE thus costs d_sae / chunk files, not d_sae pages.
 * A chunk is `svLatentChunk(JSON);` where JSON comes from the JSON writer
 * (every string escaped), so nothing from a feature file or tokenizer can
 * leave its string; the page script inserts text with textContent only.
 * Nothing is recomputed: the data are the feature file's (and the pair
 * result's per-latent metrics). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_impl.h"
#include "saeval/featfile.h"
#include "saeval/fsutil.h"
#include "saeval/report.h"
#include "saeval/tokenizer.h"
#include "saeval/numfmt.h"

/* A pre-formatted number under key (see raw_value in report_pair.c). */
static void raw_num(sv_jw *w, const char *key, const char *s, size_t n)
{
    sv_jw_null(w, key);
    if (w->oom || w->len < 4) return;
    w->len -= 4;
    sv_jw_raw(w, s, n);
}

/* A float32 in the fewest digits (6..9) that read back as the same float. */
static void num_f32(sv_jw *w, float v)
{
    if (!isfinite(v)) { sv_jw_null(w, NULL); return; }
    char s[48];
    int n = 0;
    for (int p = 6; p <= 9; p++) {
        n = sv_fmt_g(s, (double)v, p);
        if (strtof(s, NULL) == v) break;
    }
    raw_num(w, NULL, s, (size_t)n);
}

/* Window activations only shade tokens: 3 significant digits keep a wide
 * SAE's chunks small (the example's own activation is written exactly). */
static void num_shade(sv_jw *w, float v)
{
    if (!isfinite(v)) { sv_jw_null(w, NULL); return; }
    char s[48];
    int n = sv_fmt_g(s, (double)v, 3);
    raw_num(w, NULL, s, (size_t)n);
}

/* Text of each id rendered on its own, computed once per report; a chunk
 * lists the ids it uses (its `vocab`), and an example stores only the
 * tokens whose text in context differs (a character split across tokens). */
typedef struct {
    const sv_tokenizer *t;
    int64_t n;
    char ***text;    /* [n]: sv_tok_render output of the id alone, or NULL */
    int *stamp;      /* [n]: chunk number + 1 that last listed the id */
    int64_t *used;   /* ids listed by the current chunk */
    size_t n_used, cap_used;
    int chunk;
} tok_cache;

static sv_rc tok_cache_init(tok_cache *c, const sv_tokenizer *t)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    if (!t) return SV_OK;
    c->n = sv_tokenizer_size(t);
    c->text = sv_calloc((size_t)c->n + 1, sizeof *c->text);
    c->stamp = sv_calloc((size_t)c->n + 1, sizeof *c->stamp);
    return c->text && c->stamp ? SV_OK : SV_EINTERNAL;
}

static void tok_cache_free(tok_cache *c)
{
    for (int64_t i = 0; c->text && i < c->n; i++) free(c->text[i]);
    free(c->text);
    free(c->stamp);
    free(c->used);
}

/* The id's own text; "" for ids outside the tokenizer (shown as <unk:ID>
 * by the rendering in context, which then differs and is stored). */
static sv_rc tok_alone(tok_cache *c, int64_t id, const char **out)
{
    *out = "";
    if (id < 0 || id >= c->n) return SV_OK;
    if (!c->text[id]) {
        sv_rc rc = sv_tok_render(c->t, &id, 1, 0, &c->text[id]);
        if (rc != SV_OK) return rc;
    }
    if (c->stamp[id] != c->chunk + 1) {
        if (c->n_used == c->cap_used) {
            size_t cap = c->cap_used ? 2 * c->cap_used : 1024;
            int64_t *u = realloc(c->used, cap * sizeof *u);
            if (!u) return sv_fail(SV_EINTERNAL, "out of memory");
            c->used = u;
            c->cap_used = cap;
        }
        c->used[c->n_used++] = id;
        c->stamp[id] = c->chunk + 1;
    }
    *out = c->text[id][0];
    return SV_OK;
}

/* One example: [token, value, start, [ids], [activations], texts], texts 0
 * without a tokenizer, else [[i, text], ...] for the tokens whose text in
 * context differs from the chunk's vocab entry. */
static sv_rc example(sv_jw *w, const sv_featfile_ex *x, tok_cache *tc, int64_t *ids64)
{
    sv_jw_arr(w, NULL);
    sv_jw_int(w, NULL, x->token);
    num_f32(w, x->value);
    sv_jw_int(w, NULL, x->start);
    sv_jw_arr(w, NULL);
    for (int32_t i = 0; i < x->len; i++) sv_jw_int(w, NULL, x->ids[i]);
    sv_jw_end(w);
    sv_jw_arr(w, NULL);
    for (int32_t i = 0; i < x->len; i++) num_shade(w, x->values[i]);
    sv_jw_end(w);
    sv_rc rc = SV_OK;
    if (tc->t) {
        for (int32_t i = 0; i < x->len; i++) ids64[i] = x->ids[i];
        char **text = NULL;
        rc = sv_tok_render(tc->t, ids64, (size_t)x->len, 0, &text);
        sv_jw_arr(w, NULL);
        for (int32_t i = 0; i < x->len && rc == SV_OK; i++) {
            const char *alone;
            rc = tok_alone(tc, ids64[i], &alone);
            if (rc == SV_OK && strcmp(alone, text[i]) != 0) {
                sv_jw_arr(w, NULL);
                sv_jw_int(w, NULL, i);
                sv_jw_str(w, NULL, text[i]);
                sv_jw_end(w);
            }
        }
        sv_jw_end(w);
        free(text);
    } else {
        sv_jw_int(w, NULL, 0);
    }
    sv_jw_end(w);
    return rc;
}

/* Per-latent arrays of the pair result shown next to the feature data. */
static const char *const metric_keys[] = {"feature_density", "consistent_activation_heuristic",
                                          "encoder_decoder_cosine_sim", "max_decoder_cosine_sim",
                                          "max_encoder_cosine_sim", "nearest_decoder_latent"};
#define N_METRICS (sizeof metric_keys / sizeof *metric_keys)

typedef struct {
    const cJSON *cur[N_METRICS]; /* walking pointers into the arrays (O(1) per latent) */
    int len[N_METRICS];
} metric_cols;

static void metric_cols_init(metric_cols *m, const cJSON *pair)
{
    const cJSON *fm = cJSON_GetObjectItemCaseSensitive(pair, "feature_metrics");
    for (size_t k = 0; k < N_METRICS; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(fm, metric_keys[k]);
        m->cur[k] = cJSON_IsArray(a) ? a->child : NULL;
        m->len[k] = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    }
}

/* Latent j: [id, nonzero, max, hist_width, [hist], [top], [[lo, hi, count, [samples]]], [metrics]]. */
static sv_rc latent(sv_jw *w, sv_featfile *ff, int64_t j, tok_cache *tok, int64_t *ids64, metric_cols *mc,
                    sv_jw *nz, sv_jw *mx)
{
    sv_featfile_latent l;
    sv_rc rc = sv_featfile_read(ff, j, &l);
    if (rc != SV_OK) return rc;
    sv_jw_int(nz, NULL, l.nonzero);
    num_f32(mx, l.max);
    const sv_feat_params *p = sv_featfile_params(ff);
    sv_jw_arr(w, NULL);
    sv_jw_int(w, NULL, j);
    sv_jw_int(w, NULL, l.nonzero);
    num_f32(w, l.max);
    sv_jw_num(w, NULL, l.hist_width);
    sv_jw_arr(w, NULL);
    if (l.nonzero > 0)
        for (int b = 0; b < p->grid_bins; b++) sv_jw_int(w, NULL, l.hist[b]);
    sv_jw_end(w);
    sv_jw_arr(w, NULL);
    for (int k = 0; k < l.n_top && rc == SV_OK; k++) rc = example(w, &l.top[k], tok, ids64);
    sv_jw_end(w);
    sv_jw_arr(w, NULL);
    for (int g = 0; l.nonzero > 0 && g < p->n_intervals && rc == SV_OK; g++) {
        const sv_featfile_interval *v = &l.iv[g];
        sv_jw_arr(w, NULL);
        sv_jw_num(w, NULL, v->lo);
        sv_jw_num(w, NULL, v->hi);
        sv_jw_int(w, NULL, v->count);
        sv_jw_arr(w, NULL);
        for (int k = 0; k < v->n && rc == SV_OK; k++) rc = example(w, &v->ex[k], tok, ids64);
        sv_jw_end(w);
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_arr(w, NULL);
    for (size_t k = 0; k < N_METRICS; k++) {
        const cJSON *e = j < mc->len[k] ? mc->cur[k] : NULL;
        sv_jw_num(w, NULL, cJSON_IsNumber(e) ? e->valuedouble : NAN);
        if (mc->cur[k]) mc->cur[k] = mc->cur[k]->next;
    }
    sv_jw_end(w);
    sv_jw_end(w);
    sv_featfile_latent_free(&l);
    return rc;
}

/* Removes report/latents/<dir>/c*.js and the directories (an earlier report's
 * chunks; pages are renumbered between reports). */
void sv_rep_latents_clean(const char *ldir)
{
    DIR *d = opendir(ldir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char *sub = sv_path_join(ldir, e->d_name);
        DIR *s = sub ? opendir(sub) : NULL;
        struct dirent *f;
        while (s && (f = readdir(s))) {
            size_t n = strlen(f->d_name);
            if (f->d_name[0] == 'c' && n > 3 && strcmp(f->d_name + n - 3, ".js") == 0) {
                char *p = sv_path_join(sub, f->d_name);
                if (p) unlink(p);
                free(p);
            }
        }
        if (s) closedir(s);
        if (sub) rmdir(sub);
        free(sub);
    }
    closedir(d);
}

static void top_pairs(sv_jw *w, const cJSON *pair)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pair, "metrics"), "geometry");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(g, "top_decoder_pairs"), *p;
    sv_jw_arr_block(w, "top_pairs");
    if (cJSON_IsArray(top)) cJSON_ArrayForEach(p, top) {
        if (cJSON_GetArraySize(p) != 3 || !cJSON_IsNumber(p->child) || !cJSON_IsNumber(p->child->next) ||
            !cJSON_IsNumber(p->child->next->next))
            continue;
        sv_jw_arr(w, NULL);
        for (const cJSON *x = p->child; x; x = x->next) sv_jw_num(w, NULL, x->valuedouble);
        sv_jw_end(w);
    }
    sv_jw_end(w);
}

sv_rc sv_rep_latents(const char *rdir, const char *base, const char *feat_path, const char *feat_name,
                     const sv_tokenizer *tok, const char *tok_name, const cJSON *pair, int charts,
                     char *err, size_t err_cap)
{
    sv_featfile *ff = NULL;
    sv_rc rc = sv_featfile_open(&ff, feat_path);
    const sv_feat_params *p = ff ? sv_featfile_params(ff) : NULL;
    double d_pair = sv_rep_num(cJSON_GetObjectItemCaseSensitive(pair, "sae_cfg"), "d_sae");
    if (rc == SV_OK && isfinite(d_pair) && d_pair != (double)p->d_sae)
        rc = sv_fail(SV_EINPUT, "%s: d_sae %lld differs from the pair result's %.17g", feat_path,
                     (long long)p->d_sae, d_pair);
    if (rc != SV_OK) {
        /* An unreadable feature file leaves the pair page without latent
         * pages and says why; the rest of the report is still written. */
        snprintf(err, err_cap, "%s", sv_errmsg());
        sv_clear_error();
        sv_featfile_close(ff);
        return SV_OK;
    }
    err[0] = '\0';
    int64_t d = p->d_sae, W = sv_featfile_width(ff);
    char *ldir = sv_path_join(rdir, "latents");
    char *cdir = ldir ? sv_path_join(ldir, base) : NULL;
    int64_t *ids64 = sv_malloc((size_t)W * sizeof *ids64);
    tok_cache tc;
    rc = tok_cache_init(&tc, tok);
    if (rc == SV_OK) rc = (ldir && cdir && ids64) ? sv_mkdir_p(cdir) : SV_EINTERNAL;
    metric_cols mc;
    metric_cols_init(&mc, pair);
    /* page: parameters, a per-latent summary for the selector, the chunk rule */
    sv_jw w;
    sv_jw_init(&w);
    sv_jw_obj(&w, NULL);
    sv_jw_str(&w, "kind", "latents");
    sv_jw_str(&w, "sae_id", sv_rep_str(pair, "sae_id"));
    sv_jw_str(&w, "dataset", sv_rep_str(pair, "dataset"));
    sv_jw_str(&w, "features_file", feat_name);
    if (tok_name) sv_jw_str(&w, "tokenizer", tok_name);
    else sv_jw_null(&w, "tokenizer");
    sv_jw_bool(&w, "charts", charts);
    sv_jw_int(&w, "d_sae", d);
    sv_jw_int(&w, "chunk", SV_REPORT_LATENT_CHUNK);
    char rel[600];
    snprintf(rel, sizeof rel, "../latents/%s/", base);
    sv_jw_str(&w, "chunk_dir", rel);
    snprintf(rel, sizeof rel, "%s.html", base);
    sv_jw_str(&w, "pair_page", rel);
    sv_jw_obj(&w, "params");
    sv_jw_int(&w, "top_n", p->top_n);
    sv_jw_int(&w, "n_intervals", p->n_intervals);
    sv_jw_int(&w, "interval_k", p->interval_k);
    sv_jw_int(&w, "histogram_bins", p->grid_bins);
    sv_jw_int(&w, "context_before", p->ctx_before);
    sv_jw_int(&w, "context_after", p->ctx_after);
    sv_jw_int(&w, "tokens_evaluated", sv_featfile_tokens(ff));
    sv_jw_int(&w, "sequences", sv_featfile_sequences(ff));
    sv_jw_end(&w);
    top_pairs(&w, pair);
    sv_jw nz, mx;
    sv_jw_init(&nz);
    sv_jw_init(&mx);
    sv_jw_arr(&nz, NULL);
    sv_jw_arr(&mx, NULL);
    int bad = 0;
    for (int64_t c0 = 0; c0 < d && rc == SV_OK && !bad; c0 += SV_REPORT_LATENT_CHUNK) {
        int64_t c1 = c0 + SV_REPORT_LATENT_CHUNK < d ? c0 + SV_REPORT_LATENT_CHUNK : d;
        sv_jw cw;
        sv_jw_init(&cw);
        sv_jw_raw(&cw, "svLatentChunk(", 14);
        sv_jw_obj(&cw, NULL);
        sv_jw_int(&cw, "first", c0);
        sv_jw_arr_block(&cw, "latents");
        tc.chunk = (int)(c0 / SV_REPORT_LATENT_CHUNK);
        tc.n_used = 0;
        for (int64_t j = c0; j < c1 && rc == SV_OK; j++) {
            rc = latent(&cw, ff, j, &tc, ids64, &mc, &nz, &mx);
            if (rc == SV_EINPUT) { /* a damaged latent: no latent pages for this pair, say why */
                snprintf(err, err_cap, "%s", sv_errmsg());
                sv_clear_error();
                bad = 1;
                break;
            }
        }
        sv_jw_end(&cw);
        if (tok) { /* id -> its text alone, for the ids of this chunk */
            sv_jw_obj(&cw, "vocab");
            for (size_t u = 0; u < tc.n_used; u++) {
                char key[24];
                sv_fmt_i64(key, tc.used[u]);
                sv_jw_str(&cw, key, tc.text[tc.used[u]][0]);
            }
            sv_jw_end(&cw);
        }
        sv_jw_end(&cw);
        sv_jw_raw(&cw, ");\n", 3);
        if (rc == SV_OK && cw.oom) rc = sv_fail(SV_EINTERNAL, "%s: out of memory building latent chunk", feat_path);
        if (rc == SV_OK && !bad) {
            char name[32];
            snprintf(name, sizeof name, "c%05lld.js", (long long)(c0 / SV_REPORT_LATENT_CHUNK));
            char *path = sv_path_join(cdir, name);
            rc = path ? sv_rep_write_file(path, cw.buf, cw.len) : SV_EINTERNAL;
            free(path);
        }
        sv_jw_free(&cw);
    }
    sv_jw_end(&nz);
    sv_jw_end(&mx);
    if (nz.oom || mx.oom) w.oom = 1;
    else {
        raw_num(&w, "nonzero", nz.buf, nz.len);
        raw_num(&w, "max", mx.buf, mx.len);
    }
    sv_jw_free(&nz);
    sv_jw_free(&mx);
    sv_jw_end(&w);
    if (rc == SV_OK && !bad) {
        snprintf(rel, sizeof rel, "%s_latents.html", base);
        char *pdir = sv_path_join(rdir, "pairs");
        char *pp = pdir ? sv_path_join(pdir, rel) : NULL;
        rc = pp ? sv_rep_write_page(pp, "saeval latents", "../", charts, &w) : SV_EINTERNAL;
        free(pp);
        free(pdir);
    }
    sv_jw_free(&w);
    tok_cache_free(&tc);
    free(ids64);
    free(cdir);
    free(ldir);
    sv_featfile_close(ff);
    return rc;
}
